#!/usr/bin/env bash
# Starts a standby of UPSTREAM (a primary or another standby: a cascade): ./docker/standby.sh UPSTREAM NAME
# It clones UPSTREAM on its first start only; afterwards it restarts on its own volume.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ $# -eq 2 ] || usage "$0 UPSTREAM NAME"
upstream=$1
name=$2
require_secrets
require_container "$upstream"
ensure_network
mapfile -t opts < <(node_options "$name")
if [ -n "$NETWORK" ]; then
  opts+=(--env PGREPL_ROLE=STANDBY --env "PGREPL_MASTER_IP=$upstream" --env PGREPL_MASTER_PORT=5432)
else
  opts+=(--env PGREPL_ROLE=STANDBY --link "$upstream:postgres")
fi
id=$("$CLI" run "${opts[@]}" "$IMAGE")
printf 'Container ID: %s\n' "$id"
