# shellcheck shell=bash
# Shared by the marathon/ scripts: settings from the environment, the Marathon API through curl,
# JSON through jq. Nothing else is needed (no httpie, no DC/OS CLI).
#
# Settings (environment):
#   PGREPL_IMAGE            image of a new primary (required); a standby defaults to its primary's
#   POSTGRES_PASSWORD       superuser password of a new primary (required by primary.sh)
#   PGREPL_TOKEN            replication token, the same on every node (required by primary.sh and
#                           standby.sh). Both secrets reach Marathon in the request body only: never
#                           a command line, never this scripts' output.
#   PGREPL_INSECURE=1       allow a missing POSTGRES_PASSWORD (the primary then trusts every
#                           connection: POSTGRES_HOST_AUTH_METHOD=trust). For throw-away clusters
#                           only. Never a missing PGREPL_TOKEN: the image has no default token,
#                           and a node without one does not replicate
#   PGREPL_DISK_SIZE        persistent volume size in MiB: 100 for a primary, the primary's for a standby
#   PGREPL_CPUS, PGREPL_MEM cpus (1) and memory in MiB (1024); a standby defaults to its primary's
#   PGREPL_HEALTH_GRACE     seconds Marathon ignores failed health checks after a start: by default
#                           900, or 1 s per 10 MiB of volume if that is more (a clone at 10 MiB/s)
#   PGREPL_KILL_GRACE       seconds between the stop signal and SIGKILL (120)
#   PGREPL_DEPLOY_TIMEOUT   seconds to wait for a Marathon deployment (900)
#   PGREPL_DEPLOY_POLL      seconds between two looks at /v2/deployments (2)
#   PGREPL_VIP_FRAMEWORK    the framework name in VIP host names (marathon)
#   DCOS_ACS_TOKEN          a DC/OS authentication token, sent as "Authorization: token=..."
#   CURL_CA_BUNDLE          curl's own: the CA of an https Marathon URL
# Every node gets PGREPL_PEERS: the VIP addresses of its cluster that the script knows, the
# primary's among them (see marathon/README.md, "Peers").
# Passed on to the nodes when set: POSTGRES_USER POSTGRES_DB POSTGRES_INITDB_ARGS
#   POSTGRES_HOST_AUTH_METHOD PGREPL_GESTALT_DATABASES PGREPL_SLOTS PGREPL_SLOT_MAX_WAL
#   PGREPL_REPLICATION_CIDR PGREPL_UPSTREAM_TIMEOUT PGREPL_RECLONE PGREPL_DEBUG PGREPL_LOG_FORMAT
#
# Exit codes: 0 done, 1 failed (Marathon's answer is printed), 3 a deployment did not finish in
# time (it goes on in Marathon), 64 usage.
set -euo pipefail
umask 077

PROG=$(basename "$0")
# Where a persistent volume appears: Marathon mounts it at containerPath relative to the task's
# sandbox, which the Docker containerizer mounts at $MESOS_SANDBOX = /mnt/mesos/sandbox. Marathon
# does not expand variables in env values, so PGDATA is spelled out.
VOLUME=pgdata
SANDBOX=/mnt/mesos/sandbox
PGDATA_PATH=$SANDBOX/$VOLUME
PG_PORT=5432
PASS_ENV='["POSTGRES_USER","POSTGRES_DB","POSTGRES_INITDB_ARGS","POSTGRES_HOST_AUTH_METHOD","PGREPL_GESTALT_DATABASES","PGREPL_SLOTS","PGREPL_SLOT_MAX_WAL","PGREPL_REPLICATION_CIDR","PGREPL_UPSTREAM_TIMEOUT","PGREPL_RECLONE","PGREPL_DEBUG","PGREPL_LOG_FORMAT"]'

die() {
  printf '%s: %s\n' "$PROG" "$*" >&2
  exit 1
}

warn() {
  printf '%s: warning: %s\n' "$PROG" "$*" >&2
}

say() {
  printf '%s: %s\n' "$PROG" "$*" >&2
}

# usage [MESSAGE]: the message, the usage line (USAGE, set by each script), exit 64.
usage() {
  if [ $# -gt 0 ]; then printf '%s: %s\n' "$PROG" "$*" >&2; fi
  printf 'usage: %s\n' "$USAGE" >&2
  exit 64
}

is_true() {
  case "${1:-}" in 1 | true | TRUE | yes | YES | on | ON) return 0 ;; *) return 1 ;; esac
}

