#!/usr/bin/env bash
# Installs the Debian packages Backstop needs to build and test, and only those missing.
# Safe to run twice. Usage: scripts/setup.sh [EXTRA_PACKAGE...]
set -euo pipefail

packages=(libzstd-dev libarchive-dev libssl-dev libsqlite3-dev pkg-config zstd tar "$@")
missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}" >&2
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
