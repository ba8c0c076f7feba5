#!/usr/bin/env bash
# The outage drill, narrated: nightly backups of real MariaDB and PostgreSQL servers, an upgrade
# that breaks them, a restore of the last pre-upgrade snapshot into a rebuilt server, then
# application-by-application recovery of the data written after that snapshot: MariaDB's binlogs
# are archived continuously (backstop logs follow), so each affected application comes back as of
# the moment of the failure (restore --until), not only as of the last dump.
#
#   scripts/drill.sh [--encrypt] [WORKDIR]   (default: a new temporary folder, removed afterwards)
#   scripts/drill.sh --galera [WORKDIR]      the same outage on a 3-node Galera cluster (drill-galera.sh)
#
# --encrypt: the repository is encrypted (backstop key generate, init --encrypt); backups,
# `logs follow` and `run` get the writer key file only, restores, diff and verify the identity.
#
# Everything runs on private servers in WORKDIR (Unix sockets only, never a system instance),
# stopped when the drill ends. Every claim is checked: a line starting "FAIL" means the drill
# failed, and the exit status is non-zero; a failed check never cuts the drill short (the summary
# always comes), and a server that does not stop when told is a failed check, not something the
# clean-up hides. BACKSTOP_BIN names the backstop binary to use
# (default: a release build). KEEP=1 keeps WORKDIR.
#
# Consistent copies of the data directories: the before hook stops the server, copies the data
# directory, and starts it again. That is the one copy that is consistent without LVM or
# mariadb-backup (which the shipped nightly policy uses an LVM snapshot for); a copy of a running
# InnoDB or PostgreSQL data directory is not.
set -euo pipefail
if [ "${1:-}" = --galera ]; then shift; exec "$(dirname "$0")/drill-galera.sh" "$@"; fi   # the Galera cluster drill

self="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
root="$(cd "$(dirname "$0")/.." && pwd)"

# ---------------------------------------------------------------- hooks (called by backstop run)
case "${1:-}" in
    hook-copy-mariadb)
        mariadb-admin --no-defaults -S "$DRILL/my.sock" -u root shutdown
        while [ -e "$DRILL/my.pid" ]; do sleep 0.1; done
        rm -rf "$DRILL/copy/mariadb-data"; mkdir -p "$DRILL/copy"
        cp -a "$DRILL/mariadb-data" "$DRILL/copy/mariadb-data"
        "$self" start-mariadb "$DRILL/mariadb-data" "$DRILL/my.sock" "$DRILL/my.pid"
        exit 0 ;;
    hook-copy-postgres)
        $PGRUN "$PGBIN/pg_ctl" -D "$DRILL/pg-data" -m fast -w stop >/dev/null
        rm -rf "$DRILL/copy/pg-data"; mkdir -p "$DRILL/copy"
        cp -a "$DRILL/pg-data" "$DRILL/copy/pg-data"
        "$self" start-postgres "$DRILL/pg-data" "$DRILL/pg"
        exit 0 ;;
    start-mariadb)   # DATADIR SOCKET PIDFILE
        user=""; [ "$(id -u)" = 0 ] && user="--user=root"
        ( for fd in /proc/$BASHPID/fd/*; do n=${fd##*/}; [ "$n" -gt 2 ] && eval "exec $n>&-"; done 2>/dev/null
          exec </dev/null >/dev/null 2>&1; /usr/sbin/mariadbd --no-defaults --datadir="$2" $user --socket="$3" \
            --skip-networking --pid-file="$4" --log-error="$2.err" --log-bin=mysql-bin --binlog-format=ROW --server-id=1 & )
        for _ in $(seq 1 300); do
            mariadb-admin --no-defaults -S "$3" -u root ping >/dev/null 2>&1 && exit 0
            sleep 0.1
        done
        echo "mariadbd on $2 did not start:" >&2; tail -n 20 "$2.err" >&2; exit 1 ;;
    start-postgres)  # DATADIR SOCKETDIR
        mkdir -p "$3"; chown "${PGUSER_OS:-$(id -un)}" "$3" 2>/dev/null || true
        $PGRUN "$PGBIN/pg_ctl" -D "$2" -l "$3/server.log" -w -o "-k $3 -c listen_addresses='' -p 5432" start >/dev/null
        exit 0 ;;
esac

