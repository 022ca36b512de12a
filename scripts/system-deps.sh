#!/usr/bin/env bash
# What Viva's tests need beyond Python: a running Docker engine, debootstrap to build the offline base image,
# Chromium for the browser tests, and PostgreSQL's server binaries (the database tests start a throwaway cluster of
# their own; no service is left running).
# Installs (Debian, as root) and starts what is missing; otherwise says what to run. Idempotent and quick when
# everything is already there.
set -euo pipefail

need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
{ command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; } || need+=(postgresql)
command -v chromium >/dev/null 2>&1 || need+=(chromium)  # the browser tests drive Debian's Chromium
command -v flite >/dev/null 2>&1 || need+=(flite)  # spoken answers for the voice tests
command -v ip >/dev/null 2>&1 || need+=(iproute2)  # the many-workers test gives its second Docker engine a bridge
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${need[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "Viva's sandbox tests need ${need[*]}: sudo apt-get install ${need[*]}" >&2
    exit 1
  fi
fi

if ! docker info >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    echo "starting dockerd" >&2
    (setsid dockerd >/tmp/viva-dockerd.log 2>&1 &)
    for _ in $(seq 1 60); do
      docker info >/dev/null 2>&1 && break
      sleep 1
    done
  fi
  docker info >/dev/null 2>&1 || {
    echo "no Docker engine is running (sudo systemctl start docker; log: /tmp/viva-dockerd.log)" >&2
    exit 1
  }
fi
