#!/usr/bin/env bash
# Remakes Tests/BackstopTests/Fixtures/v1-repository/: a REAL format-1 repository, written by the
# last release before format 2, for the `backstop migrate` tests.
#
# Usage: scripts/make-v1-fixture.sh FORMAT1-BACKSTOP-BINARY
#   (a `backstop` built from the last commit of main before format 2, version 0.1.0)
#
# What it holds (Tests/BackstopTests/Fixtures/v1-repository/README.md says the same):
#   - a filesystem snapshot (source `files`) of the tree made below: a few small files, a
#     subdirectory, a symlink, an empty file and a 3 MiB file of SHA-256 counter bytes
#     (incompressible, so the payload has several frames); every mtime fixed;
#   - a logical snapshot (source `shop-dump`) of Tests/BackstopTests/Fixtures/mariadb-shop.sql;
#   - an event `upgrade`; a full verification of both snapshots (verifications/).
# catalog.sqlite, tmp/ and locks/ are left out (the catalog is rebuilt from the repository).
#
# The tree's contents are fixed, so tests remake the same tree to compare a restore with:
# big.bin is the concatenation of SHA-256("backstop-v1-fixture-<i>") for i = 0, 1, 2, ...
set -euo pipefail

bin=${1:?usage: scripts/make-v1-fixture.sh FORMAT1-BACKSTOP-BINARY}
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/Tests/BackstopTests/Fixtures/v1-repository"
dump="$root/Tests/BackstopTests/Fixtures/mariadb-shop.sql"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$bin" --version

# The tree.
tree="$work/tree"
mkdir -p "$tree/etc" "$tree/data"
printf 'port = 3306\nbind-address = 127.0.0.1\n' > "$tree/etc/my.cnf"
printf 'hello from a format-1 repository\n' > "$tree/README.txt"
printf 'line one\nline two\n' > "$tree/data/notes.txt"
: > "$tree/data/empty"
chmod 600 "$tree/etc/my.cnf"
chmod 755 "$tree/data"
python3 - "$tree/data/big.bin" <<'PY'
import hashlib, sys
with open(sys.argv[1], "wb") as f:
    for i in range(3 * 1024 * 1024 // 32):
        f.write(hashlib.sha256(b"backstop-v1-fixture-%d" % i).digest())
PY
ln -s ../etc/my.cnf "$tree/data/config-link"
find "$tree" -exec touch -h -d '2024-03-20T10:00:00Z' {} +

repo="$work/repo"
export BACKSTOP_REPO="$repo"
"$bin" init --repo "$repo"
"$bin" backup "$tree" --source files --time 2024-03-21T22:00:00Z
"$bin" backup --stdin --source shop-dump --time 2024-03-21T22:05:00Z < "$dump"
"$bin" event add upgrade --at 2024-03-22T08:00:00Z --note "MariaDB 10.11 -> 11.4"
"$bin" verify --all
"$bin" list

rm -rf "$repo/catalog.sqlite" "$repo"/catalog.sqlite-* "$repo/tmp" "$repo/locks"
rm -rf "$out"
mkdir -p "$(dirname "$out")"
cp -a "$repo" "$out"
# Keep README.md (written by hand) if present in git.
git -C "$root" checkout -- "Tests/BackstopTests/Fixtures/v1-repository/README.md" 2>/dev/null || true
find "$out" -type f | sort
du -sh "$out"