# ---------------------------------------------------------------- set-up
encrypt=0
if [ "${1:-}" = "--encrypt" ]; then encrypt=1; shift; fi
if [ -z "${BACKSTOP_BIN:-}" ]; then
    (cd "$root" && swift build -c release --product backstop >/dev/null)
    BACKSTOP_BIN="$(cd "$root" && swift build -c release --show-bin-path)/backstop"
fi
bin="$BACKSTOP_BIN"
export DRILL="${1:-$(mktemp -d "${TMPDIR:-/tmp}/backstop-drill.XXXXXX")}"
mkdir -p "$DRILL"; chmod 755 "$DRILL"
export BACKSTOP_REPO="$DRILL/repo"
export PGBIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
if [ "$(id -u)" = 0 ]; then export PGRUN="runuser -u postgres --" PGUSER_OS=postgres; else export PGRUN="" PGUSER_OS="$(id -un)"; fi

if [ -n "$PGRUN" ] && ! $PGRUN test -x "$DRILL"; then
    echo "drill: user postgres cannot reach $DRILL (a parent folder is private); choose a folder under /tmp" >&2
    exit 1
fi

failures=0
say()  { printf '\n== %s\n' "$*"; }
pass() { printf 'PASS %s\n' "$*"; }
fail() { printf 'FAIL %s\n' "$*"; failures=$((failures + 1)); }
check() { # DESCRIPTION EXPECTED ACTUAL (a mismatch prints the difference and goes on)
    if [ "$2" = "$3" ]; then pass "$1"; else fail "$1"; { diff <(echo "$2") <(echo "$3") || true; } | head -n 20; fi
}
timed() { # LABEL COMMAND...: runs it, prints its wall time (no bc needed)
    local label="$1"; shift
    local t0; t0=$(date +%s%N)
    local rc=0; "$@" || rc=$?   # its status is returned (`timed … || fail …` works under set -e)
    local ns=$(( $(date +%s%N) - t0 ))
    printf 'TIME %-48s %3d.%02d s\n' "$label" $((ns / 1000000000)) $((ns / 10000000 % 100))
    return "$rc"
}

# The servers this drill started, each by its own pid file (never by a name pattern).
pid_files() { printf '%s\n' "$DRILL/my.pid" "$DRILL/rebuilt.pid" "$DRILL/pg-data/postmaster.pid" "$DRILL/pg-rebuilt/data/postmaster.pid" "$DRILL/pitr/data/postmaster.pid" "$DRILL/pitr/restored/postmaster.pid"; }
stop_servers() {
    mariadb-admin --no-defaults -S "$DRILL/my.sock" -u root shutdown >/dev/null 2>&1 || true
    mariadb-admin --no-defaults -S "$DRILL/rebuilt.sock" -u root shutdown >/dev/null 2>&1 || true
    for d in pg-data pg-rebuilt/data pitr/data pitr/restored; do
        if [ -f "$DRILL/$d/postmaster.pid" ]; then $PGRUN "$PGBIN/pg_ctl" -D "$DRILL/$d" -m fast -w stop >/dev/null 2>&1 || true; fi
    done
}
running_servers() { # the pids from our pid files that are still alive
    local f pid
    for f in $(pid_files); do
        [ -f "$f" ] || continue
        pid="$(head -n 1 "$f" 2>/dev/null || true)"
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then echo "$pid ($(basename "$(dirname "$f")")/$(basename "$f"))"; fi
    done
}

stop_follower() { # the binlog follower this drill started, by its pid (SIGTERM: a last archive pass)
    if [ -n "${follower_pid:-}" ] && kill -0 "$follower_pid" 2>/dev/null; then
        kill -TERM "$follower_pid" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$follower_pid" 2>/dev/null || break; sleep 0.1; done
    fi
    follower_pid=""
}
cleanup() { # on any exit: stop what is still running (by pid), then remove the folder
    stop_follower
    [ "$(type -t pitr_stop_writer)" = function ] && pitr_stop_writer
    stop_servers
    local pid
    for pid in $(running_servers | cut -d' ' -f1); do kill -9 "$pid" 2>/dev/null || true; done
    if [ "${KEEP:-0}" != 1 ] && [ -z "${KEEP_DIR:-}" ]; then rm -rf "$DRILL"; fi
}
trap cleanup EXIT

my()  { mariadb --no-defaults -S "${SOCK:-$DRILL/my.sock}" -u root -N -B "$@"; }
pg()  { psql -X -q -v ON_ERROR_STOP=1 -h "${PGSOCK:-$DRILL/pg}" -p 5432 -U postgres -At "$@"; }
apps() { seq -f 'app%02g' 1 20; }