# jq functions every script uses.
# shellcheck disable=SC2016 # jq programs, not shell expansions
JQ_DEFS='
# How DC/OS names a VIP (dcos-net: dcos_l4lb_mesos_poller, mesos_state:domain_frag/1): the label
# value NAME:PORT is cut at its last ":"; NAME and the framework name are each split on ".", every
# piece lower-cased, stripped of leading characters other than [a-z0-9], "-" and "_" turned into
# "-", any other character dropped ("/" too), cut to 63 and stripped of trailing "-"; the host is
# NAME.FRAMEWORK.l4lb.thisdcos.directory. An IPv4 NAME is an IP VIP: the host is that address.
def dns_label: ascii_downcase | sub("^[^a-z0-9]+"; "") | gsub("[-_]"; "-") | gsub("[^a-z0-9-]"; "") | .[0:63] | sub("-+$"; "");
def domain_frag: split(".") | map(select(length > 0) | dns_label | select(length > 0)) | join(".");
def vip_addr($fw):
  capture("^(?<name>.+):(?<port>[0-9]+)$") as $m
  | { port: ($m.port | tonumber),
      host: (if ($m.name | test("^[0-9]{1,3}([.][0-9]{1,3}){3}$")) then $m.name
             else "\($m.name | domain_frag).\($fw | domain_frag).l4lb.thisdcos.directory" end) };
