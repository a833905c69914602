# shellcheck shell=bash
# Shared by the docker/ scripts: settings from the environment, and small helpers.
#
#   PGREPL_IMAGE          image to run (default: postgres_repl, what the README builds)
#   PGREPL_CONTAINER_CLI  docker (default) or podman
#   PGREPL_NETWORK        a user-defined network to run the nodes on (recommended); unset: --link,
#                         as docker-pgrepl did (legacy)
#   POSTGRES_PASSWORD, PGREPL_TOKEN
#                         required; passed to the container by name (-e VAR), so their values
#                         never appear on a command line or in this script's output
set -euo pipefail

IMAGE=${PGREPL_IMAGE:-postgres_repl}
CLI=${PGREPL_CONTAINER_CLI:-docker}
NETWORK=${PGREPL_NETWORK:-}

die() {
  printf '%s: %s\n' "$(basename "$0")" "$*" >&2
  exit 1
}

usage() {
  printf 'usage: %s\n' "$1" >&2
  exit 64
}

require_secrets() {
  [ -n "${POSTGRES_PASSWORD:-}" ] || die "POSTGRES_PASSWORD is not set: export POSTGRES_PASSWORD=... (the superuser's password) and run again"
  [ -n "${PGREPL_TOKEN:-}" ] || die "PGREPL_TOKEN is not set: export PGREPL_TOKEN=... (the same long random value on every node) and run again"
}

require_container() {
  "$CLI" container inspect "$1" >/dev/null 2>&1 || die "no container named $1"
}

# The image's data volume path (VOLUME), so the named volume replaces it rather than sitting
# above an anonymous one: /var/lib/postgresql/data up to PostgreSQL 17, /var/lib/postgresql on 18.
volume_path() {
  local path
  # shellcheck disable=SC2016 # a Go template, not a shell expansion
  path=$("$CLI" image inspect --format '{{range $k, $v := .Config.Volumes}}{{$k}} {{end}}' "$IMAGE" 2>/dev/null | awk '{print $1}') ||
    die "image $IMAGE not found: build it first (docker build -t $IMAGE .) or set PGREPL_IMAGE"
  printf '%s\n' "${path:-/var/lib/postgresql/data}"
}

# The options every node gets: name, host name (the node name), persistent volume, secrets, network.
node_options() {
  local name=$1
  printf '%s\n' --detach --publish-all --name "$name" --hostname "$name" \
    --volume "pgrepl-$name:$(volume_path)" \
    --env POSTGRES_PASSWORD --env PGREPL_TOKEN --env "PGREPL_NODE_NAME=${name//[^a-z0-9_]/_}"
  if [ -n "$NETWORK" ]; then
    printf '%s\n' --network "$NETWORK"
  fi
}

ensure_network() {
  if [ -n "$NETWORK" ] && ! "$CLI" network inspect "$NETWORK" >/dev/null 2>&1; then
    "$CLI" network create "$NETWORK" >/dev/null
  fi
}

# How another container reaches this one: its name on a user-defined network, else its IP.
address_of() {
  if [ -n "$NETWORK" ]; then
    printf '%s\n' "$1"
  else
    "$CLI" container inspect --format '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' "$1" | awk '{print $1}'
  fi
}
