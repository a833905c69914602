#!/usr/bin/env bash
# Shows pgrepl nodes on Marathon:
#   ./marathon/status.sh MARATHON_URL [APP_ID...] [--json]
# For each app (by default every app with PGREPL_ROLE in its env): its role (PGREPL_ROLE), the
# host(s) and state of its task, its health (Marathon's health check results: healthy, unhealthy,
# unknown while none has come yet), its VIP and the address DC/OS gives it, and for a standby its
# upstream. A deployment in progress shows as "+deploying". Exit 1 if a given app does not exist.
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
  mapfile -t ids < <(jq -r '.[] | select((.env // {}) | has("PGREPL_ROLE")) | .id' "$TMPD/apps.json")
  if [ ${#ids[@]} -eq 0 ]; then
    say "no pgrepl app (an app with PGREPL_ROLE in its env) in Marathon at $MARATHON"
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
      }' "$TMPD/app.json" >>"$TMPD/rows.jsonl"
done

if [ "$json" = 1 ]; then
  jq -s . "$TMPD/rows.jsonl"
else
  jq -rs '
    def pad($n): . + (if $n - length > 0 then " " * ($n - length) else "" end);
    [["APP", "ROLE", "HOST", "STATE", "HEALTH", "VIP", "UPSTREAM"]]
    + map(if .error then [.id, "-", "-", .error, "-", "-", "-"]
          else [.id, .role, (.hosts | join(",") | if . == "" then "-" else . end), .state, .health,
                (if .vip == "" then "-" else "\(.vip) (\(.address))" end),
                (if .upstream == "" then "-" else .upstream end)] end)
    | . as $rows
    | [range(0; $rows[0] | length) as $c | [$rows[][$c] | length] | max] as $w
    | $rows[] | [to_entries[] | .key as $c | .value | pad($w[$c])] | join("  ") | sub(" +$"; "")' "$TMPD/rows.jsonl"
fi
exit "$missing"