# State of every application database, one line per database: name and a digest of its rows.
mariadb_state() {
    for db in $(apps); do
        printf '%s %s\n' "$db" "$(my -e "SELECT CONCAT_WS('|', id, name, amount) FROM $db.orders ORDER BY id; SELECT CONCAT_WS('|', id, email) FROM $db.customers ORDER BY id" | sha256sum | cut -c1-16)"
    done
}
pg_state() {
    for db in $(seq -f 'pgapp%02g' 1 5); do
        printf '%s %s\n' "$db" "$(pg -d "$db" -c "SELECT id, item, qty FROM orders ORDER BY id" | sha256sum | cut -c1-16)"
    done
}

say "MariaDB: a server with 20 application databases ($DRILL)"
mariadb-install-db --no-defaults --datadir="$DRILL/mariadb-data" $([ "$(id -u)" = 0 ] && echo --user=root) \
    --auth-root-authentication-method=normal --skip-test-db >/dev/null 2>&1
"$self" start-mariadb "$DRILL/mariadb-data" "$DRILL/my.sock" "$DRILL/my.pid"
for db in $(apps); do
    my -e "CREATE DATABASE $db; USE $db;
           CREATE TABLE customers (id INT PRIMARY KEY, email VARCHAR(80));
           CREATE TABLE orders (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(40), amount DECIMAL(10,2));
           INSERT INTO customers VALUES (1, 'ada@$db.example'), (2, 'grace@$db.example');
           INSERT INTO orders (name, amount) VALUES ('lamp', 19.90), ('desk', 249.00), ('chair', 89.50);"
done
pass "20 databases created"

say "PostgreSQL: a cluster with 5 application databases"
mkdir -p "$DRILL/pg" "$DRILL/pg-data"; chown "$PGUSER_OS" "$DRILL/pg" "$DRILL/pg-data" 2>/dev/null || true
$PGRUN "$PGBIN/initdb" -D "$DRILL/pg-data" -U postgres -A trust --no-sync -E UTF8 --locale=C.UTF-8 >/dev/null
"$self" start-postgres "$DRILL/pg-data" "$DRILL/pg"
for db in $(seq -f 'pgapp%02g' 1 5); do
    pg -d postgres -c "CREATE DATABASE $db"
    pg -d "$db" -c "CREATE TABLE orders (id serial PRIMARY KEY, item text, qty int);
                    CREATE TABLE customers (id serial PRIMARY KEY, name text);
                    INSERT INTO orders (item, qty) VALUES ('bolt', 100), ('nut', 250);
                    INSERT INTO customers (name) VALUES ('Ada'), ('Linus');"
done
pass "5 databases created"

cat > "$DRILL/nightly.yaml" <<EOF
repository: $DRILL/repo
timezone: UTC
lock-timeout: 1m
jobs:
  - source: mariadb-datadir
    kind: filesystem
    paths: [$DRILL/copy/mariadb-data]
    exclude: ["*.pid", "*.sock"]
    tags: [nightly]
    before: $self hook-copy-mariadb
    after: rm -rf $DRILL/copy/mariadb-data
  - source: mariadb-dump
    kind: logical
    command: mariadb-dump --no-defaults -S $DRILL/my.sock -u root --all-databases --single-transaction --routines --events --master-data=2 --gtid
    format: mysqldump
    tags: [nightly]
  - source: pg-datadir
    kind: filesystem
    paths: [$DRILL/copy/pg-data]
    exclude: ["postmaster.pid"]
    tags: [nightly]
    before: $self hook-copy-postgres
    after: rm -rf $DRILL/copy/pg-data
  - source: pg-cluster
    kind: logical
    command: pg_dumpall -h $DRILL/pg -p 5432 -U postgres
    format: pgdumpall
    tags: [nightly]
  - source: pg-pgapp01
    kind: logical
    command: pg_dump -h $DRILL/pg -p 5432 -U postgres pgapp01
    format: pgdump
    tags: [nightly]
retention:
  keep-daily: 7
  keep-before-event: 90d
verify:
  after-backup: full
  sample: 1
