#!/usr/bin/env bash
# Starts a primary: ./docker/primary.sh NAME [PEER...]
# Its data lives in the named volume pgrepl-NAME: `docker rm` + running this again restarts it
# on its data (no initdb). PEERs are the other nodes of its cluster, its standbys to be (on a
# user-defined network, PGREPL_NETWORK): it lists them in PGREPL_PEERS, with every node already
# here that names it as its upstream or peer, so that started again after one of them was promoted
# it rejoins that one as a standby instead of coming back writable (fencing). See docker/lib.sh
# for the settings read from the environment.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ $# -ge 1 ] || usage "$0 NAME [PEER...]"
name=$1
shift
require_name "$name" NAME
for peer in "$@"; do require_name "$peer" PEER; done
if [ -z "$NETWORK" ] && [ $# -gt 0 ]; then
  die "the PEERs $* are reached by their names, which only a user-defined network resolves: export PGREPL_NETWORK=pgrepl (say), or give no PEER"
fi
require_secrets
refuse_taken_node_name "$name"
ensure_network
peers=
if [ -n "$NETWORK" ]; then peers=$(peers_of "$name" "$@"); fi
if [ -z "$peers" ]; then
  printf '%s: warning: %s has no peers (PGREPL_PEERS): started again after one of its standbys was promoted, it would come back as a second writable primary. %s\n' \
    "$(basename "$0")" "$name" "${NETWORK:+Name its standbys to be: $0 $name STANDBY...}${NETWORK:-Fencing needs PGREPL_NETWORK.}" >&2
fi
mapfile -t opts < <(node_options "$name" "$peers")
id=$("$CLI" run "${opts[@]}" "$IMAGE")
printf 'Container ID: %s\n' "$id"
