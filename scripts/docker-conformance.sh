#!/usr/bin/env bash
# The Docker conformance run (`make test-docker`): Debian's dockerd, a debootstrapped debian:trixie-slim,
# every image built from docker/, exactly the containers the Pulumi program declares (read under mocks),
# then tests/docker through testinfra's docker:// backend and PgBouncer. Grafana alone is left out:
# its image cannot be pulled here.
#
# Needs root (dockerd, debootstrap). Leaves no container, network or volume behind; stops the dockerd
# it started. AGENTDB_DOCKER_KEEP=1 keeps the containers for a look afterwards; AGENTDB_DOCKER_TLS=1 runs
# the dev stack with TLS on, as staging and prod have it. Arguments go to pytest (-k, -x, ...).
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$(pwd)
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
WORK=${AGENTDB_DOCKER_WORK:-/var/tmp/agentdb-docker}
BASE=$("$PYTHON" -c 'from infra.settings import Settings; print(Settings().base_image)')
SUITE=${BASE#*:}; SUITE=${SUITE%%-*}   # debian:trixie-slim -> trixie
start=$(date +%s)
say() { echo "[docker-conformance] $*"; }

if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null; then
    say "installing docker.io and debootstrap from Debian"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap >/dev/null
fi

mkdir -p "$WORK"
started_dockerd=""
if ! docker info >/dev/null 2>&1; then
    say "starting dockerd (vfs storage, no iptables, no default bridge)"
    dockerd --storage-driver=vfs --iptables=false --bridge=none >"$WORK/dockerd.log" 2>&1 &
    started_dockerd=$!
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    docker info >/dev/null 2>&1 || { say "dockerd did not start:"; tail -20 "$WORK/dockerd.log"; exit 1; }
fi
stop_dockerd() {
    if [ -n "$started_dockerd" ]; then
        kill "$started_dockerd" 2>/dev/null || true
        wait "$started_dockerd" 2>/dev/null || true
    fi
}
trap stop_dockerd EXIT

if ! docker image inspect "$BASE" >/dev/null 2>&1; then
    say "making $BASE with debootstrap --variant=minbase $SUITE"
    rm -rf "$WORK/rootfs"
    debootstrap --variant=minbase "$SUITE" "$WORK/rootfs" >"$WORK/debootstrap.log" 2>&1 \
        || { tail -20 "$WORK/debootstrap.log"; exit 1; }
    tar -C "$WORK/rootfs" -c . | docker import - "$BASE" >/dev/null
    rm -rf "$WORK/rootfs"
fi
# pip in the patroni image's build reaches PyPI with the host's own extra CAs (a TLS-intercepting
# proxy's, as on this machine); the directory is empty in git and on a machine without such CAs.
find /usr/local/share/ca-certificates -maxdepth 1 -name '*.crt' -exec cp {} docker/patroni/ca/ \; 2>/dev/null || true
say "base image ready after $(( $(date +%s) - start ))s"

status=0
AGENTDB_DOCKER=1 "$PYTHON" -m pytest tests/docker -p no:cacheprovider -q -s -rs "$@" || status=$?
say "finished in $(( $(date +%s) - start ))s (exit $status)"
exit $status
