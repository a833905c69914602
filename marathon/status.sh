#!/usr/bin/env bash
# Shows pgrepl nodes on Marathon:
#   ./marathon/status.sh MARATHON_URL [APP_ID...] [--json]
# For each app (by default every app with PGREPL_ROLE or PGREPL_ETCD_ENDPOINTS in its env): its role
# (PGREPL_ROLE; HA for a node in HA mode, whose role etcd decides), the host(s) and state of its
# task, its health (Marathon's health check results: healthy, unhealthy, unknown while none has
# come yet), its VIP and the address DC/OS gives it, and for a standby its upstream. A deployment
# in progress shows as "+deploying". The table is the topology as a tree: a standby under the app
# whose VIP it streams from (as configured).
# HA nodes (marathon/ha.sh's): their cluster as `pgrepl list` shows it, asked of a node's agent API
# (GET /cluster, what `pgrepl list --json` prints) at its task's host and API host port: the
# leader, the standbys under it, cascades, lag, sync marks. --json adds each HA node's member
# entry as `ha` (null when no node answered).
# Exit 1 if a given app does not exist.
# Settings: see marathon/lib.sh.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

USAGE="$PROG MARATHON_URL [APP_ID...] [--json]"
json=0 positional=()
for arg in "$@"; do
  case $arg in
    --json) json=1 ;;
    -h | --help) printf 'usage: %s\n' "$USAGE" && exit 0 ;;
    -*) usage "unknown option $arg" ;;
    *) positional+=("$arg") ;;
  esac
