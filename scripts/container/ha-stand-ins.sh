#!/usr/bin/env bash
# Builds local stand-ins for the two upstream images compose.ha.yaml names besides pgrepl's own,
# for machines that reach no container registry (SPEC §6 tier 3), and tags them with those names:
#
#   quay.io/coreos/etcd:v3.4.23   Debian bookworm's etcd-server and etcd-client (3.4.23, the
#                                 version of that tag), laid out as upstream's release image:
#                                 etcd and etcdctl in /usr/local/bin, /var/etcd and /var/lib/etcd,
#                                 EXPOSE 2379 2380, CMD ["/usr/local/bin/etcd"] (configured by
#                                 ETCD_* variables, as in compose.ha.yaml)
#   docker.io/library/haproxy:2.6 Debian bookworm's haproxy (2.6.12), laid out as the official
#                                 image: user and group haproxy 99:99, WORKDIR /var/lib/haproxy,
#                                 its docker-entrypoint.sh (haproxy -W -db), the configuration
#                                 at /usr/local/etc/haproxy/haproxy.cfg, STOPSIGNAL SIGUSR1
#
# Both are made on localhost/pgrepl-standin-base:bookworm, the debootstrap'ed root that
# scripts/container/stand-ins.sh imports (run first, here, so its cached tarball is reused: this
# script debootstraps nothing). Each image carries a label with a hash of this script and of the
# base image's own label: an image whose label matches is kept, anything else is rebuilt.
# Needs root and podman (with runc); the packages come from the base's Debian mirror.
#
# usage: scripts/container/ha-stand-ins.sh [--force]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WORK="$ROOT/.tmp/container"
BASE=localhost/pgrepl-standin-base:bookworm
ETCD_IMAGE=quay.io/coreos/etcd:v3.4.23
HAPROXY_IMAGE=docker.io/library/haproxy:2.6
LABEL=io.pgrepl.standin.hash
FORCE=0
[[ ${1:-} == --force ]] && FORCE=1

say() { printf 'ha-stand-ins: [%3ss] %s\n' "$SECONDS" "$*" >&2; }
die() { say "$*"; exit 1; }

[[ $(id -u) -eq 0 ]] || die "run as root (podman needs it)"
command -v podman >/dev/null || die "podman not found (apt-get install -y podman runc)"

# The bookworm base (and podman's containers.conf) from the postgres stand-ins' script, cached.
bash "$ROOT/scripts/container/stand-ins.sh" 15
export CONTAINERS_CONF=${CONTAINERS_CONF:-$WORK/containers.conf}

image_label() { podman image inspect --format "{{index .Labels \"$LABEL\"}}" "$1" 2>/dev/null || true; }
base_hash=$(image_label "$BASE")
[[ -n $base_hash ]] || die "$BASE has no $LABEL label: scripts/container/stand-ins.sh did not make it"
hash=$(printf '%s\n' "$base_hash" | cat "${BASH_SOURCE[0]}" - | sha256sum | cut -c1-16)

# Installs Debian packages in a Containerfile step; no service is started (policy-rc.d).
apt_install() {
  printf '%s' "set -eux; export DEBIAN_FRONTEND=noninteractive; \
    printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; \
    apt-get update -q; apt-get install -y -q --no-install-recommends $*; \
    rm -f /usr/sbin/policy-rc.d; \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log"
}

# Builds IMAGE from the Containerfile on stdin (context: an empty directory), unless its label
# matches. As stand-ins.sh: local images only, Docker's format, the host's network for apt.
build() {
  local image=$1 what=$2 ctx log="$WORK/build-$2.log" old
  if [[ $FORCE -eq 0 && $(image_label "$image") == "$hash" ]]; then
    cat >/dev/null
    say "$image is up to date"
    return
  fi
  say "building $image"
  old=$(podman image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
  ctx="$WORK/ctx-$what"
  rm -rf "$ctx" && mkdir -p "$ctx"
  cat >"$ctx/Containerfile"
  podman build --pull=never --format docker --network host --layers=false \
    -t "$image" -f "$ctx/Containerfile" "$ctx" >"$log" 2>&1 ||
    { tail -n 40 "$log" >&2; die "building $image failed (log: $log)"; }
  rm -rf "$ctx"
  if [[ -n $old && $(podman image inspect --format '{{len .RepoTags}}' "$old" 2>/dev/null) == 0 ]]; then
    podman rmi "$old" >/dev/null 2>&1 || true
  fi
}

build "$ETCD_IMAGE" etcd <<EOF
FROM $BASE
RUN $(apt_install etcd-server etcd-client); \
    ln -s /usr/bin/etcd /usr/bin/etcdctl /usr/local/bin/; \
    mkdir -p /var/etcd /var/lib/etcd; \
    etcd --version; etcdctl version
EXPOSE 2379 2380
CMD ["/usr/local/bin/etcd"]
LABEL $LABEL=$hash
EOF

build "$HAPROXY_IMAGE" haproxy <<EOF
FROM $BASE
# The package makes its user haproxy (a system user, so not 99, which adduser refuses): moved to
# the official image's 99:99 afterwards.
RUN $(apt_install haproxy); \
    groupmod --gid 99 haproxy; usermod --uid 99 --gid 99 --home /var/lib/haproxy haproxy; \
    install -d -o haproxy -g haproxy /var/lib/haproxy; chown -R haproxy:haproxy /var/lib/haproxy; \
    mkdir -p /usr/local/etc/haproxy; \
    printf '%s\n' '#!/bin/sh' 'set -e' \
      'if [ "\${1#-}" != "\$1" ]; then set -- haproxy "\$@"; fi' \
      'if [ "\$1" = haproxy ]; then shift; set -- haproxy -W -db "\$@"; fi' \
      'exec "\$@"' >/usr/local/bin/docker-entrypoint.sh; \
    chmod 0755 /usr/local/bin/docker-entrypoint.sh; \
    id haproxy; haproxy -v
STOPSIGNAL SIGUSR1
ENTRYPOINT ["docker-entrypoint.sh"]
USER haproxy
WORKDIR /var/lib/haproxy
CMD ["haproxy", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]
LABEL $LABEL=$hash
EOF

say "ready: $ETCD_IMAGE, $HAPROXY_IMAGE (CONTAINERS_CONF=$CONTAINERS_CONF)"
