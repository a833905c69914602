#!/usr/bin/env bash
# Promotes a standby: ./docker/promote.sh NAME
# Returns once it accepts writes and prints its new timeline. Its cascaded standbys follow it by
# themselves; point other standbys at it with ./docker/follow.sh.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ $# -eq 1 ] || usage "$0 NAME"
require_container "$1"
"$CLI" exec "$1" pgrepl promote
