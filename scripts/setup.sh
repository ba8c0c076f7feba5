#!/usr/bin/env bash
# Installs the Debian packages Backstop needs, and only those missing. Safe to run twice.
#
#   scripts/setup.sh                 build dependencies (libzstd, libarchive, libssl, sqlite, zstd, tar)
#   scripts/setup.sh --test          plus what the tests use (MariaDB, PostgreSQL, attr, age)
#   scripts/setup.sh --bench         plus the peers the benchmark runs (restic, borg, hyperfine, time)
#
# Services that packages would start (mariadb, postgresql) are not started: the tests run private
# instances of their own.
set -euo pipefail

packages=(libzstd-dev libarchive-dev libssl-dev libsqlite3-dev pkg-config zstd tar)
for arg in "$@"; do
    case "$arg" in
        --test) packages+=(attr mariadb-server mariadb-client postgresql postgresql-client util-linux python3 age) ;;
        --bench) packages+=(restic borgbackup hyperfine time bc python3 age) ;;
        *) echo "setup: unknown option $arg (use --test or --bench)" >&2; exit 64 ;;
    esac
done

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
((${#missing[@]})) || exit 0

echo "setup: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
# Keep package scripts from starting system database services.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod +x "$policy"
    made_policy=1
fi
cleanup() { if [ "$made_policy" = 1 ]; then $SUDO rm -f "$policy"; fi; }
trap cleanup EXIT
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
