#!/usr/bin/env bash
# Shows a node's role, timeline, upstream, lag, standbys and slots: ./docker/status.sh NAME [--json]
set -euo pipefail
. "$(dirname "$0")/lib.sh"

if [ $# -lt 1 ] || [ $# -gt 2 ]; then usage "$0 NAME [--json]"; fi
require_container "$1"
"$CLI" exec "$1" pgrepl status "${@:2}"
