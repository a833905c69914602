# pgrepl: the official postgres image with pgrepl as its entrypoint.
#
#   docker build -t postgres_repl .                              # PostgreSQL 17
#   docker build -t postgres_repl:15 --build-arg PG_MAJOR=15 .   # any major the official image has
#
# Only a Node runtime, tini (used in HA mode only) and one bundled file are added to the postgres
# image; everything else (binaries, postgres user 999, PGDATA, VOLUME, EXPOSE, the user the
# container starts as) is the base image's.
ARG NODE_IMAGE=node:24-bookworm-slim
ARG PG_MAJOR=17

# The Node runtime, without its symbol tables (about 18 MB). The node image has no strip: take it
# from Debian's binutils, in this throw-away stage; without it the binary is copied unstripped.
# And Debian's tini, static (it runs on every base's Debian release): in HA mode the agent stays
# beside postgres and, as PID 1, runs under tini, which reaps orphans (src/handover/init.ts).
FROM ${NODE_IMAGE} AS node
RUN set -eux; \
    mkdir /out; \
    cp /usr/local/bin/node /out/node; \
    apt-get update -q; \
    apt-get install -y -q --no-install-recommends tini; \
    cp /usr/bin/tini-static /out/tini; \
    /out/tini --version; \
    if ! command -v strip >/dev/null; then \
      apt-get install -y -q --no-install-recommends binutils \
        || echo 'pgrepl: no binutils: the Node binary stays unstripped' >&2; \
    fi; \
    if command -v strip >/dev/null; then strip /out/node; fi; \
    /out/node -e 'if (typeof process.execve !== "function") { console.error("pgrepl needs a Node with process.execve (>= 22.15)"); process.exit(1) }'

# The bundle: dist/pgrepl.cjs, one file that needs no node_modules.
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json build.mjs ./
COPY src ./src
RUN npm run build && chmod 0755 dist/pgrepl.cjs

FROM postgres:${PG_MAJOR}
COPY --from=node /out/node /usr/local/bin/node
COPY --from=node /out/tini /usr/local/bin/tini
COPY --from=build /src/dist/pgrepl.cjs /usr/local/lib/pgrepl/pgrepl.cjs
# Node's compile cache: V8's code for the bundle, made here once (by `pgrepl help`, as root, who
# starts the entrypoint), so that a start does not parse and compile the 1 MB bundle again (about
# 8 ms of every start on bench/RESULTS.md's 2-core machine). Node checks it against its own
# version and the bundle's contents (a mismatch is ignored) and keeps one subdirectory per uid:
# processes run as postgres (archive-wal, a container started with --user) find none, cannot
# make one in this root-owned directory, and compile as before, silently. Every Node program in
# the container sees the variable (a cache, nothing else); a read-only root file system only
# stops its updates.
ENV NODE_COMPILE_CACHE=/var/cache/pgrepl/node-compile-cache
# The bundle starts with `#!/usr/bin/env node`: the command is a link to it.
RUN set -eux; \
    ln -s ../lib/pgrepl/pgrepl.cjs /usr/local/bin/pgrepl; \
    mkdir -p "$NODE_COMPILE_CACHE"; \
    pgrepl help 2>/dev/null; \
    chmod -R a+rX /var/cache/pgrepl; \
    ls -lR "$NODE_COMPILE_CACHE"
ENTRYPOINT ["pgrepl"]
CMD ["postgres"]
# PostgreSQL's fast shutdown (as the base image): postgres is PID 1 and gets it directly (in HA
# mode: tini is PID 1 and passes it to the agent, which passes it to postgres).
STOPSIGNAL SIGINT
# `pgrepl health` exits 0 healthy, 1 unhealthy, 2 starting (waiting for the upstream, cloning,
# rewinding, recovering). Docker knows only 0 healthy and 1 unhealthy (2 is reserved), and its
# "starting" state ends with --start-period, while a standby's clone can take hours. Counting a
# long clone as unhealthy gets the container replaced by any orchestrator that acts on health
# (Swarm, autoheal), and the clone starts over, forever. So "starting" passes the check here; who
# needs to tell a node that serves from one that is still cloning runs `pgrepl health` itself.
# The start period covers Node's and the entrypoint's first seconds, before there is a phase to read.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD pgrepl health || [ $? -eq 2 ]
