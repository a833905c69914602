#!/usr/bin/env bash
# Points a standby at another upstream without re-cloning: ./docker/follow.sh NAME UPSTREAM
# The choice survives restarts of NAME (until its environment names another upstream).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ $# -eq 2 ] || usage "$0 NAME UPSTREAM"
require_container "$1"
require_container "$2"
address=$(address_of "$2")
[ -n "$address" ] || die "cannot tell the address of $2: is it running?"
"$CLI" exec "$1" pgrepl follow "$address:5432"
