#!/usr/bin/env bash
# Promotes a standby on Marathon, safely:
#   ./marathon/promote.sh MARATHON_URL APP_ID [VIP] [--old-primary APP_ID] [--force] [--no-restart-followers]
#   ./marathon/promote.sh http://marathon.mesos:8080 pgrepl2 /primary.pgrepl:5432 --old-primary pgrepl1
#
# 1. With --old-primary, that app is first re-pointed: PGREPL_ROLE=STANDBY, upstream the VIP, the
#    VIP's address among its PGREPL_PEERS, the VIP label removed. Its running task is killed (and this script waits for it, so that two
#    writable primaries never run at once); when it runs again (at once, or when its agent comes
#    back) it rejoins as a standby of the new primary by pg_rewind, instead of coming back writable.
#    If its agent is gone (task unreachable), its new definition waits for it.
# 2. APP_ID gets PGREPL_ROLE=PRIMARY (its data is kept: the image promotes a standby's cluster on
#    start) and the VIP (VIP_0), replacing its own, its address among its PGREPL_PEERS; then this
#    script waits for the deployment.
# 3. The other standbys that stream from the VIP are restarted, so that each gets its replication
#    slot on the new primary (--no-restart-followers skips this).
# VIP defaults to the old primary's VIP. An app other than the old primary that holds the VIP is an
# error: clients would be balanced between two databases. --force passes ?force=true to Marathon,
# overriding a deployment that locks an app (a 409). Settings: see marathon/lib.sh;
# PGREPL_STOP_TIMEOUT (seconds, default the old primary's kill grace + 60) bounds step 1's wait.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

USAGE="$PROG MARATHON_URL APP_ID [VIP] [--old-primary APP_ID] [--force] [--no-restart-followers]"
force=0 restart_followers=1 old_arg='' positional=()
while [ $# -gt 0 ]; do
  case $1 in
    --old-primary)
      [ $# -ge 2 ] || usage "--old-primary needs an app id"
      old_arg=$2
      shift 2
      ;;
    --old-primary=*) old_arg=${1#*=} && shift ;;
    --force) force=1 && shift ;;
    --no-restart-followers) restart_followers=0 && shift ;;
    -h | --help) printf 'usage: %s\n' "$USAGE" && exit 0 ;;
    --) shift && positional+=("$@") && break ;;
    -*) usage "unknown option $1" ;;
    *) positional+=("$1") && shift ;;
  esac