def vip_key($fw): vip_addr($fw) | "\(.host):\(.port)";
# The VIP label values of an app, wherever Marathon keeps port labels.
def port_labels: (.container.portMappings // [])[], (.container.docker.portMappings // [])[], (.portDefinitions // [])[] | (.labels // {});
def vips: [ port_labels | to_entries[] | select(.key | test("^VIP_[0-9]+$")) | .value ];
def ha_node: (.env // {}) | has("PGREPL_ETCD_ENDPOINTS");
# A node in HA mode has no role of its own: etcd decides (status.sh asks its API).
def role: if ha_node and ((.env // {}) | has("PGREPL_ROLE") | not) then "HA"
          else ((.env // {}).PGREPL_ROLE // "PRIMARY") | if type == "string" then ascii_upcase else "?" end end;
def upstream: (.env // {}) as $e | if $e.PGREPL_MASTER_IP then "\($e.PGREPL_MASTER_IP):\($e.PGREPL_MASTER_PORT // "5432")" else "" end;
# tree_lines($head; $right): rows [{name, parent, cells}] as table lines whose first column draws
# who streams from whom, as `pgrepl list` draws it (src/util/tree.ts): each row under its parent
# (├─, └─, │), in the order given; a row whose parent is no row is a root; rows in a loop of
# parents are drawn as roots. $right: the indexes of columns aligned right.
def tree_lines($head; $right):
  . as $rows
  | ($rows | map(.name)) as $names
  | def draw($r; $lead; $indent):
      if (.seen | index([$r.name])) then .
      else [$rows[] | select(.parent == $r.name and .name != $r.name)] as $all
        | .seen as $seen
        | [$all[] | select(.name as $n | $seen | index([$n]) | not)] as $kids
        | .seen += [$r.name] | .out += [[$lead + $r.name] + $r.cells]
        | reduce range(0; $kids | length) as $i (.;
            ($i == ($kids | length) - 1) as $last
            | draw($kids[$i]; $indent + (if $last then "└─ " else "├─ " end); $indent + (if $last then "   " else "│  " end)))
      end;
    reduce ([$rows[] | select(.parent as $p | $p == null or $p == .name or ($names | index([$p]) | not))] + $rows)[] as $r
      ({seen: [], out: []}; draw($r; ""; ""))
  | [$head] + .out
  | . as $lines
  | [range(0; $head | length) as $c | [$lines[][$c] // "" | length] | max] as $w
  | $lines[]
  | [range(0; $head | length) as $c | (.[$c] // "") as $v | (" " * ([$w[$c] - ($v | length), 0] | max)) as $pad
     | if ($right | index($c)) then $pad + $v else $v + $pad end]
  | join("  ") | sub(" +$"; "");
def unnull: walk(if type == "object" then with_entries(select(.value != null)) else . end);
def running: .state as $s | ["TASK_STAGING", "TASK_STARTING", "TASK_RUNNING", "TASK_KILLING"] | index($s) != null;
# An env object with the addresses $add (host:port) added to its PGREPL_PEERS, each once, in order.
def with_peers($add): .PGREPL_PEERS = ((((.PGREPL_PEERS // "") | split(",") | map(select(. != ""))) + $add)
  | reduce .[] as $p ([]; if index([$p]) == null then . + [$p] else . end) | join(","));
'

# init MARATHON_URL: checks the tools and the URL; a private directory for request and response
# bodies (they hold secrets), removed on exit.
init() {
  local tool
  for tool in curl jq; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed (apt-get install $tool)"
  done
  [[ $1 =~ ^https?://[^[:space:]]+$ ]] || usage "MARATHON_URL must be an http(s) URL, e.g. http://marathon.mesos:8080, not '$1'"
  MARATHON=${1%/}
  FRAMEWORK=${PGREPL_VIP_FRAMEWORK:-marathon}
  DEPLOY_TIMEOUT=$(int_setting PGREPL_DEPLOY_TIMEOUT 900 1)
  DEPLOY_POLL=${PGREPL_DEPLOY_POLL:-2}
  [[ $DEPLOY_POLL =~ ^[0-9]+([.][0-9]+)?$ ]] || die "PGREPL_DEPLOY_POLL must be a number of seconds, e.g. 2, not '$DEPLOY_POLL'"
  TMPD=$(mktemp -d)
  # shellcheck disable=SC2064 # expand now: the directory is known
  trap "rm -rf '$TMPD'" EXIT
  RESP=$TMPD/response.json
  CURL_CONFIG=$TMPD/curl.conf
  # Options for every request, in a file: the token never reaches a command line.
  {
    printf 'silent\nshow-error\nmax-time = 60\n'
    printf 'header = "Accept: application/json"\n'
    if [ -n "${DCOS_ACS_TOKEN:-}" ]; then
      local token=${DCOS_ACS_TOKEN//\\/\\\\}
      printf 'header = "Authorization: token=%s"\n' "${token//\"/\\\"}"
    fi
  } >"$CURL_CONFIG"
}

# int_setting NAME DEFAULT MIN: the integer in $NAME, or DEFAULT when unset.
int_setting() {
  local value=${!1:-$2}
  if ! [[ $value =~ ^[0-9]+$ ]] || [ "$((10#$value))" -lt "$3" ]; then
    die "$1 must be a whole number >= $3, not '$value'"
  fi
  printf '%s\n' "$((10#$value))"
}

# app_id ID: the absolute Marathon app id (/a/b), or a usage error. Marathon's rule: names of
# lower-case letters, digits, "-" and ".", starting and ending with a letter or digit.
app_id() {
  local id=${1#/}
  id=/${id%/}
  [[ $id =~ ^(/[a-z0-9]([a-z0-9.-]*[a-z0-9])?)+$ ]] ||
    usage "invalid app id '$1': Marathon app ids are names of lower-case letters, digits, '-' and '.' separated by '/', e.g. pgrepl1 or /db/pgrepl-2"
  printf '%s\n' "$id"
}

# check_vip VIP: a VIP label value NAME:PORT (e.g. /primary.pgrepl:5432), or a usage error.
check_vip() {
  if ! [[ $1 =~ ^/?[A-Za-z0-9]([A-Za-z0-9._/-]*[A-Za-z0-9])?:([0-9]{1,5})$ ]] ||
    [ "$((10#${BASH_REMATCH[2]}))" -lt 1 ] || [ "$((10#${BASH_REMATCH[2]}))" -gt 65535 ]; then
    usage "invalid VIP '$1': a name and a port, e.g. /primary.pgrepl:5432"
  fi
}

# vip_key VIP: host:port, the address DC/OS gives the VIP (see JQ_DEFS).
vip_key() {
  jq -rn --arg v "$1" --arg fw "$FRAMEWORK" "$JQ_DEFS"'$v | vip_key($fw)'
}

# node_name APP_ID: PGREPL_NODE_NAME for an app (its slot name on the upstream): stable across
# restarts, unlike the container's host name. The id without its leading "/", by the image's rule
# for host names (sanitiseNodeName in src/config/validators.ts; docker/lib.sh's node_name too,
# all three kept identical by test/unit/node-name-rule.test.ts): lower-cased, every character
# other than a-z, 0-9 and _ as _, cut to 63; empty: pgrepl.
node_name() {
  local LC_ALL=C name=${1#/}
  name=${name,,}
  name=${name//[^a-z0-9_]/_}
  name=${name:0:63}
  printf '%s\n' "${name:-pgrepl}"
}

# api METHOD PATH [BODY_FILE]: the response body in $RESP, the HTTP status in $HTTP_STATUS.
api() {
  local args=(--config "$CURL_CONFIG" -X "$1" -o "$RESP" -w '%{http_code}')
  if [ $# -ge 3 ]; then args+=(-H 'Content-Type: application/json' --data-binary "@$3"); fi
  HTTP_STATUS=$(curl "${args[@]}" "$MARATHON$2") ||
    die "cannot reach Marathon at $MARATHON ($1 $2 failed)"
}

# api_error_text: Marathon's answer to a failed request ($RESP, $HTTP_STATUS), readable: its
# message, the deployments that lock the app (409), what is invalid (422).
api_error_text() {
  local text
  text=$(jq -r --arg s "$HTTP_STATUS" '
    [ "Marathon answered \($s): \(.message // "(no message)")" ]
    + [ (.deployments // [])[] | "  locked by deployment \(.id): wait for it to finish, or pass --force to override it" ]
    + [ (.details // [])[] | "  \(.path // "/"): \((.errors // []) | join("; "))" ]
    + [ (.errors // [])[]? | "  \(.attribute // .path // "/"): \(.error // .message // .)" ]
    | join("\n")' "$RESP" 2>/dev/null) || text=
  if [ -z "$text" ]; then
    text="Marathon answered $HTTP_STATUS: $(head -c 300 "$RESP" | tr -cd '[:print:]\n')"
  fi
  printf '%s\n' "$text"
}

# api_error WHAT: api_error_text, then exit 1.
api_error() {
  die "$1: $(api_error_text)"
}

# get_app ID FILE: GET /v2/apps/ID into FILE (the app object); 404 is an error naming WHAT.
get_app() {
  api GET "/v2/apps$1"
  case $HTTP_STATUS in
    200) jq '.app' "$RESP" >"$2" ;;
    404) die "no app $1 in Marathon at $MARATHON${3:+ ($3)}" ;;
    *) api_error "reading app $1" ;;
  esac
}

# get_tasks ID FILE: GET /v2/apps/ID/tasks into FILE (an array).
get_tasks() {
  api GET "/v2/apps$1/tasks"
  case $HTTP_STATUS in
    200) jq '.tasks // []' "$RESP" >"$2" ;;
    404) die "no app $1 in Marathon at $MARATHON" ;;
    *) api_error "reading the tasks of $1" ;;
  esac
}

# get_apps FILE: every app (GET /v2/apps) into FILE (an array).
get_apps() {
  api GET /v2/apps
  [ "$HTTP_STATUS" = 200 ] || api_error "listing apps"
  jq '.apps // []' "$RESP" >"$1"
}

# vip_holders APPS_FILE KEY EXCEPT...: the ids of the apps, other than EXCEPT, with a VIP whose
# address is KEY (host:port), one a line.
vip_holders() {
  local apps=$1 key=$2 except
  shift 2
  except=$(jq -cn '$ARGS.positional' --args "$@")
  jq -r --arg key "$key" --arg fw "$FRAMEWORK" --argjson except "$except" "$JQ_DEFS"'
    .[] | select(.id as $id | $except | index($id) | not)
    | select(any(vips[]; vip_key($fw) == $key)) | .id' "$apps"
}

# refuse_taken_vip VIP APPS_FILE EXCEPT...: no second app on one VIP (its clients would be
# balanced between two databases).
refuse_taken_vip() {
  local key holders
  key=$(vip_key "$1")
  holders=$(vip_holders "$2" "$key" "${@:3}" | paste -sd, -)
  [ -z "$holders" ] || die "the VIP $1 ($key) is already on $holders: clients would be balanced between two databases; give another VIP, or remove it there first"
}

# refuse_taken_node_name APPS_FILE ID: no two nodes with one PGREPL_NODE_NAME (their replication
# slots on an upstream would be one).
refuse_taken_node_name() {
  local name taken
  name=$(node_name "$2")
  taken=$(jq -r --arg name "$name" --arg id "$2" '[.[] | select(.id != $id and (.env // {}).PGREPL_NODE_NAME == $name) | .id] | join(", ")' "$1")
  [ -z "$taken" ] || die "$taken already has the node name $name that $2 would get (its replication slot name): choose another app id"
}

# require_secrets WHICH...: each of POSTGRES_PASSWORD / PGREPL_TOKEN named must be set. Only a
# missing POSTGRES_PASSWORD may be let through, by PGREPL_INSECURE; without PGREPL_TOKEN a node
# does not replicate (the image has no default token), and these scripts deploy nodes that do.
require_secrets() {
  local var
  for var in "$@"; do
    [ -z "${!var:-}" ] || continue
    case $var in
      POSTGRES_PASSWORD)
        if is_true "${PGREPL_INSECURE:-}"; then
          warn "POSTGRES_PASSWORD is not set and PGREPL_INSECURE is: the primary trusts every connection (POSTGRES_HOST_AUTH_METHOD=trust)"
        else
          die "POSTGRES_PASSWORD is not set: export POSTGRES_PASSWORD=... (the superuser's password) and run again (PGREPL_INSECURE=1 goes on without one: every connection trusted)"
        fi
        ;;
      PGREPL_TOKEN) die "PGREPL_TOKEN is not set: export PGREPL_TOKEN=... (the same long random value for every node) and run again; the image has no default token, and a node without one does not replicate" ;;
    esac
  done
}

# health_grace DISK_MIB: PGREPL_HEALTH_GRACE, or 900 s, or 1 s per 10 MiB if more.
health_grace() {
  local by_size=$((($1 + 9) / 10))
  int_setting PGREPL_HEALTH_GRACE "$((by_size > 900 ? by_size : 900))" 0
}

# cpus_setting DEFAULT / mem_setting DEFAULT: validated PGREPL_CPUS / PGREPL_MEM.
cpus_setting() {
  local value=${PGREPL_CPUS:-$1}
  if ! [[ $value =~ ^[0-9]+([.][0-9]+)?$ ]] || [[ $value =~ ^[0.]+$ ]]; then
    die "PGREPL_CPUS must be a number of cpus > 0, e.g. 0.5, not '$value'"
  fi
  printf '%s\n' "$value"
}

# new_node_settings: for a node that runs initdb (primary.sh, ha.sh): IMAGE (PGREPL_IMAGE, required),
# the secrets checked, DISK, CPUS, MEM and KILL_GRACE from the environment or their defaults.
new_node_settings() {
  IMAGE=${PGREPL_IMAGE:-}
  [ -n "$IMAGE" ] || die "PGREPL_IMAGE is not set: export PGREPL_IMAGE=registry.example.com/pgrepl:17 (an image built from this repository that the agents can pull)"
  require_secrets POSTGRES_PASSWORD PGREPL_TOKEN
  DISK=$(int_setting PGREPL_DISK_SIZE 100 1)
  CPUS=$(cpus_setting 1)
  MEM=$(int_setting PGREPL_MEM 1024 32)
  KILL_GRACE=$(int_setting PGREPL_KILL_GRACE 120 0)
}

# app_json ID ROLE VIP: a new node's app definition on stdout. Also reads IMAGE, DISK, CPUS, MEM,
# GRACE, KILL_GRACE, PEERS (PGREPL_PEERS), and UPSTREAM_HOST, UPSTREAM_PORT, AVOID_HOSTS (a regex)
# for a standby.
app_json() {
  local insecure=0
  if is_true "${PGREPL_INSECURE:-}"; then insecure=1; fi
  jq -n --arg id "$1" --arg role "$2" --arg vip "$3" --arg image "$IMAGE" \
    --argjson disk "$DISK" --argjson cpus "$CPUS" --argjson mem "$MEM" \
    --argjson grace "$GRACE" --argjson kill "$KILL_GRACE" \
    --arg volume "$VOLUME" --arg pgdata "$PGDATA_PATH" --argjson port "$PG_PORT" \
    --arg node "$(node_name "$1")" --arg uphost "${UPSTREAM_HOST:-}" --arg upport "${UPSTREAM_PORT:-}" \
    --arg avoid "${AVOID_HOSTS:-}" --arg peers "$PEERS" --argjson pass "$PASS_ENV" \
    --arg insecure "$insecure" '
    ($ENV | with_entries(select(.key as $k | $pass | index($k)))) as $passed
    | {
        id: $id,
        instances: 1,
        cpus: $cpus,
        mem: $mem,
        container: {
          type: "DOCKER",
          docker: { image: $image },
          volumes: [ { containerPath: $volume, mode: "RW", persistent: { size: $disk } } ],
          portMappings: [ { name: "postgres", containerPort: $port, hostPort: 0, protocol: "tcp", labels: { VIP_0: $vip } } ]
        },
        networks: [ { mode: "container/bridge" } ],
        env: (
          $passed
          + { PGREPL_ROLE: $role, PGDATA: $pgdata, PGREPL_NODE_NAME: $node, PGREPL_PEERS: $peers }
          + (if $uphost != "" then { PGREPL_MASTER_IP: $uphost, PGREPL_MASTER_PORT: $upport } else {} end)
          + (if ($ENV.PGREPL_TOKEN // "") != "" then { PGREPL_TOKEN: $ENV.PGREPL_TOKEN } else {} end)
          + (if ($ENV.POSTGRES_PASSWORD // "") != "" then { POSTGRES_PASSWORD: $ENV.POSTGRES_PASSWORD }
             elif $role == "PRIMARY" and $insecure == "1" then { POSTGRES_HOST_AUTH_METHOD: "trust" }
             else {} end)
        ),
        labels: { MARATHON_SINGLE_INSTANCE_APP: "true" },
        constraints: (if $avoid != "" then [ [ "hostname", "UNLIKE", $avoid ] ] else [] end),
        healthChecks: [ {
          protocol: "COMMAND",
          command: { value: "pgrepl health" },
          gracePeriodSeconds: $grace,
          intervalSeconds: 30,
          timeoutSeconds: 20,
          maxConsecutiveFailures: 3,
          delaySeconds: 15
        } ],
        taskKillGracePeriodSeconds: $kill,
        upgradeStrategy: { minimumHealthCapacity: 0, maximumOverCapacity: 0 }
      }'
}

# create_app BODY_FILE: POST /v2/apps, then waits for its deployment.
create_app() {
  local id
  id=$(jq -r .id "$1")
  api POST /v2/apps "$1"
  case $HTTP_STATUS in
    200 | 201) ;;
    409) api_error "creating $id (an app with this id exists: delete it first, or choose another id)" ;;
    *) api_error "creating $id" ;;
  esac
  wait_deployment "$(jq -r '(.deployments // [])[0].id // empty' "$RESP")" "$id"
}

# put_app ID BODY_FILE FORCE: PUT /v2/apps/ID (a partial update: the fields given replace the
# app's). Sets DEPLOYMENT and VERSION.
put_app() {
  local query=
  if [ "$3" = 1 ]; then query='?force=true'; fi
  api PUT "/v2/apps$1$query" "$2"
  case $HTTP_STATUS in
    200 | 201) ;;
    *) api_error "updating $1" ;;
  esac
  # shellcheck disable=SC2034 # for the scripts
  DEPLOYMENT=$(jq -r '.deploymentId // empty' "$RESP")
  # shellcheck disable=SC2034 # for the scripts
  VERSION=$(jq -r '.version // empty' "$RESP")
}

# wait_deployment ID WHAT: until deployment ID is no longer listed, or PGREPL_DEPLOY_TIMEOUT (exit 3).
wait_deployment() {
  local deployment=$1 what=$2 deadline=$((SECONDS + DEPLOY_TIMEOUT))
  [ -n "$deployment" ] || return 0
  say "waiting for deployment $deployment of $what"
  while :; do
    api GET /v2/deployments
    [ "$HTTP_STATUS" = 200 ] || api_error "reading deployments"
    jq -e --arg d "$deployment" 'any(.[]; .id == $d)' "$RESP" >/dev/null || return 0
    if [ "$SECONDS" -ge "$deadline" ]; then
      local doing
      doing=$(jq -r --arg d "$deployment" '.[] | select(.id == $d) | [(.currentActions // [])[] | "\(.action) \(.app // .pod // "")"] | join(", ")' "$RESP")
      printf '%s: deployment %s of %s still running after %ss (%s); it goes on in Marathon: follow it with status.sh, or cancel it with DELETE %s/v2/deployments/%s\n' \
        "$PROG" "$deployment" "$what" "$DEPLOY_TIMEOUT" "${doing:-no current action}" "$MARATHON" "$deployment" >&2
      exit 3
    fi
    sleep "$DEPLOY_POLL"
  done
}
