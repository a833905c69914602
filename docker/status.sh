#!/usr/bin/env bash
# Shows pgrepl nodes:
#   ./docker/status.sh NAME [--json]   one node: its role, timeline, upstream, lag, standbys and slots
#   ./docker/status.sh [--json]        every node these scripts started, as a tree: each under the
#                                     node it streams from (cascades under their standby), with lag
#                                     and sync marks, as its upstream sees them. Drawn by
#                                     `pgrepl topology` in a running node from each node's
#                                     `pgrepl status --json`; --json prints those, one entry a node.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

if [ $# -gt 2 ] || { [ $# -eq 2 ] && [ "$1" = --json ]; }; then usage "$0 [NAME] [--json]"; fi
if [ $# -ge 1 ] && [ "$1" != --json ]; then
  require_container "$1"
  exec "$CLI" exec "$1" pgrepl status "${@:2}"
fi

entries=() runner=
while IFS= read -r name; do
  [ -n "$name" ] || continue
  node=$("$CLI" container inspect --format "{{index .Config.Labels \"$NODE_LABEL\"}}" "$name" 2>/dev/null) || node=$(node_name "$name")
  if [ "$("$CLI" container inspect --format '{{.State.Running}}' "$name" 2>/dev/null)" != true ]; then
    entries+=("{\"name\":\"$name\",\"node\":\"$node\",\"error\":\"not running\"}")
  elif status=$("$CLI" exec "$name" pgrepl status --json 2>/dev/null) && [ -n "$status" ]; then
    entries+=("{\"name\":\"$name\",\"node\":\"$node\",\"status\":$status}")
    runner=${runner:-$name}
  else
    entries+=("{\"name\":\"$name\",\"node\":\"$node\",\"error\":\"pgrepl status failed (starting?)\"}")
    runner=${runner:-$name}
  fi
done < <(nodes | sort)

[ ${#entries[@]} -gt 0 ] || die "no node: these scripts started no container (label $NODE_LABEL)"
list="[$(IFS=,; printf '%s' "${entries[*]}")]"
if [ $# -eq 1 ]; then
  printf '%s\n' "$list"
else
  [ -n "$runner" ] || die "no node runs: start one (docker start NAME) to draw the cluster"
  printf '%s\n' "$list" | "$CLI" exec -i "$runner" pgrepl topology
fi
