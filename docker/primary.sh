#!/usr/bin/env bash
# Starts a primary: ./docker/primary.sh NAME
# Its data lives in the named volume pgrepl-NAME: `docker rm` + running this again restarts it
# on its data (no initdb). See docker/lib.sh for the settings read from the environment.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ $# -eq 1 ] || usage "$0 NAME"
name=$1
require_secrets
ensure_network
mapfile -t opts < <(node_options "$name")
id=$("$CLI" run "${opts[@]}" "$IMAGE")
printf 'Container ID: %s\n' "$id"