done
[ ${#positional[@]} -ge 1 ] || usage
init "${positional[0]}"
ids=()
for arg in "${positional[@]:1}"; do ids+=("$(app_id "$arg")"); done

if [ ${#ids[@]} -eq 0 ]; then
  get_apps "$TMPD/apps.json"
  mapfile -t ids < <(jq -r '.[] | select((.env // {}) | has("PGREPL_ROLE") or has("PGREPL_ETCD_ENDPOINTS")) | .id' "$TMPD/apps.json")
  if [ ${#ids[@]} -eq 0 ]; then
    say "no pgrepl app (an app with PGREPL_ROLE or PGREPL_ETCD_ENDPOINTS in its env) in Marathon at $MARATHON"
    if [ "$json" = 1 ]; then echo '[]'; fi
    exit 0
  fi
fi

missing=0
: >"$TMPD/rows.jsonl"
for id in "${ids[@]}"; do
  api GET "/v2/apps$id"
  case $HTTP_STATUS in
    200) jq '.app' "$RESP" >"$TMPD/app.json" ;;
    404)
      missing=1
      jq -cn --arg id "$id" '{id: $id, error: "no such app"}' >>"$TMPD/rows.jsonl"
      continue
      ;;
    *) api_error "reading app $id" ;;
  esac
  get_tasks "$id" "$TMPD/tasks.json"
  jq -c --arg fw "$FRAMEWORK" --slurpfile tasks "$TMPD/tasks.json" "$JQ_DEFS"'
    def health: if (.healthCheckResults // []) == [] then "unknown"
                elif all(.healthCheckResults[]; .alive) then "healthy" else "unhealthy" end;
    ($tasks[0]) as $t
    | ([(.container.portMappings // .container.docker.portMappings // [])[] | .name] | index("api")) as $api
    | {
        id,
        role: role,
        hosts: [$t[] | .host // empty] | unique,
        state: (([$t[] | .state // "?"] | unique | join(",") | if . == "" then "no task" else . end)
                + (if (.deployments // []) != [] then "+deploying" else "" end)),
        health: (if $t == [] then "-"
                 elif (.healthChecks // []) == [] then "no check"
                 else [$t[] | health] | unique | join(",") end),
        vip: (vips[0] // ""),
        address: (if vips[0] then vips[0] | vip_key($fw) else "" end),
        upstream: upstream
      }
      + (if ha_node then
           { cluster: ((.env.PGREPL_CLUSTER // "pgrepl") | tostring), node: ((.env.PGREPL_NODE_NAME // "") | tostring),
             apis: [$t[] | select(running and .host and $api != null and .ports[$api]) | "\(.host):\(.ports[$api])"] }
         else {} end)' "$TMPD/app.json" >>"$TMPD/rows.jsonl"
done
jq -s . "$TMPD/rows.jsonl" >"$TMPD/rows.json"

# Each HA cluster's listing, from the first of its nodes' APIs that answers (not through curl's
# config: the DC/OS token is Marathon's, not the nodes').
: >"$TMPD/clusters.jsonl"
while IFS= read -r cluster; do
  [ -n "$cluster" ] || continue
  listing=null asked=
  while IFS= read -r api; do
    [ -n "$api" ] || continue
    code=$(curl -sS --max-time 5 -o "$TMPD/cluster.json" -w '%{http_code}' "http://$api/cluster" 2>/dev/null) || code=
    if [ "$code" = 200 ] && jq -e '.cluster and (.members | type) == "array"' "$TMPD/cluster.json" >/dev/null 2>&1; then
      listing=$(jq -c . "$TMPD/cluster.json") asked=$api
      break
    fi
  done < <(jq -r --arg c "$cluster" '.[] | select(.cluster == $c) | .apis[]' "$TMPD/rows.json")
  jq -cn --arg c "$cluster" --arg asked "$asked" --argjson listing "$listing" '{cluster: $c, asked: $asked, listing: $listing}' >>"$TMPD/clusters.jsonl"
done < <(jq -r '[.[] | .cluster // empty] | unique[]' "$TMPD/rows.json")

if [ "$json" = 1 ]; then
  jq --slurpfile clusters "$TMPD/clusters.jsonl" '
    map(if has("cluster") then
          .cluster as $c | .node as $n
          | ($clusters | map(select(.cluster == $c))[0].listing) as $l
          | del(.apis, .node) + { ha: (if $l then ($l.members | map(select(.name == $n))[0]) else null end) }
        else . end)' "$TMPD/rows.json"
else
  jq -r "$JQ_DEFS"'
    . as $rows
    | map(if .error then {name: .id, parent: null, cells: ["-", "-", .error, "-", "-", "-"]}
          else {name: .id,
                parent: (.upstream as $u | if $u == "" then null else ([$rows[] | select(.address == $u) | .id][0]) end),
                cells: [.role, (.hosts | join(",") | if . == "" then "-" else . end), .state, .health,
                        (if .vip == "" then "-" else "\(.vip) (\(.address))" end),
                        (if .upstream == "" then "-" else .upstream end)]} end)
    | tree_lines(["APP", "ROLE", "HOST", "STATE", "HEALTH", "VIP", "UPSTREAM"]; [])' "$TMPD/rows.json"
  jq -r "$JQ_DEFS"'
    def lag: if . < 1048576 then "\(.) B" else "\(. / 1048576 * 10 | round / 10 | tostring | if test("[.]") then . else . + ".0" end) MB" end;
    "",
    if .listing == null then "HA cluster \(.cluster): no node'"'"'s API answered on /cluster: roles unknown"
    else .listing as $l
      | "HA cluster \($l.cluster) (\(if $l.system == null then "not initialised" elif $l.system == "" then "initialising" else "system \($l.system)" end)): \(if $l.leader == null then "no leader" else "leader \($l.leader)" end)\(if $l.timeline == null then "" else ", timeline \($l.timeline)" end), asked at \(.asked)",
        (if $l.pause then "Paused: no automatic failover, promotion or switchover until `pgrepl resume`" else empty end),
        (if ($l.members | length) == 0 then "No members: no agent has published itself yet"
         else $l.members
           | map(. as $m | {name, parent: (if has("upstreamMember") then .upstreamMember
                                           elif .state == "streaming" and $l.leader != null and .name != $l.leader then $l.leader else null end),
                 cells: [.address, .role, .state, (.timeline // "?" | tostring),
                         (if .leader then "" elif .lagBytes == null then "unknown" else (.lagBytes | lag) end), (.tags | join(" "))]})
           | tree_lines(["Member", "Address", "Role", "State", "TL", "Lag", "Tags"]; [4, 5])
         end)
    end' "$TMPD/clusters.jsonl"
fi
exit "$missing"
