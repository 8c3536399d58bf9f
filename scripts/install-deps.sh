#!/usr/bin/env bash
# Install what agentdb needs on Debian/Ubuntu: server packages via apt (sudo when not root),
# only those missing. Services are not started by the packages: agentdb runs its own.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

pg_major() {
  # The distribution's default PostgreSQL major (15 on Debian 12, 17 on Debian 13).
  apt-cache depends postgresql 2>/dev/null | awk '/Depends: postgresql-[0-9]+$/ && !found {sub("postgresql-", "", $2); print $2; found = 1}'
}

missing() {
  local out=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || out+=("$pkg")
  done
  echo "${out[@]:-}"
}

PGV="${PG_MAJOR:-}"
if [ -z "$PGV" ] && [ -d /usr/lib/postgresql ]; then
  # The newest major already installed (none on a fresh machine).
  PGV=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -n | tail -1)
fi
if [ -z "$PGV" ]; then
  $SUDO apt-get update -qq
  PGV=$(pg_major)
fi
if [ -z "$PGV" ]; then
  echo "error: cannot tell which PostgreSQL major this distribution ships (apt-cache depends postgresql)" >&2
  exit 2
fi

PACKAGES=(
  "postgresql-$PGV" "postgresql-client-$PGV" "postgresql-$PGV-cron" "postgresql-$PGV-partman"
  redis-server redis-tools
  prometheus prometheus-alertmanager prometheus-postgres-exporter prometheus-redis-exporter
  pgbackrest
  etcd-server haproxy # the cluster (agentdb:replicas > 0): etcd is Patroni's DCS, HAProxy routes to the leader
  pgbadger # agentdb report: HTML reports of PostgreSQL's CSV logs
  python3 python3-venv python3-dev
  build-essential pkg-config dpkg-dev libevent-dev libssl-dev libc-ares-dev
  ca-certificates curl
  procps iproute2 # ps and ss: the testinfra suite reads processes and sockets through them
  chromium chromium-driver # the pgAdmin test drives headless Chromium through Debian's chromedriver
)
# shellcheck disable=SC2207
TODO=($(missing "${PACKAGES[@]}"))
if [ "${#TODO[@]}" -eq 0 ]; then
  exit 0
fi

echo "installing ${#TODO[@]} Debian packages: ${TODO[*]}"
# Keep the packages from starting their own services (they would take agentdb's ports):
# policy-rc.d is Debian's switch for that, honoured by invoke-rc.d and deb-systemd-invoke.
POLICY=/usr/sbin/policy-rc.d
ADDED_POLICY=""
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
  $SUDO chmod 755 "$POLICY"
  ADDED_POLICY=1
fi
cleanup() { if [ -n "$ADDED_POLICY" ]; then $SUDO rm -f "$POLICY"; fi; }
trap cleanup EXIT

$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${TODO[@]}" >/dev/null
echo "Debian packages installed"