EOF
identity=""
if [ "$encrypt" = 1 ]; then   # the identity stays with the operator; hosts get the writer key
    unset BACKSTOP_IDENTITY
    identity="$DRILL/identity.txt"
    "$bin" key generate --output "$identity" > "$DRILL/recipient.txt"
    "$bin" init --encrypt --recipient "$(cat "$DRILL/recipient.txt")" --writer-key "$DRILL/writer-key.json" >/dev/null
    export BACKSTOP_WRITER_KEY="$DRILL/writer-key.json" XDG_CACHE_HOME="$DRILL/cache"
    pass "encrypted repository: backups below run with the writer key only"
else
    "$bin" init >/dev/null
fi
"$bin" policy check "$DRILL/nightly.yaml"

say "MariaDB's binlogs are archived continuously (backstop logs follow, across the hooks' restarts)"
"$bin" logs follow --source mysql-binlog --socket "$DRILL/my.sock" --user root --flush-interval 1s \
    --spool "$DRILL/binlog-spool" --quiet 2> "$DRILL/follow.err" &
follower_pid=$!
# Waits until the archive holds the server's binlog up to its current position.
wait_archived() {
    local position=""
    for _ in $(seq 1 600); do
        position="$(my -e 'SHOW MASTER STATUS' | cut -f1,2 | tr '\t' :)"
        if "$bin" logs list --source mysql-binlog --json | python3 -c 'import json,sys; sys.exit(0 if sys.argv[1] in [s.get("endPosition") for s in json.load(sys.stdin)["segments"]] else 1)' "$position"; then return 0; fi
        sleep 0.1
    done
    fail "the binlog archive reaches $position"; cat "$DRILL/follow.err"; return 0
}

say "Three nightly runs (driven with --time), with application writes in between"
for night in 21 22 23; do
    for db in app01 app02; do my -e "INSERT INTO $db.orders (name, amount) VALUES ('day $night', $night)"; done
    pg -d pgapp02 -c "INSERT INTO orders (item, qty) VALUES ('day $night', $night)"
    timed "backstop run, night of March $night" "$bin" run "$DRILL/nightly.yaml" --time "2024-03-${night}T02:00:00Z"
done
"$bin" list

say "The upgrade starts: mark it"
"$bin" event add upgrade --at 2024-03-23T22:00:00Z --note "MariaDB 10.11 -> 11.4, PostgreSQL 15 -> 16"
mariadb_state > "$DRILL/mariadb-pre.txt"
pg_state > "$DRILL/pg-pre.txt"

say "After the upgrade, three applications keep writing: app03, app07, app12 (and pgapp04)"
for db in app03 app07 app12; do
    my -e "INSERT INTO $db.orders (name, amount) VALUES ('after upgrade', 1.00); UPDATE $db.customers SET email = 'new@$db.example' WHERE id = 2"
done
pg -d pgapp04 -c "INSERT INTO orders (item, qty) VALUES ('after upgrade', 1)"
pg -d pgapp01 -c "UPDATE orders SET qty = qty + 1 WHERE item = 'nut'"
timed "backstop run, the night after the upgrade" "$bin" run "$DRILL/nightly.yaml" --time 2024-03-24T02:00:00Z
mariadb_state > "$DRILL/mariadb-post.txt"
pg_state > "$DRILL/pg-post.txt"

say "After the last dump, app07 and app12 keep writing until the cluster breaks"
for db in app07 app12; do
    my -e "INSERT INTO $db.orders (name, amount) VALUES ('after the last dump', 2.00); UPDATE $db.orders SET amount = amount + 1 WHERE id = 1"
done
my -e "FLUSH BINARY LOGS"   # a rotation between the dump and the failure
my -e "INSERT INTO app12.orders (name, amount) VALUES ('just before the failure', 3.00); DELETE FROM app07.customers WHERE id = 1"
sleep 1.1
failure_at="$(date -u +%Y-%m-%dT%H:%M:%SZ)"   # the moment of the failure: every write above is before it
mariadb_state > "$DRILL/mariadb-failure.txt"
wait_archived
pass "binlogs archived up to the failure at $failure_at"

