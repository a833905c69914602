#!/usr/bin/env bash
# Starts a standby of UPSTREAM (a primary or another standby: a cascade): ./docker/standby.sh UPSTREAM NAME
# It clones UPSTREAM on its first start only; afterwards it restarts on its own volume. On a
# user-defined network (PGREPL_NETWORK) it lists in PGREPL_PEERS its upstream, its upstream's
# peers and every node here that names it as its upstream or peer: the others of its cluster.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ $# -eq 2 ] || usage "$0 UPSTREAM NAME"
upstream=$1
name=$2
require_name "$upstream" UPSTREAM
require_name "$name" NAME
require_secrets
require_container "$upstream"
refuse_taken_node_name "$name"
ensure_network
peers=
if [ -n "$NETWORK" ]; then
  mapfile -t known < <(env_of "$upstream" PGREPL_PEERS | tr ',' '\n')
  peers=$(peers_of "$name" "$upstream" "${known[@]}")
fi
mapfile -t opts < <(node_options "$name" "$peers")
if [ -n "$NETWORK" ]; then
  opts+=(--env PGREPL_ROLE=STANDBY --env "PGREPL_MASTER_IP=$upstream" --env PGREPL_MASTER_PORT=5432)
else
  opts+=(--env PGREPL_ROLE=STANDBY --link "$upstream:postgres")
fi
id=$("$CLI" run "${opts[@]}" "$IMAGE")
printf 'Container ID: %s\n' "$id"
