#!/usr/bin/env bash
# Deploys an HA group on Marathon: N pgrepl nodes in HA mode on etcd, and HAProxy in front of them:
#   ./marathon/ha.sh MARATHON_URL GROUP_ID [N]        (N: 3 by default)
#   PGREPL_ETCD_ENDPOINTS=http://etcd.example:2379 ./marathon/ha.sh http://marathon.mesos:8080 pgrepl
# For GROUP_ID pgrepl:
#   /pgrepl/node1../pgrepl/nodeN  one resident app each (a local persistent volume holding PGDATA,
#       one instance, upgrade strategy 0/0, as primary.sh's), each on another agent (hostname UNLIKE
#       the earlier nodes' agents), postgres on VIP /node1.pgrepl:5432 and the agent's API on
#       /node1.pgrepl:8008: PGREPL_CONNECT_ADDRESS and PGREPL_API_CONNECT_ADDRESS are those VIPs'
#       addresses (a VIP does not change when its task is replaced, a host port does). A MESOS_HTTP
#       health check on the API's /liveness (portIndex 1): healthy while the agent's loop runs, a
#       clone or a crash recovery included, so Marathon restarts a stuck agent, never a busy one.
#       No PGREPL_ROLE: etcd decides who initialises the cluster and who leads.
#   /pgrepl/haproxy  HAProxy (PGREPL_HAPROXY_IMAGE), PGREPL_HAPROXY_INSTANCES instances on distinct
#       agents, on the VIP /primary.pgrepl:5432 (PGREPL_PRIMARY_VIP): it sends connections to the node
#       whose API answers 200 on /primary, so that address always means "the primary", with no
#       promote.sh; a node marked down has its sessions cut (on-marked-down shutdown-sessions), so
#       the clients of a demoted primary reconnect to the new one. Its second port, VIP
#       /replica.pgrepl:5432, balances between the standbys within PGREPL_REPLICA_MAX_LAG (/replica?lag=).
# Nodes are deployed one after the other (each must know the agents of the earlier ones); an app of
# the group that exists already is left as it is, so running it again deploys only what is missing.
# Returns once every deployment is done: the agents run (the first initdb, the clones follow).
#
# Settings (see also marathon/lib.sh; PGREPL_IMAGE, POSTGRES_PASSWORD and PGREPL_TOKEN are required):
#   PGREPL_ETCD_ENDPOINTS     required: the etcd cluster the nodes share, comma-separated http(s) URLs
#   PGREPL_CLUSTER            the cluster's name in etcd: the group id's node name by default (pgrepl)
#   PGREPL_SYNC_STANDBYS      standbys that acknowledge every commit (0: asynchronous)
#   PGREPL_PRIMARY_VIP        /primary.<group>:5432    PGREPL_REPLICA_VIP  /replica.<group>:5432
#   PGREPL_REPLICA_MAX_LAG    16MB: how far behind a standby may replay and still get reads
#   PGREPL_HAPROXY_IMAGE      haproxy:2.8              PGREPL_HAPROXY_INSTANCES  2
#   PGREPL_HEALTH_GRACE       300: seconds Marathon ignores a failing /liveness after a start
# Passed on to the nodes when set: those of lib.sh and PGREPL_TTL PGREPL_LOOP_WAIT PGREPL_RETRY_TIMEOUT
#   PGREPL_MAX_LAG_ON_FAILOVER PGREPL_NOFAILOVER PGREPL_SYNC_COMMIT PGREPL_ETCD_USER PGREPL_ETCD_PASSWORD
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

