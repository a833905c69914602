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
#   POSTGRES_PASSWORD_FILE, PGREPL_TOKEN_FILE
#                         instead of either: a file on this host, mounted read-only into the
#                         container at /run/secrets/<name> and named there by the same variable
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

# Each secret comes from VAR or from VAR_FILE, never both. What: its meaning, for the message.
require_secret() {
  local var=$1 what=$2 file_var="$1_FILE"
  if [ -n "${!var:-}" ] && [ -n "${!file_var:-}" ]; then
    die "$var and $file_var are both set: keep one of them"
  elif [ -n "${!file_var:-}" ]; then
    if [ ! -f "${!file_var}" ] || [ ! -r "${!file_var}" ]; then
      die "$file_var=${!file_var} is not a readable file: point it at the file that holds $what"
    fi
    case ${!file_var} in *:*) die "$file_var=${!file_var}: the path must not contain ':' (it is mounted with -v)" ;; esac
  elif [ -z "${!var:-}" ]; then
    die "$var is not set: export $var=... ($what), or $file_var=/path/to/a/file holding it, and run again"
  fi
}

require_secrets() {
  require_secret POSTGRES_PASSWORD "the superuser's password"
  require_secret PGREPL_TOKEN "the same long random value on every node"
}

# The options that hand the secrets to the container: -e VAR (by name: its value stays off the
# command line), or the file mounted read-only and -e VAR_FILE=/run/secrets/<name>.
secret_options() {
  local var file_var name
  for var in POSTGRES_PASSWORD PGREPL_TOKEN; do
    file_var="${var}_FILE"
    if [ -n "${!file_var:-}" ]; then
      name=$(printf '%s' "$var" | tr '[:upper:]' '[:lower:]')
      printf '%s\n' --volume "$(realpath "${!file_var}"):/run/secrets/$name:ro" --env "$file_var=/run/secrets/$name"
    else
      printf '%s\n' --env "$var"
    fi
  done
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
    --volume "pgrepl-$name:$(volume_path)" --env "PGREPL_NODE_NAME=${name//[^a-z0-9_]/_}"
  secret_options
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