done
if [ ${#positional[@]} -lt 2 ] || [ ${#positional[@]} -gt 3 ]; then usage; fi
init "${positional[0]}"
id=$(app_id "${positional[1]}")
vip=${positional[2]:-}
[ -z "$vip" ] || check_vip "$vip"
old=
if [ -n "$old_arg" ]; then
  old=$(app_id "$old_arg")
  [ "$old" != "$id" ] || usage "--old-primary must name another app than the one to promote"
fi

get_app "$id" "$TMPD/new.json" "the standby to promote"
jq -e '(.env // {}) | has("PGREPL_ROLE")' "$TMPD/new.json" >/dev/null ||
  die "$id is not a pgrepl node (no PGREPL_ROLE in its env): deploy nodes with primary.sh and standby.sh"
if [ -n "$old" ]; then
  get_app "$old" "$TMPD/old.json" "the old primary"
  if [ -z "$vip" ]; then vip=$(jq -r "$JQ_DEFS"'vips[0] // empty' "$TMPD/old.json"); fi
  [ -n "$vip" ] || usage "$old has no VIP and none is given: the old primary follows the new one at a VIP; give one"
fi

# Nothing is changed while a deployment locks either app (Marathon would refuse the second update
# with a 409 after the first was made), unless --force.
if [ "$force" != 1 ]; then
  for f in "$TMPD/new.json" ${old:+"$TMPD/old.json"}; do
    locked=$(jq -r '[(.deployments // [])[].id] | join(", ")' "$f")
    [ -z "$locked" ] ||
      die "$(jq -r .id "$f") is locked by deployment $locked: wait for it to finish (status.sh shows +deploying), or pass --force to override it; nothing changed"
  done
fi

# The standby must run: promoting one whose agent is gone would leave no primary at all.
get_tasks "$id" "$TMPD/new-tasks.json"
if ! jq -e "$JQ_DEFS"'any(.[]; running)' "$TMPD/new-tasks.json" >/dev/null; then
  if [ "$force" = 1 ]; then
    warn "$id has no running task: it is promoted when it runs again"
  else
    die "$id has no running task ($(jq -r '[.[] | "\(.state) on \(.host // "?")"] | join(", ") | if . == "" then "none" else . end' "$TMPD/new-tasks.json")): promote a standby that runs, or pass --force to update it anyway; nothing changed"
  fi
fi

key=
get_apps "$TMPD/apps.json"
if [ -n "$vip" ]; then
  key=$(vip_key "$vip")
  holders=$(vip_holders "$TMPD/apps.json" "$key" "$id" ${old:+"$old"} | paste -sd, -)
  [ -z "$holders" ] ||
    die "the VIP $vip ($key) is on $holders: clients would be balanced between two databases. Pass --old-primary ${holders%%,*} (it becomes a standby of $id), or delete it, first"
fi
if [ -z "$old" ]; then
  # A writable upstream that stays writable: say so (a deliberate fork is allowed).
  up=$(jq -r "$JQ_DEFS"'upstream' "$TMPD/new.json")
  if [ -n "$up" ]; then
    writable=$(jq -r --arg up "$up" --arg id "$id" --arg fw "$FRAMEWORK" "$JQ_DEFS"'
      .[] | select(.id != $id and role == "PRIMARY" and any(vips[]; vip_key($fw) == $up)) | .id' "$TMPD/apps.json" | paste -sd, -)
    [ -z "$writable" ] ||
      warn "$writable, $id's upstream, stays a writable primary: two primaries now. Run again with --old-primary ${writable%%,*} to make it a standby of $id"
  fi
fi

# The fields of an app that change, and its id: a partial update (Marathon replaces each field given).
# shellcheck disable=SC2016 # jq programs
JQ_UPDATE="$JQ_DEFS"'
def strip_vip($fw; $key): if .labels then .labels |= with_entries(select((.key | test("^VIP_[0-9]+$") | not) or ((.value | vip_key($fw)) != $key))) else . end;
def set_vip($vip): .labels = (((.labels // {}) | with_entries(select(.key | test("^VIP_[0-9]+$") | not))) + { VIP_0: $vip });
def changed($new): . as $cur | { id: .id } + ($new | with_entries(select(.value != $cur[.key])));
'

# 1. The old primary becomes a standby of the VIP, without it; its running task is stopped.
old_changed=0
if [ -n "$old" ]; then
  jq --arg fw "$FRAMEWORK" --arg key "$key" "$JQ_UPDATE"'
    unnull | changed({
      env: ((.env // {}) + { PGREPL_ROLE: "STANDBY", PGREPL_MASTER_IP: ($key | sub(":[0-9]+$"; "")), PGREPL_MASTER_PORT: ($key | sub("^.*:"; "")) } | with_peers([$key])),
      container: (.container
        | if .portMappings then .portMappings |= map(strip_vip($fw; $key)) else . end
        | if .docker.portMappings then .docker.portMappings |= map(strip_vip($fw; $key)) else . end),
      portDefinitions: (if .portDefinitions then .portDefinitions | map(strip_vip($fw; $key)) else null end)
    } | with_entries(select(.value != null)))' "$TMPD/old.json" >"$TMPD/old-update.json"
  VERSION=$(jq -r '.versionInfo.lastConfigChangeAt // .version // empty' "$TMPD/old.json")
  if jq -e 'keys != ["id"]' "$TMPD/old-update.json" >/dev/null; then
    say "re-pointing $old: STANDBY of $key"
    put_app "$old" "$TMPD/old-update.json" "$force"
    old_changed=1
  fi
  # Its tasks of an earlier configuration (a primary) must be gone, or unreachable, before promoting:
  # also when an earlier run re-pointed it already.
  if [ -z "$VERSION" ]; then
    warn "Marathon gave no version for $old: not waiting for its old task to stop"
  else
    timeout=$(int_setting PGREPL_STOP_TIMEOUT "$(($(jq -r '.taskKillGracePeriodSeconds // 120' "$TMPD/old.json") + 60))" 1)
    deadline=$((SECONDS + timeout))
    while :; do
      get_tasks "$old" "$TMPD/old-tasks.json"
      left=$(jq -r --arg v "$VERSION" "$JQ_DEFS"'[.[] | select(running and .version < $v) | "\(.id) on \(.host // "?")"] | join(", ")' "$TMPD/old-tasks.json")
      [ -n "$left" ] || break
      if [ "$SECONDS" -ge "$deadline" ]; then
        printf '%s: %s still runs its task as a primary (%s) after %ss: not promoting %s while %s may accept writes. If its agent is gone, wait until Marathon reports the task unreachable (status.sh), then run this again\n' \
          "$PROG" "$old" "$left" "$timeout" "$id" "$old" >&2
        exit 3
      fi
      sleep "$DEPLOY_POLL"
    done
  fi
fi

# 2. The standby becomes the primary, with the VIP.
jq --arg vip "$vip" --arg key "$key" "$JQ_UPDATE"'
  unnull | changed({
    env: ((.env // {}) | del(.PGREPL_MASTER_IP, .PGREPL_MASTER_PORT) + { PGREPL_ROLE: "PRIMARY" } | if $key == "" then . else with_peers([$key]) end)
  } + (if $vip == "" then {}
       elif (.container.portMappings // []) != [] then { container: (.container | .portMappings[0] |= set_vip($vip)) }
       elif (.container.docker.portMappings // []) != [] then { container: (.container | .docker.portMappings[0] |= set_vip($vip)) }
       elif (.portDefinitions // []) != [] then { portDefinitions: (.portDefinitions | .[0] |= set_vip($vip)) }
       else error("no port to put the VIP on") end))' "$TMPD/new.json" >"$TMPD/new-update.json" ||
  die "$id has no port mapping to put the VIP on"
promoted=0
if jq -e 'keys != ["id"]' "$TMPD/new-update.json" >/dev/null; then
  say "promoting $id${key:+ at $key}"
  put_app "$id" "$TMPD/new-update.json" "$force"
  wait_deployment "$DEPLOYMENT" "$id"
  promoted=1
fi

# 3. The standbys that stream from the VIP restart, to get their slot on the new primary.
restarted=()
query=''
if [ "$force" = 1 ]; then query='?force=true'; fi
if [ "$promoted" = 1 ] && [ "$restart_followers" = 1 ] && [ -n "$key" ]; then
  mapfile -t followers < <(jq -r --arg key "$key" --arg id "$id" --arg old "$old" "$JQ_DEFS"'
    .[] | select(.id != $id and .id != $old and role == "STANDBY" and upstream == $key) | .id' "$TMPD/apps.json")
  for follower in "${followers[@]}"; do
    api POST "/v2/apps$follower/restart$query"
    if [ "$HTTP_STATUS" = 200 ] || [ "$HTTP_STATUS" = 201 ]; then
      restarted+=("$follower")
    else
      warn "restarting $follower, a standby of $key: $(api_error_text) (restart it yourself: its replication slot is not on the new primary yet)"
    fi
  done
fi

if [ "$promoted" = 1 ]; then
  printf 'promoted %s: PRIMARY%s\n' "$id" "${key:+ at $key}"
else
  printf '%s is already the primary%s: nothing to change\n' "$id" "${key:+ at $key}"
fi
if [ -n "$old" ]; then
  if [ "$old_changed" = 1 ]; then
    printf '%s: now a STANDBY of %s; it rejoins by rewind when it runs again\n' "$old" "$key"
  else
    printf '%s: already a STANDBY of %s\n' "$old" "$key"
  fi
fi
if [ ${#restarted[@]} -gt 0 ]; then
  printf 'restarted the standbys of %s: %s\n' "$key" "${restarted[*]}"
fi
