#!/usr/bin/env bash
# Hot physical backups: `backstop backup --mariabackup` beside `mariadb-backup --backup` alone to a
# folder, on a private MariaDB server (loopback socket only) holding ROWS rows (about 1 KiB each,
# half of them compressible text), while nothing else runs.
#
#   scripts/bench-mariabackup.sh [BACKSTOP_BINARY] [ROWS]     (default .build/release/backstop, 400000)
#
# Prints wall time and peak RSS of each, the folder's size, and the snapshot's logical and
# stored sizes, then a second snapshot of the unchanged server (frames shared with the first).
set -euo pipefail
bin="${1:-.build/release/backstop}"
rows="${2:-400000}"
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
work=$(mktemp -d /tmp/backstop-bench-mb-XXXXXX)
user=""; [ "$(id -u)" = 0 ] && user="--user=root"
cleanup() {
    [ -f "$work/mysqld.pid" ] && kill "$(cat "$work/mysqld.pid")" 2>/dev/null && sleep 2
    rm -rf "$work"
}
trap cleanup EXIT
sock="$work/mysqld.sock"
mariadb-install-db --no-defaults --datadir="$work/data" $user --auth-root-authentication-method=normal --skip-test-db >/dev/null 2>&1
/usr/sbin/mariadbd --no-defaults --datadir="$work/data" $user --socket="$sock" --skip-networking \
    --pid-file="$work/mysqld.pid" --log-error="$work/error.log" --log-bin=mysql-bin --binlog-format=ROW --server-id=1 \
    --innodb-flush-log-at-trx-commit=2 </dev/null >/dev/null 2>&1 &
for _ in $(seq 300); do mariadb-admin --no-defaults -S "$sock" -u root ping >/dev/null 2>&1 && break; sleep 0.1; done
sql() { mariadb --no-defaults -S "$sock" -u root -N -B -e "$1"; }
sql "CREATE DATABASE bench; CREATE TABLE bench.t (id INT PRIMARY KEY, a TEXT, b BLOB) ENGINE=InnoDB;
     USE bench; INSERT INTO bench.t SELECT seq, REPEAT(CONCAT('row ', seq, ' '), 40), RANDOM_BYTES(512) FROM seq_1_to_$rows;"
echo "data directory: $(du -sh "$work/data" | cut -f1), $rows rows"

measure() { # name command...
    local name="$1"; shift
    sync
    /usr/bin/time -o "$work/time.out" -f "%e %M" bash -c "$*" >"$work/last.out" 2>"$work/last.err" \
        || { echo "bench: '$name' failed:" >&2; tail -n 5 "$work/last.err" >&2; exit 1; }
    local t; t=$(tail -n 1 "$work/time.out")
    printf '%-46s %8.2f s %8.1f MiB RSS\n' "$name" "${t% *}" "$(echo "${t#* } / 1024" | bc -l)"
}
measure "mariadb-backup --backup (to a folder)" "mariadb-backup --backup --socket='$sock' --user=root --target-dir='$work/alone'"
echo "  folder: $(du -sb "$work/alone" | awk '{printf "%.1f MiB", $1/1048576}')"
"$bin" init --repo "$work/repo" --quiet
for run in first unchanged; do
    measure "backstop backup --mariabackup ($run)" "TMPDIR='$work' '$bin' backup --mariabackup --socket '$sock' --user root --source db1 --repo '$work/repo' --json"
    python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print("  snapshot: %.1f MiB in, %.1f MiB stored, %.1f MiB new" % (m["bytesIn"]/1048576, m["bytesStored"]/1048576, m.get("bytesNew",0)/1048576))' "$work/last.out"
done
echo "  repository on disk: $(du -sb "$work/repo" | awk '{printf "%.1f MiB", $1/1048576}')"
