#!/usr/bin/env bash
# The main job on a fresh machine: installs what Backstop needs, builds it in release mode,
# generates a sample (a database-like data directory and a mysqldump-format dump), and takes a
# filesystem snapshot and a logical snapshot into a new repository, then lists them.
#
#   scripts/demo.sh [WORKDIR]     (default: ./demo-work, replaced on each run)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
command -v python3 >/dev/null || scripts/setup.sh --test
echo "==> building backstop (release)"
swift build -c release --product backstop 2>&1 | tail -n 1
bin="$(swift build -c release --show-bin-path)/backstop"

work="${1:-$PWD/demo-work}"
rm -rf "$work"
mkdir -p "$work"
echo "==> generating a sample data directory and dump in $work/sample"
python3 scripts/gen-corpus.py "$work/sample" --scale 0.05

export BACKSTOP_REPO="$work/repo"
echo "==> backstop init"
"$bin" init
echo "==> backstop backup $work/sample/tree --source mysql-datadir --tag nightly"
"$bin" backup "$work/sample/tree" --source mysql-datadir --tag nightly --exclude '*.pid'
echo "==> backstop backup --stdin --source mysql-dump < dump.sql"
"$bin" backup --stdin --source mysql-dump --tag nightly < "$work/sample/dump.sql"
echo "==> backstop list"
"$bin" list