say "The upgrade broke both clusters. Which snapshots are from before it?"
mariadb-admin --no-defaults -S "$DRILL/my.sock" -u root shutdown
stop_follower
if [ -n "$identity" ]; then   # the operator's side: logs check, restores, diff and verify read with the identity
    export BACKSTOP_IDENTITY="$identity"
    if grep -rqsE 'app07|MariaDB 10.11' "$BACKSTOP_REPO"/snapshots/*/manifest.json "$BACKSTOP_REPO"/events; then
        fail "encrypted: no database name or event note readable in manifests or events"
    else pass "encrypted: no database name or event note readable in manifests or events"; fi
fi
"$bin" logs check --source mysql-binlog
$PGRUN "$PGBIN/pg_ctl" -D "$DRILL/pg-data" -m fast -w stop >/dev/null
for source in mariadb-datadir mariadb-dump pg-datadir pg-cluster; do
    "$bin" select --before upgrade --source "$source" --explain > "$DRILL/pre-$source.id"
done
check "the pre-upgrade MariaDB data directory is night 3's" "20240323T020000Z" "$(cut -c1-16 "$DRILL/pre-mariadb-datadir.id")"
check "the pre-upgrade dump is night 3's" "20240323T02" "$(cut -c1-11 "$DRILL/pre-mariadb-dump.id")"

say "Rebuild MariaDB from the pre-upgrade data directory"
timed "backstop restore (MariaDB data directory)" "$bin" restore "$(cat "$DRILL/pre-mariadb-datadir.id")" --to "$DRILL/rebuilt"
"$self" start-mariadb "$DRILL/rebuilt/mariadb-data" "$DRILL/rebuilt.sock" "$DRILL/rebuilt.pid"
SOCK="$DRILL/rebuilt.sock" mariadb_state > "$DRILL/mariadb-rebuilt.txt"
check "the rebuilt server holds exactly the pre-upgrade rows" "$(cat "$DRILL/mariadb-pre.txt")" "$(cat "$DRILL/mariadb-rebuilt.txt")"

say "Which applications wrote data after that snapshot?"
post_dump="$("$bin" select --latest --source mariadb-dump)"
"$bin" diff "$(cat "$DRILL/pre-mariadb-dump.id")" "$post_dump"
# Applications only: the system database `mysql` changes on its own (InnoDB statistics, binlog
# and GTID state) and is never restored from a dump into a rebuilt server.
changed="$("$bin" diff "$(cat "$DRILL/pre-mariadb-dump.id")" "$post_dump" --json | python3 -c 'import json,sys; print(" ".join(c["path"] for c in json.load(sys.stdin)["changed"] if c["path"].startswith("app")))')"
check "diff names exactly the applications that changed" "app03 app07 app12" "$changed"

say "Recover them one by one as of the moment of the failure: the newest dump, then their binlog events"
"$bin" restore --source mariadb-dump --database app07 --until "$failure_at" --explain --to - 2>&1 >/dev/null | grep -E '^(dump|replaying|  mysql-bin)' || true
for db in $changed; do
    timed "backstop restore --database $db --until (failure) | mariadb" bash -c "set -o pipefail; '$bin' restore --source mariadb-dump --database $db --until '$failure_at' --to - | mariadb --no-defaults -S '$DRILL/rebuilt.sock' -u root" \
        || fail "restore --until of $db"
done
SOCK="$DRILL/rebuilt.sock" mariadb_state > "$DRILL/mariadb-recovered.txt"
expected="$(join <(sort "$DRILL/mariadb-pre.txt") <(sort "$DRILL/mariadb-failure.txt") | while read -r db pre failed; do
    case " $changed " in *" $db "*) echo "$db $failed" ;; *) echo "$db $pre" ;; esac; done)"
check "recovered applications equal their state at the failure (every row written up to it), the others the pre-upgrade state" "$expected" "$(sort "$DRILL/mariadb-recovered.txt")"
check "the writes after the last dump are not in that dump: the binlog brought them back" "different" \
    "$([ "$(grep '^app12 ' "$DRILL/mariadb-post.txt")" != "$(grep '^app12 ' "$DRILL/mariadb-failure.txt")" ] && echo different || echo same)"

say "PostgreSQL: rebuild from the pre-upgrade data directory"
timed "backstop restore (PostgreSQL data directory)" "$bin" restore "$(cat "$DRILL/pre-pg-datadir.id")" --to "$DRILL/pg-rebuilt"
mv "$DRILL/pg-rebuilt/pg-data" "$DRILL/pg-rebuilt/data"
chown -R "$PGUSER_OS" "$DRILL/pg-rebuilt" 2>/dev/null || true
chmod 700 "$DRILL/pg-rebuilt/data"
"$self" start-postgres "$DRILL/pg-rebuilt/data" "$DRILL/pg-rebuilt/sock"
export PGSOCK="$DRILL/pg-rebuilt/sock"
check "the rebuilt cluster holds exactly the pre-upgrade rows" "$(cat "$DRILL/pg-pre.txt")" "$(pg_state)"

pg_post="$("$bin" select --latest --source pg-cluster)"
pg_changed="$("$bin" diff "$(cat "$DRILL/pre-pg-cluster.id")" "$pg_post" --json | python3 -c 'import json,sys; print(" ".join(c["path"] for c in json.load(sys.stdin)["changed"]))')"
check "pg_dumpall diff names exactly the databases that changed" "pgapp01 pgapp04" "$pg_changed"
for db in $pg_changed; do
    pg -d postgres -c "DROP DATABASE $db"
    timed "backstop restore --database $db | psql" bash -c "'$bin' restore '$pg_post' --database $db --to - | psql -X -q -h '$PGSOCK' -p 5432 -U postgres -d postgres >/dev/null"
done
expected="$(join <(sort "$DRILL/pg-pre.txt") <(sort "$DRILL/pg-post.txt") | while read -r db pre post; do
    case " $pg_changed " in *" $db "*) echo "$db $post" ;; *) echo "$db $pre" ;; esac; done)"
check "recovered PostgreSQL databases equal the post-upgrade state, the others the pre-upgrade state" "$expected" "$(pg_state | sort)"

say "PostgreSQL: one table from a pg_dump, into a scratch database"
pg -d postgres -c "CREATE DATABASE scratch"
"$bin" restore --latest --source pg-pgapp01 --table orders --to - | psql -X -q -h "$PGSOCK" -p 5432 -U postgres -d scratch >/dev/null
check "the orders table of pgapp01 came back from the pg_dump" "$(pg -d pgapp01 -c 'SELECT item, qty FROM orders ORDER BY id')" "$(pg -d scratch -c 'SELECT item, qty FROM orders ORDER BY id')"

# ---------------------------------------------------------------- PostgreSQL to the moment of the failure
# A second PostgreSQL cluster whose WAL is archived continuously (archive_command = backstop logs
# push) into a repository of the server's own user (the archive_command runs as that user), a base
# backup streamed from pg_basebackup (backup --tar-command), applications writing before, during
# and after it, then a botched migration at a known moment. restore --source pg-base --until that
# moment, a server started on the result replays the archived WAL to it: its data must equal the
# state taken just before the migration, every table of every database.
pitr_stop_writer() { # the background writer this drill started: asked to stop by a file (a
    # signal may be ignored: a shell started with SIGTERM ignored cannot catch it), then waited for
    if [ -n "${pitr_writer_pid:-}" ]; then touch "$DRILL/pitr/writer.stop" 2>/dev/null || true; wait "$pitr_writer_pid" 2>/dev/null || true; fi
    pitr_writer_pid=""
}
pitr_drill() {
    local P="$DRILL/pitr" repo="$DRILL/pitr/repo"
    # The server's user runs the archive_command and restore_command: it gets a TMPDIR it can
    # write (the caller's may be private to another user).
    local as_pg="$PGRUN env TMPDIR=/tmp"
    local PGSOCK="$P/sock"
    pitr_dbs() { seq -f 'pitr%02g' 1 3; }
    pitr_state() { # every table of every application database, one digest per database
        local db
        for db in $(pitr_dbs); do
            printf '%s %s\n' "$db" "$(pg -d "$db" -c "SELECT 'o', id, item, qty FROM orders ORDER BY id; SELECT 'c', id, name FROM customers ORDER BY id" | sha256sum | cut -c1-16)"
        done
    }
    wait_wal_archived() { # switches WAL and waits until the server archived the closed segment
        local last archived=""
        last="$(pg -d postgres -c 'SELECT pg_walfile_name(pg_switch_wal())')"
        for _ in $(seq 1 600); do
            archived="$(pg -d postgres -c "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver")"
            [[ "$archived" > "$last" || "$archived" == "$last" ]] && return 0
            sleep 0.1
        done
        fail "the server archives its WAL up to $last (archived: ${archived:-nothing})"; tail -n 20 "$P/sock/server.log"
    }

    say "PostgreSQL point in time: a cluster archiving its WAL into backstop ($P)"
    mkdir -p "$P/sock" "$P/data"; chown "$PGUSER_OS" "$P" "$P/sock" "$P/data" 2>/dev/null || true
    $as_pg "$bin" init --repo "$repo" >/dev/null
    $as_pg "$PGBIN/initdb" -D "$P/data" -U postgres -A trust --no-sync -E UTF8 --locale=C.UTF-8 >/dev/null
    $as_pg tee -a "$P/data/postgresql.conf" >/dev/null <<CONF
wal_level = replica
archive_mode = on
archive_command = '$bin logs push --quiet --repo $repo --source pg-wal %p'
CONF
    TMPDIR=/tmp "$self" start-postgres "$P/data" "$P/sock"
    local db
    for db in $(pitr_dbs); do
        pg -d postgres -c "CREATE DATABASE $db"
        pg -d "$db" -c "CREATE TABLE orders (id serial PRIMARY KEY, item text, qty int);
                        CREATE TABLE customers (id serial PRIMARY KEY, name text);
                        INSERT INTO orders (item, qty) SELECT 'item ' || g, g FROM generate_series(1, 500) g;
                        INSERT INTO customers (name) VALUES ('Ada'), ('Linus');"
    done
    pass "3 databases created, archive_command = backstop logs push"

    say "A base backup streamed into the repository while pitr01 keeps writing"
    ( while [ ! -e "$P/writer.stop" ]; do pg -d pitr01 -c "INSERT INTO orders (item, qty) VALUES ('during the base backup', 1)" 2>/dev/null || true; sleep 0.05; done ) &
    pitr_writer_pid=$!
    timed "backstop backup --tar-command 'pg_basebackup -Ft -X none'" $as_pg "$bin" backup --repo "$repo" --source pg-base --quiet \
        --tar-command "$PGBIN/pg_basebackup -h $PGSOCK -p 5432 -U postgres -D - -Ft -X none -c fast" \
        || fail "backup --tar-command pg_basebackup"
    sleep 0.3
    pitr_stop_writer
    check "the base backup records its backup_label positions (startWALFile)" "24" \
        "$($as_pg "$bin" show --repo "$repo" --source pg-base --latest --json | python3 -c 'import json,sys; o=json.load(sys.stdin); o=o.get("manifest", o); print(len(o["postgresBackup"]["startWALFile"]))')"

    say "The applications keep writing (WAL segments archived as they fill)"
    for round in 1 2 3; do
        for db in $(pitr_dbs); do
            pg -d "$db" -c "INSERT INTO orders (item, qty) SELECT 'round $round', g FROM generate_series(1, 200) g;
                            UPDATE orders SET qty = qty + $round WHERE id % 7 = $round;
                            DELETE FROM orders WHERE id % 50 = $round;
                            INSERT INTO customers (name) VALUES ('customer $round')"
        done
        wait_wal_archived
    done
    pg -d pitr02 -c "UPDATE customers SET name = 'Grace' WHERE name = 'Ada'"   # in the open WAL segment
    sleep 1.1
    local failure_at; failure_at="$(date -u +%Y-%m-%dT%H:%M:%SZ)"   # every write above is before it
    pitr_state > "$P/state-at-failure.txt"
    sleep 1.1
    say "At $failure_at a botched migration destroys data; then the server is lost"
    pg -d pitr02 -c "DROP TABLE orders"
    pg -d pitr03 -c "DELETE FROM customers; UPDATE orders SET qty = 0"
    wait_wal_archived
    $PGRUN "$PGBIN/pg_ctl" -D "$P/data" -m immediate -w stop >/dev/null
    rm -rf "$P/data"
    timed "backstop logs check --source pg-wal" $as_pg "$bin" logs check --repo "$repo" --source pg-wal || fail "logs check --source pg-wal"

    say "Restore the newest base backup before the failure; PostgreSQL replays the archived WAL up to it"
    timed "backstop restore --source pg-base --until (failure)" $as_pg "$bin" restore --repo "$repo" --source pg-base \
        --until "$failure_at" --to "$P/restored" || fail "restore --source pg-base --until"
    $as_pg chmod 700 "$P/restored"
    timed "pg_ctl start (replays the WAL to the failure, promotes)" env TMPDIR=/tmp "$self" start-postgres "$P/restored" "$P/sock"
    local recovering=t
    for _ in $(seq 1 600); do
        recovering="$(pg -d postgres -c 'SELECT pg_is_in_recovery()' 2>/dev/null || echo t)"
        [ "$recovering" = f ] && break
        sleep 0.1
    done
    check "the restored server finished its recovery and promoted" "f" "$recovering"
    check "every database equals its state just before the failure (every write up to it, none of the migration)" \
        "$(cat "$P/state-at-failure.txt")" "$(pitr_state)"
    check "the rows written during the base backup came back" "present" \
        "$([ "$(pg -d pitr01 -c "SELECT count(*) > 0 FROM orders WHERE item = 'during the base backup'")" = t ] && echo present || echo absent)"
    $PGRUN "$PGBIN/pg_ctl" -D "$P/restored" -m fast -w stop >/dev/null
}
# The point-in-time part has its own repository, owned by the postgres user (its archive_command
# writes there) and not encrypted even with --encrypt: the keys of the main repository are the
# drill user's (mode 0600), and a server that inherits them would fail every archive_command.
saved_identity="${BACKSTOP_IDENTITY-}" saved_writer_key="${BACKSTOP_WRITER_KEY-}"
unset BACKSTOP_IDENTITY BACKSTOP_WRITER_KEY
pitr_drill
[ -n "$saved_identity" ] && export BACKSTOP_IDENTITY="$saved_identity"
[ -n "$saved_writer_key" ] && export BACKSTOP_WRITER_KEY="$saved_writer_key"

say "A corrupted pre-upgrade snapshot: restore falls back to the one before, and says so"
# Format 2: frames are shared between snapshots; damage one that only this snapshot uses.
pre="$(cat "$DRILL/pre-mariadb-datadir.id")"
frames_of() { for f in "$@"; do if [ -n "$identity" ]; then age -d -i "$identity" "$f"; else cat "$f"; fi; done | cut -f1; }
frame="$(comm -23 <(frames_of "$BACKSTOP_REPO/snapshots/$pre/frames.tsv" | sort -u) \
                  <(find "$BACKSTOP_REPO/snapshots" -name frames.tsv ! -path "*/$pre/*" | while read -r f; do frames_of "$f"; done | sort -u) | head -n 1)"
[ -n "$frame" ] || { fail "the pre-upgrade snapshot has a frame of its own"; exit 1; }
payload="$BACKSTOP_REPO/frames/${frame:0:2}/$frame"
chmod u+w "$payload"
python3 - "$payload" <<'EOF'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
b[len(b) // 2] ^= 0x10
open(p, "wb").write(b)
EOF
set +e
"$bin" restore --before upgrade --source mariadb-datadir --to "$DRILL/fallback" --fallback 2> "$DRILL/fallback.err"
fstatus=$?
"$bin" restore "$(cat "$DRILL/pre-mariadb-datadir.id")" --to "$DRILL/no-fallback" 2> "$DRILL/no-fallback.err"
status=$?
set -e
cat "$DRILL/fallback.err"
check "with --fallback: exit 0" "0" "$fstatus"
if grep -q "falling back to the next older candidate" "$DRILL/fallback.err"; then pass "the fallback is explained"; else fail "the fallback is explained"; fi
check "night 2's data directory was restored instead" "20240322T020000Z" "$(grep -o 'restored 2024[0-9T]*Z' "$DRILL/fallback.err" | head -n 1 | cut -c10-)"
check "the corrupt snapshot named alone: exit 65, target untouched" "65 absent" "$status $([ -e "$DRILL/no-fallback" ] && echo present || echo absent)"
set +e
"$bin" select --before upgrade --source mariadb-datadir --explain > "$DRILL/reselect.id" 2> "$DRILL/explain.txt"
sstatus=$?
"$bin" verify --all > "$DRILL/verify.txt"
vstatus=$?
set -e
check "a later selection passes over the corrupt snapshot and takes night 2's" "0 20240322T020000Z" "$sstatus $(cut -c1-16 "$DRILL/reselect.id")"
if grep -q "passed over  $(cat "$DRILL/pre-mariadb-datadir.id").*known bad" "$DRILL/explain.txt"; then pass "the selection says why"; else fail "the selection says why"; fi
check "verify --all exits 65 (what CI sees)" "65" "$vstatus"
if grep -q "FAILED  $(cat "$DRILL/pre-mariadb-datadir.id")" "$DRILL/verify.txt"; then pass "verify names the corrupt snapshot"; else fail "verify names the corrupt snapshot"; fi

say "Sizes"
"$bin" list
du -sh "$BACKSTOP_REPO" | sed 's/^/repository: /'

say "Stopping the servers"
stop_servers
for _ in $(seq 1 100); do [ -z "$(running_servers)" ] && break; sleep 0.1; done
check "every server the drill started has stopped" "" "$(running_servers)"

echo
if [ "$failures" -eq 0 ]; then echo "DRILL PASSED"; else echo "DRILL FAILED: $failures checks"; exit 1; fi