USAGE="$PROG MARATHON_URL GROUP_ID [N]   (e.g. PGREPL_ETCD_ENDPOINTS=http://etcd.example:2379 $PROG http://marathon.mesos:8080 pgrepl 3)"
if [ $# -lt 2 ] || [ $# -gt 3 ]; then usage; fi
init "$1"
group=$(app_id "$2")
count=${3:-3}
if ! [[ $count =~ ^[0-9]{1,2}$ ]] || [ "$((10#$count))" -lt 1 ]; then
  usage "N must be a number of nodes from 1 to 99, e.g. 3, not '$count'"
fi
count=$((10#$count))

ETCD=${PGREPL_ETCD_ENDPOINTS:-}
[ -n "$ETCD" ] || die "PGREPL_ETCD_ENDPOINTS is not set: export PGREPL_ETCD_ENDPOINTS=http://etcd-0.example:2379,http://etcd-1.example:2379,http://etcd-2.example:2379 (the etcd cluster the nodes share, e.g. DC/OS's etcd package) and run again"
url='https?://[][A-Za-z0-9.:_-]+/?'
[[ $ETCD =~ ^$url(,$url)*$ ]] ||
  die "PGREPL_ETCD_ENDPOINTS must be comma-separated http(s)://host:port URLs, e.g. http://etcd-0.example:2379,http://etcd-1.example:2379, not '$ETCD'"
new_node_settings
GRACE=$(int_setting PGREPL_HEALTH_GRACE 300 0)
PROXIES=$(int_setting PGREPL_HAPROXY_INSTANCES 2 1)
PROXY_IMAGE=${PGREPL_HAPROXY_IMAGE:-haproxy:2.8}
[[ $PROXY_IMAGE =~ ^[^[:space:]\"\\]+$ ]] || die "PGREPL_HAPROXY_IMAGE must be an image name, e.g. haproxy:2.8, not '$PROXY_IMAGE'"
REPLICA_LAG=${PGREPL_REPLICA_MAX_LAG:-16MB}
[[ $REPLICA_LAG =~ ^[0-9]+([kKMGT]?i?B)?$ ]] || die "PGREPL_REPLICA_MAX_LAG must be bytes or a size such as 16MB, not '$REPLICA_LAG'"

# The group's name in VIP names and etcd: its path's parts joined by '-' (/db/orders: db-orders).
dns=${group#/}
dns=${dns//\//-}
CLUSTER=${PGREPL_CLUSTER:-$(node_name "$group")}
[[ $CLUSTER =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$ ]] || die "PGREPL_CLUSTER must be 1-63 letters, digits, dots, dashes or underscores, starting with a letter or digit, not '$CLUSTER'"
PRIMARY_VIP=${PGREPL_PRIMARY_VIP:-/primary.$dns:$PG_PORT}
REPLICA_VIP=${PGREPL_REPLICA_VIP:-/replica.$dns:$PG_PORT}
check_vip "$PRIMARY_VIP"
check_vip "$REPLICA_VIP"
[ "$(vip_key "$PRIMARY_VIP")" != "$(vip_key "$REPLICA_VIP")" ] || usage "PGREPL_PRIMARY_VIP and PGREPL_REPLICA_VIP are one address: give each its own"
API_PORT=8008
HA_PASS_ENV='["PGREPL_TTL","PGREPL_LOOP_WAIT","PGREPL_RETRY_TIMEOUT","PGREPL_MAX_LAG_ON_FAILOVER","PGREPL_NOFAILOVER","PGREPL_SYNC_STANDBYS","PGREPL_SYNC_COMMIT","PGREPL_ETCD_USER","PGREPL_ETCD_PASSWORD"]'

get_apps "$TMPD/apps.json"
exists() { jq -e --arg id "$1" 'any(.[]; .id == $id)' "$TMPD/apps.json" >/dev/null; }

# Every app of the group to create, its VIPs checked before anything is written.
ids=()
for i in $(seq 1 "$count"); do ids+=("$group/node$i"); done
proxy_id=$group/haproxy
for id in "${ids[@]}"; do
  if ! exists "$id"; then
    refuse_taken_vip "/node${id##*/node}.$dns:$PG_PORT" "$TMPD/apps.json" "$id"
    refuse_taken_node_name "$TMPD/apps.json" "$id"
  fi
done
if ! exists "$proxy_id"; then
  refuse_taken_vip "$PRIMARY_VIP" "$TMPD/apps.json" "$proxy_id"
  refuse_taken_vip "$REPLICA_VIP" "$TMPD/apps.json" "$proxy_id"
fi

# node_json ID VIP_NAME AVOID: a node's app definition.
node_json() {
  local host
  host=$(vip_key "$2:$PG_PORT")
  host=${host%:*}
  jq -n --arg id "$1" --arg vip "$2" --arg host "$host" --arg avoid "$3" --arg image "$IMAGE" \
    --argjson disk "$DISK" --argjson cpus "$CPUS" --argjson mem "$MEM" --argjson grace "$GRACE" --argjson kill "$KILL_GRACE" \
    --arg volume "$VOLUME" --arg pgdata "$PGDATA_PATH" --argjson port "$PG_PORT" --argjson api "$API_PORT" \
    --arg node "$(node_name "$1")" --arg etcd "$ETCD" --arg cluster "$CLUSTER" --arg group "$group" \
    --argjson pass "$PASS_ENV" --argjson hapass "$HA_PASS_ENV" '
    ($ENV | with_entries(select(.key as $k | ($pass + $hapass) | index($k)))) as $passed
    | {
        id: $id, instances: 1, cpus: $cpus, mem: $mem,
        container: {
          type: "DOCKER",
          docker: { image: $image },
          volumes: [ { containerPath: $volume, mode: "RW", persistent: { size: $disk } } ],
          portMappings: [
            { name: "postgres", containerPort: $port, hostPort: 0, protocol: "tcp", labels: { VIP_0: "\($vip):\($port)" } },
            { name: "api", containerPort: $api, hostPort: 0, protocol: "tcp", labels: { VIP_1: "\($vip):\($api)" } }
          ]
        },
        networks: [ { mode: "container/bridge" } ],
        env: (
          $passed
          + { PGDATA: $pgdata, PGREPL_NODE_NAME: $node, PGREPL_ETCD_ENDPOINTS: $etcd, PGREPL_CLUSTER: $cluster,
              PGREPL_CONNECT_ADDRESS: "\($host):\($port)", PGREPL_API_LISTEN: "0.0.0.0:\($api)",
              PGREPL_API_CONNECT_ADDRESS: "\($host):\($api)" }
          + (if ($ENV.PGREPL_TOKEN // "") != "" then { PGREPL_TOKEN: $ENV.PGREPL_TOKEN } else {} end)
          + (if ($ENV.POSTGRES_PASSWORD // "") != "" then { POSTGRES_PASSWORD: $ENV.POSTGRES_PASSWORD }
             else { POSTGRES_HOST_AUTH_METHOD: "trust" } end)
        ),
        labels: { MARATHON_SINGLE_INSTANCE_APP: "true", PGREPL_HA_GROUP: $group },
        constraints: (if $avoid != "" then [ [ "hostname", "UNLIKE", $avoid ] ] else [] end),
        healthChecks: [ {
          protocol: "MESOS_HTTP", path: "/liveness", portIndex: 1,
          gracePeriodSeconds: $grace, intervalSeconds: 10, timeoutSeconds: 5, maxConsecutiveFailures: 3, delaySeconds: 15
        } ],
        taskKillGracePeriodSeconds: $kill,
        upgradeStrategy: { minimumHealthCapacity: 0, maximumOverCapacity: 0 }
      }'
}

# haproxy_cfg SERVER...: HAProxy's configuration; each SERVER is NAME=HOST (a node's VIP host).
# Servers are named by address and resolved at run time (init-addr none: a VIP name that does not
# resolve yet is a server down, not a proxy that will not start).
haproxy_cfg() {
  local server
  cat <<EOF
global
    maxconn 2000
resolvers dns
    parse-resolv-conf
    hold valid 10s
defaults
    mode tcp
    retries 2
    timeout connect 4s
    timeout client 30m
    timeout server 30m
    timeout check 2s
    default-server resolvers dns init-addr last,libc,none inter 2s fall 2 rise 2 on-marked-down shutdown-sessions
listen primary
    bind :$PG_PORT
    option httpchk GET /primary
    http-check expect status 200
EOF
  for server in "$@"; do printf '    server %s %s:%s check port %s\n' "${server%%=*}" "${server#*=}" "$PG_PORT" "$API_PORT"; done
  cat <<EOF
listen replicas
    bind :$((PG_PORT + 1))
    balance roundrobin
    option httpchk GET /replica?lag=$REPLICA_LAG
    http-check expect status 200
EOF
  for server in "$@"; do printf '    server %s %s:%s check port %s\n' "${server%%=*}" "${server#*=}" "$PG_PORT" "$API_PORT"; done
}

# proxy_json CFG_FILE: the HAProxy app's definition.
proxy_json() {
  jq -n --arg id "$proxy_id" --arg image "$PROXY_IMAGE" --argjson instances "$PROXIES" --arg group "$group" \
    --arg primary "$PRIMARY_VIP" --arg replica "$REPLICA_VIP" --argjson port "$PG_PORT" --rawfile cfg "$1" '{
      id: $id, instances: $instances, cpus: 0.2, mem: 128,
      cmd: "printf %s \"$HAPROXY_CFG\" >/tmp/haproxy.cfg && exec haproxy -W -db -f /tmp/haproxy.cfg",
      container: {
        type: "DOCKER",
        docker: { image: $image },
        portMappings: [
          { name: "primary", containerPort: $port, hostPort: 0, protocol: "tcp", labels: { VIP_0: $primary } },
          { name: "replicas", containerPort: ($port + 1), hostPort: 0, protocol: "tcp", labels: { VIP_1: $replica } }
        ]
      },
      networks: [ { mode: "container/bridge" } ],
      env: { HAPROXY_CFG: $cfg },
      labels: { PGREPL_HA_GROUP: $group },
      constraints: [ [ "hostname", "UNIQUE" ] ],
      healthChecks: [ { protocol: "MESOS_TCP", portIndex: 0, gracePeriodSeconds: 60, intervalSeconds: 10, timeoutSeconds: 5, maxConsecutiveFailures: 3, delaySeconds: 5 } ]
    }'
}

avoid=() servers=() created=()
for id in "${ids[@]}"; do
  name=node${id##*/node}
  servers+=("$(node_name "$id")=$(vip_key "/$name.$dns:$PG_PORT" | sed 's/:[0-9]*$//')")
  if exists "$id"; then
    say "$id exists: left as it is"
  else
    # shellcheck disable=SC2016 # a jq program
    node_json "$id" "/$name.$dns" "$(printf '%s\n' "${avoid[@]}" | jq -Rrs 'split("\n") | map(select(. != "") | gsub("(?<c>[.\\\\+*?()|{}^$\\[\\]])"; "\\\(.c)")) | unique | join("|")')" >"$TMPD/app.json"
    create_app "$TMPD/app.json"
    created+=("$id")
  fi
  get_tasks "$id" "$TMPD/tasks.json"
  mapfile -t -O "${#avoid[@]}" avoid < <(jq -r '.[] | .host // empty' "$TMPD/tasks.json")
done

if exists "$proxy_id"; then
  say "$proxy_id exists: left as it is"
else
  haproxy_cfg "${servers[@]}" >"$TMPD/haproxy.cfg"
  proxy_json "$TMPD/haproxy.cfg" >"$TMPD/app.json"
  create_app "$TMPD/app.json"
  created+=("$proxy_id")
fi

printf 'HA group %s: %s node(s), etcd %s, cluster %s; created: %s\n' "$group" "$count" "$ETCD" "$CLUSTER" "${created[*]:-nothing (all there)}"
printf 'primary: %s (read-write), replicas: %s (read-only); marathon/status.sh %s shows the roles\n' \
  "$(vip_key "$PRIMARY_VIP")" "$(vip_key "$REPLICA_VIP")" "$MARATHON"
