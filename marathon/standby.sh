#!/usr/bin/env bash
# Creates a standby of an app on Marathon (a primary, or a standby for a cascade):
#   ./marathon/standby.sh MARATHON_URL PRIMARY_APP_ID APP_ID VIP
#   ./marathon/standby.sh http://marathon.mesos:8080 pgrepl1 pgrepl2 /standby.pgrepl:5432
# The standby streams from the upstream's VIP address (so it follows the VIP when promote.sh moves
# it), runs on another host than the upstream (hostname UNLIKE its host), and gets by default the
# upstream's image, cpus, memory and volume size (PGREPL_IMAGE, PGREPL_CPUS, PGREPL_MEM,
# PGREPL_DISK_SIZE override them: a bigger disk, then promote.sh, is how a database grows).
# Its PGREPL_PEERS: its upstream's, its upstream's VIP address and its own, so that every node lists
# the primary's VIP (the address a promotion moves) and the nodes it knows.
# Returns once Marathon's deployment is done, i.e. the clone is over and the node is healthy.
# Settings: see marathon/lib.sh.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

USAGE="$PROG MARATHON_URL PRIMARY_APP_ID APP_ID VIP   (e.g. $PROG http://marathon.mesos:8080 pgrepl1 pgrepl2 /standby.pgrepl:5432)"
[ $# -eq 4 ] || usage
init "$1"
primary=$(app_id "$2")
id=$(app_id "$3")
vip=$4
check_vip "$vip"
[ "$primary" != "$id" ] || usage "the standby's app id must differ from its primary's"
# A standby never runs initdb: its superuser password is the primary's, copied with the data.
require_secrets PGREPL_TOKEN

get_app "$primary" "$TMPD/primary.json" "the primary"
upstream_vip=$(jq -r "$JQ_DEFS"'vips[0] // empty' "$TMPD/primary.json")
[ -n "$upstream_vip" ] || die "$primary has no VIP label: a standby reaches its upstream at the upstream's VIP (deploy it with primary.sh or standby.sh)"
upstream=$(vip_key "$upstream_vip")
UPSTREAM_HOST=${upstream%:*}
UPSTREAM_PORT=${upstream##*:}
[ "$(vip_key "$vip")" != "$upstream" ] || usage "the standby's VIP $vip is its primary's address ($upstream): give the standby its own VIP"
if jq -e '.env // {} | .PGREPL_TOKEN == null and .PGREPL_TOKEN_FILE == null' "$TMPD/primary.json" >/dev/null; then
  die "$primary runs without PGREPL_TOKEN, so with replication off: no standby can log in to it; give it PGREPL_TOKEN (edit its app definition) and run again"
fi
if jq -e '(.env.PGREPL_TOKEN | type) == "string" and .env.PGREPL_TOKEN != $ENV.PGREPL_TOKEN' "$TMPD/primary.json" >/dev/null; then
  die "PGREPL_TOKEN differs from $primary's: the standby could not log in for replication; export the primary's token"
fi

get_tasks "$primary" "$TMPD/tasks.json"
# The hosts of the upstream's tasks, as an anchored regex (Marathon matches the whole host name).
AVOID_HOSTS=$(jq -r '[.[] | .host // empty] | unique | map(gsub("(?<c>[.\\\\+*?()|{}^$\\[\\]])"; "\\\(.c)")) | join("|")' "$TMPD/tasks.json")
[ -n "$AVOID_HOSTS" ] || die "$primary has no task, so its host is unknown and the standby could land on it: wait until it runs (status.sh) and try again"

IMAGE=${PGREPL_IMAGE:-$(jq -r '.container.docker.image // empty' "$TMPD/primary.json")}
[ -n "$IMAGE" ] || die "$primary has no Docker image and PGREPL_IMAGE is not set"
DISK=$(int_setting PGREPL_DISK_SIZE "$(jq -r '[.container.volumes[]? | .persistent.size // empty][0] // 100' "$TMPD/primary.json")" 1)
CPUS=$(cpus_setting "$(jq -r '.cpus // 1' "$TMPD/primary.json")")
MEM=$(int_setting PGREPL_MEM "$(jq -r '.mem // 1024 | floor' "$TMPD/primary.json")" 32)
GRACE=$(health_grace "$DISK")
KILL_GRACE=$(int_setting PGREPL_KILL_GRACE "$(jq -r '.taskKillGracePeriodSeconds // 120' "$TMPD/primary.json")" 0)
PEERS=$(jq -r --arg up "$upstream" --arg own "$(vip_key "$vip")" "$JQ_DEFS"'.env // {} | with_peers([$up, $own]) | .PGREPL_PEERS' "$TMPD/primary.json")

get_apps "$TMPD/apps.json"
refuse_taken_vip "$vip" "$TMPD/apps.json" "$id"
refuse_taken_node_name "$TMPD/apps.json" "$id"

app_json "$id" STANDBY "$vip" >"$TMPD/app.json"
create_app "$TMPD/app.json"
printf 'standby %s of %s deployed: streams from %s, at %s\n' "$id" "$primary" "$upstream" "$(vip_key "$vip")"
