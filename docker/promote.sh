#!/usr/bin/env bash
# Promotes a standby: ./docker/promote.sh NAME
# Returns once it accepts writes and prints its new timeline. Its cascaded standbys follow it by
# themselves; point other standbys at it with ./docker/follow.sh. Then it says what its old
# upstream does if started again: rejoin NAME as a standby (it lists NAME among its peers), or,
# warned, come back writable.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ $# -eq 1 ] || usage "$0 NAME"
require_container "$1"
"$CLI" exec "$1" pgrepl promote
old=$(env_of "$1" PGREPL_MASTER_IP)
if [ -z "$NETWORK" ] || [ -z "$old" ]; then
  printf '%s: warning: without PGREPL_NETWORK the nodes list no peers: the old primary, if started again, comes back writable. Remove its container and start it as a standby of %s: docker rm -f OLD && %s/standby.sh %s OLD (its data is kept)\n' \
    "$(basename "$0")" "$1" "$(dirname "$0")" "$1" >&2
elif "$CLI" container inspect "$old" >/dev/null 2>&1 && [ "$(env_of "$old" PGREPL_ROLE)" != STANDBY ]; then
  if [[ ,$(env_of "$old" PGREPL_PEERS), == *",$1:5432,"* ]]; then
    printf '%s: %s lists %s among its peers: started again, it rejoins as its standby\n' "$(basename "$0")" "$old" "$1" >&2
  else
    printf '%s: warning: %s does not list %s among its peers (PGREPL_PEERS): started again, it would come back as a second writable primary. Make it a standby of %s instead: docker rm -f %s && %s/standby.sh %s %s (its data is kept)\n' \
      "$(basename "$0")" "$old" "$1" "$1" "$old" "$(dirname "$0")" "$1" "$old" >&2
  fi
fi
