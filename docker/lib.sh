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

# node_name NAME: the node name (PGREPL_NODE_NAME: its replication slot and application_name) of
# the container NAME. The rule of the image's own (sanitiseNodeName in src/config/validators.ts,
# for host names), kept identical by test/unit/node-name-rule.test.ts: lower-cased, every
# character other than a-z, 0-9 and _ as _, cut to 63; empty: pgrepl.
node_name() {
  local LC_ALL=C name
  name=${1,,}
  name=${name//[^a-z0-9_]/_}
  name=${name:0:63}
  printf '%s\n' "${name:-pgrepl}"
}

# require_name NAME WHAT: a container name as Docker takes it (so node_name sees ASCII only).
require_name() {
  [[ $1 =~ ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$ ]] ||
    die "invalid $2 '$1': container names are letters, digits, '_', '.' and '-', starting with a letter or digit, e.g. pgrepl1"
}

# The label that carries a container's node name: how these scripts find each other's nodes.
NODE_LABEL=io.pgrepl.node-name

# nodes: the containers these scripts started, one name a line.
nodes() {
  "$CLI" ps -a --filter "label=$NODE_LABEL" --format '{{.Names}}'
}

# env_of CONTAINER VAR: the value of VAR in the container's environment (empty if unset).
env_of() {
  "$CLI" container inspect --format '{{range .Config.Env}}{{println .}}{{end}}' "$1" 2>/dev/null |
    sed -n "s/^$2=//p" | head -n 1 || true
}

# refuse_taken_node_name NAME: no two containers with one node name (pg-1 and PG_1 are both pg_1):
# their replication slots on an upstream would be one.
refuse_taken_node_name() {
  local node other
  node=$(node_name "$1")
  while IFS= read -r other; do
    if [ -n "$other" ] && [ "$other" != "$1" ]; then
      die "$other already has the node name $node that $1 would get (its replication slot name): choose a name that differs in more than case and punctuation"
    fi
  done < <("$CLI" ps -a --filter "label=$NODE_LABEL=$node" --format '{{.Names}}')
}

# peers_of NAME [KNOWN...]: NAME's PGREPL_PEERS, the others of its cluster as far as known here:
# the containers KNOWN, and every container of these scripts that names NAME as its upstream or
# among its peers (a primary started again on its volume finds the nodes that took over); each
# as CONTAINER:5432 (names resolve on the user-defined network only), NAME left out.
peers_of() {
  local name=$1 node list found=()
  shift
  while IFS= read -r node; do
    [ -n "$node" ] || continue
    list=",$(env_of "$node" PGREPL_PEERS),"
    if [ "$(env_of "$node" PGREPL_MASTER_IP)" = "$name" ] || [[ $list == *",$name:5432,"* ]]; then set -- "$@" "$node"; fi
  done < <(nodes)
  for node in "$@"; do
    case $node in *:*) ;; *) node=$node:5432 ;; esac
    if [ "${node%:*}" != "$name" ] && [[ " ${found[*]} " != *" $node "* ]]; then found+=("$node"); fi
  done
  (IFS=,; printf '%s\n' "${found[*]}")
}

# The options every node gets: name, host name (the node name), persistent volume, secrets,
# network, and on a network PGREPL_PEERS (PEERS, a comma-separated list).
node_options() {
  local name=$1 peer_list=${2:-}
  printf '%s\n' --detach --publish-all --name "$name" --hostname "$name" \
    --volume "pgrepl-$name:$(volume_path)" --env "PGREPL_NODE_NAME=$(node_name "$name")" --label "$NODE_LABEL=$(node_name "$name")"
  secret_options
  if [ -n "$NETWORK" ]; then
    printf '%s\n' --network "$NETWORK"
    if [ -n "$peer_list" ]; then printf '%s\n' --env "PGREPL_PEERS=$peer_list"; fi
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
