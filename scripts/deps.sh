#!/usr/bin/env bash
# Installs what metarelay needs to build, test and benchmark: the Debian packages of
# DESIGN.md §2 that are missing, then the pinned npm test clients (npm ci).
# Idempotent and quiet when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(build-essential cmake ninja-build pkg-config
      libuv1-dev libhttp-parser-dev libcurl4-openssl-dev libssl-dev libjansson-dev libpcre2-dev
      libsqlite3-dev libpq-dev libsodium-dev libcmocka-dev
      ca-certificates curl nodejs npm sqlite3)
if [ "${1:-}" = "--bench" ]; then PKGS+=(wrk nginx-light haproxy valgrind); fi

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node/npm may come from outside Debian's packages on some machines: accept them if present.
if command -v node >/dev/null && command -v npm >/dev/null; then
  tmp=(); for p in "${missing[@]}"; do [ "$p" = nodejs ] || [ "$p" = npm ] || tmp+=("$p"); done
  missing=("${tmp[@]+"${tmp[@]}"}")
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ -f tests/e2e/package-lock.json ]; then
  if [ ! -d tests/e2e/node_modules ] || [ tests/e2e/package-lock.json -nt tests/e2e/node_modules/.package-lock.json ]; then
    (cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)
  fi
fi
