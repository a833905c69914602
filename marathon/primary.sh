#!/usr/bin/env bash
# Creates a primary on Marathon:
#   ./marathon/primary.sh MARATHON_URL APP_ID VIP
#   ./marathon/primary.sh http://marathon.mesos:8080 pgrepl1 /primary.pgrepl:5432
# One instance of PGREPL_IMAGE on a local persistent volume of PGREPL_DISK_SIZE MiB (default 100)
# holding PGDATA, reachable at the VIP's address (primary.pgrepl.marathon.l4lb.thisdcos.directory:5432
# for the example). Returns once Marathon's deployment is done, i.e. the node is healthy.
# Its PGREPL_PEERS is the VIP's address: while it starts nothing answers there, and once a standby
# promoted by promote.sh holds the VIP, this node started again as a PRIMARY (an old definition
# restored, say) finds that newer primary there and rejoins it as a standby (fencing).
# Settings: see marathon/lib.sh.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

USAGE="$PROG MARATHON_URL APP_ID VIP   (e.g. $PROG http://marathon.mesos:8080 pgrepl1 /primary.pgrepl:5432)"
[ $# -eq 3 ] || usage
init "$1"
id=$(app_id "$2")
vip=$3
check_vip "$vip"

new_node_settings
GRACE=$(health_grace "$DISK")
PEERS=$(vip_key "$vip")

get_apps "$TMPD/apps.json"
refuse_taken_vip "$vip" "$TMPD/apps.json" "$id"
refuse_taken_node_name "$TMPD/apps.json" "$id"

app_json "$id" PRIMARY "$vip" >"$TMPD/app.json"
create_app "$TMPD/app.json"
printf 'primary %s deployed: %s, at %s\n' "$id" "$IMAGE" "$(vip_key "$vip")"
