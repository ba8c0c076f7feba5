#!/usr/bin/env bash
# The outage drill on a Galera cluster (scripts/drill.sh --galera [WORKDIR]): a 3-node MariaDB
# Galera cluster on 127.0.0.1 (scripts/galera-cluster.sh), applications writing continuously to
# all three nodes, node 1's binlogs archived continuously (backstop logs follow), nightly hot
# backups of node 1 by a policy (`kind: mariabackup`), an upgrade event, more writes, then the
# whole cluster broken (every node killed, every data directory damaged). Recovery: the
# pre-upgrade snapshot (select --before upgrade), restore --prepare into node 1's new data
# directory, a new cluster bootstrapped from it, nodes 2 and 3 joining by state transfer, every
# node's per-table checksums equal to the pre-upgrade state; then each application written to
# after the upgrade comes back as of the failure (restore SNAPSHOT --database D --until T | mariadb
# into node 1), replicated to all three nodes; the other applications stay as before the upgrade.
#
# Each step is one command, printed with its wall time ("TIME"). A line starting "FAIL" means the
# drill failed (non-zero exit); a failed check never cuts the drill short unless what follows
# cannot run. BACKSTOP_BIN names the backstop binary (default: a release build). KEEP=1 keeps
# WORKDIR. Servers and writers are stopped by their pids when the drill ends.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
galera="$here/galera-cluster.sh"

# ---------------------------------------------------------------- an application (a writer)
# writer DB: writes to DB continuously, one transaction after another, to node 1, 2, 3 in turn,
# until DRILL/writers/DB.stop exists; pauses while DRILL/writers/pause exists (saying so in
# DB.paused). Every failed write is appended to DB.errors: the drill expects none. Causal reads
# and writes (wsrep_sync_wait = 15), as an application spread over the nodes needs: its update
# on node 2 then never races its previous one, made on node 1, still being applied on node 2.
if [ "${1:-}" = writer ]; then
    db="$2"; w="$DRILL/writers"; i=0
    for fd in /proc/$BASHPID/fd/*; do k=${fd##*/}; [ "$k" -gt 2 ] && eval "exec $k>&-"; done 2>/dev/null
    while [ ! -e "$w/$db.stop" ]; do
        if [ -e "$w/pause" ]; then touch "$w/$db.paused"; sleep 0.05; continue; fi
        rm -f "$w/$db.paused"
        i=$((i + 1)); n=$(( i % 3 + 1 ))
        if ! out="$(mariadb --defaults-file="$DRILL/cluster/node$n.cnf" -e "
                SET SESSION wsrep_sync_wait = 15;
                INSERT INTO $db.orders (name, amount, node) VALUES ('order $i', $i * 1.25, $n);
                UPDATE $db.customers SET visits = visits + 1 WHERE id = 1 + $i % 2" 2>&1)"; then
            echo "write $i on node $n: $out" >> "$w/$db.errors"
        fi
        echo "$i" > "$w/$db.count.new"; mv "$w/$db.count.new" "$w/$db.count"
        sleep 0.1
    done
    touch "$w/$db.done"
    exit 0
fi

# ---------------------------------------------------------------- set-up
if [ -z "${BACKSTOP_BIN:-}" ]; then
    (cd "$root" && swift build -c release --product backstop >/dev/null)
    BACKSTOP_BIN="$(cd "$root" && swift build -c release --show-bin-path)/backstop"
fi
bin="$BACKSTOP_BIN"
export DRILL="${1:-$(mktemp -d "${TMPDIR:-/tmp}/backstop-galera.XXXXXX")}"
mkdir -p "$DRILL/writers"; chmod 755 "$DRILL"
export BACKSTOP_REPO="$DRILL/repo"
C="$DRILL/cluster"      # the cluster that breaks
R="$DRILL/rebuilt"      # the one rebuilt from the backup

failures=0
say()  { printf '\n== %s\n' "$*"; }
pass() { printf 'PASS %s\n' "$*"; }
fail() { printf 'FAIL %s\n' "$*"; failures=$((failures + 1)); }
check() { # DESCRIPTION EXPECTED ACTUAL
    if [ "$2" = "$3" ]; then pass "$1"; else fail "$1"; { diff <(echo "$2") <(echo "$3") || true; } | head -n 20; fi
}
now_ns() { date +%s%N; }
secs() { local ns=$1; printf '%d.%02d' $((ns / 1000000000)) $((ns / 10000000 % 100)); }
timed() { # LABEL COMMAND...: runs it, prints its wall time; a failing command is a FAIL
    local label="$1"; shift
    local t0 status=0; t0=$(now_ns)
    "$@" || status=$?
    last_ns=$(( $(now_ns) - t0 ))
    printf 'TIME %-56s %6s s\n' "$label" "$(secs "$last_ns")"
    [ "$status" = 0 ] || fail "$label (exit $status)"
    return "$status"
}
abort() { fail "$*"; echo; echo "DRILL FAILED: $failures checks (stopped: the steps after this one cannot run)"; exit 1; }

apps() { seq -f 'app%02g' 1 6; }
affected="app02 app05"      # the applications that keep writing after the upgrade
sqlc() { local dir="$1" n="$2"; shift 2; mariadb --defaults-file="$dir/node$n.cnf" -N -B "$@"; }
# Per-table checksums of every application on node N of cluster DIR, once the node has applied
# everything the cluster committed (wsrep_sync_wait on a read first).
state() { # DIR N
    local dir="$1" n="$2" q="SET SESSION wsrep_sync_wait = 1; SELECT COUNT(*) FROM mysql.user;" db t
    for db in $(apps); do for t in customers orders; do q="$q CHECKSUM TABLE $db.$t;"; done; done
    sqlc "$dir" "$n" -e "$q" | tail -n +2
}
errors() { cat "$DRILL"/writers/*.errors 2>/dev/null | wc -l || true; }
writes() { local s=0 f v; for f in "$DRILL"/writers/*.count; do [ -f "$f" ] || continue; v="$(cat "$f" 2>/dev/null || true)"; s=$((s + ${v:-0})); done; echo "$s"; }

writer_pids=()
stop_writers() { # DB...: stop those writers (all when none named), wait for each to finish
    local db dbs="${*:-$(apps)}"
    for db in $dbs; do touch "$DRILL/writers/$db.stop"; done
    for db in $dbs; do
        for _ in $(seq 1 300); do [ -e "$DRILL/writers/$db.done" ] && break; sleep 0.1; done
    done
}
pause_writers() {
    touch "$DRILL/writers/pause"
    local db
    for db in $(apps); do
        [ -e "$DRILL/writers/$db.done" ] && continue
        for _ in $(seq 1 300); do [ -e "$DRILL/writers/$db.paused" ] && break; sleep 0.05; done
    done
}
resume_writers() { rm -f "$DRILL/writers/pause"; }
stop_follower() {
    if [ -n "${follower_pid:-}" ] && kill -0 "$follower_pid" 2>/dev/null; then
        kill -TERM "$follower_pid" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$follower_pid" 2>/dev/null || break; sleep 0.1; done
    fi
    follower_pid=""
}
cleanup() { # on any exit: writers, follower, both clusters, by pid; then the folder
    touch "$DRILL/writers/pause" 2>/dev/null || true
    for db in $(apps); do touch "$DRILL/writers/$db.stop" 2>/dev/null || true; done
    local pid
    for pid in "${writer_pids[@]}"; do
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    stop_follower
    "$galera" stop "$R" >/dev/null 2>&1 || "$galera" kill "$R" >/dev/null 2>&1 || true
    "$galera" kill "$C" >/dev/null 2>&1 || true
    if [ "${KEEP:-0}" != 1 ]; then rm -rf "$DRILL"; fi
}
trap cleanup EXIT

say "A 3-node Galera cluster on 127.0.0.1 ($C)"
timed "galera-cluster.sh start (bootstrap node 1, nodes 2 and 3 join by SST)" "$galera" start "$C" \
    || abort "the cluster starts"
"$galera" status "$C"
for db in $(apps); do
    sqlc "$C" $(( ${db#app0} % 3 + 1 )) -e "CREATE DATABASE $db; USE $db;
        CREATE TABLE customers (id INT PRIMARY KEY, email VARCHAR(80), visits INT NOT NULL DEFAULT 0);
        CREATE TABLE orders (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(40), amount DECIMAL(10,2), node INT);
        INSERT INTO customers (id, email) VALUES (1, 'ada@$db.example'), (2, 'grace@$db.example');"
done
check "6 application databases, created on nodes 1-3, are on node 3" "6" "$(sqlc "$C" 3 -e "SET SESSION wsrep_sync_wait = 1; SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name LIKE 'app%'")"

cat > "$DRILL/nightly.yaml" <<EOF
repository: $DRILL/repo
timezone: UTC
lock-timeout: 1m
jobs:
  - source: galera-node1
    kind: mariabackup
    socket: $C/node1/sock
    user: root
    defaults-file: $C/node1.cnf
    tags: [nightly]
retention:
  keep-last: 10          # the drill's "nights" are minutes apart: keep-daily would keep one
  keep-before-event: 90d
verify:
  after-backup: quick
EOF
"$bin" init >/dev/null
timed "backstop policy check nightly.yaml" "$bin" policy check "$DRILL/nightly.yaml" || true

say "Node 1's binlogs are archived continuously (every node's writes are in them)"
"$bin" logs follow --source mysql-binlog --socket "$C/node1/sock" --user root --flush-interval 1s \
    --spool "$DRILL/binlog-spool" --quiet 2> "$DRILL/follow.err" &
follower_pid=$!
wait_archived() { # until the archive holds node 1's binlog up to its current position
    local position=""
    for _ in $(seq 1 600); do
        position="$(sqlc "$C" 1 -e 'SHOW MASTER STATUS' | cut -f1,2 | tr '\t' :)"
        if "$bin" logs list --source mysql-binlog --json 2>/dev/null | python3 -c 'import json,sys; sys.exit(0 if sys.argv[1] in [s.get("endPosition") for s in json.load(sys.stdin)["segments"]] else 1)' "$position"; then return 0; fi
        sleep 0.1
    done
    fail "the binlog archive reaches $position"; cat "$DRILL/follow.err"; return 0
}

say "Applications write continuously, to all three nodes"
for db in $(apps); do "$here/drill-galera.sh" writer "$db" & writer_pids+=($!); done
sleep 3
check "the applications are writing" "yes" "$([ "$(writes)" -gt 10 ] && echo yes || echo "no ($(writes) writes)")"

say "Night 1: a hot backup of node 1 under write load (backstop run, kind: mariabackup)"
e0=$(errors); w0=$(writes)
timed "backstop run (hot backup of node 1, applications writing)" "$bin" run "$DRILL/nightly.yaml" || true
hot_ns=$last_ns
w1=$(writes)
check "the applications saw no error during the hot backup" "0" "$(( $(errors) - e0 ))"
check "the applications kept writing during it" "yes" "$([ "$w1" -gt "$w0" ] && echo yes || echo "no: $w0 -> $w1")"
night1="$("$bin" select --latest --source galera-node1 2>/dev/null || true)"
[ -n "$night1" ] || fail "night 1's snapshot is in the catalog"
stored="$("$bin" list --json 2>/dev/null | python3 -c 'import json,sys
for s in json.load(sys.stdin)["snapshots"]:
    if s["id"] == sys.argv[1]: print(s["bytesIn"], s["bytesStored"])' "$night1" || true)"
echo "applications: $((w1 - w0)) writes during the backup"

say "For comparison: mariadb-backup --backup alone, same node, same load"
timed "mariadb-backup --backup (alone, to a folder)" bash -c "mariadb-backup --defaults-file='$C/node1.cnf' --backup \
    --target-dir='$DRILL/plain-backup' > '$DRILL/plain-backup.log' 2>&1" || tail -n 5 "$DRILL/plain-backup.log"
plain_ns=$last_ns
plain_bytes="$(du -sb "$DRILL/plain-backup" | cut -f1)"
rm -rf "$DRILL/plain-backup"
check "the applications saw no error during it" "0" "$(( $(errors) - e0 ))"

say "Night 2, the last before the upgrade: the applications pause, the state is taken, the backup runs"
pause_writers
state "$C" 1 > "$DRILL/pre.txt"
timed "backstop run (the pre-upgrade hot backup)" "$bin" run "$DRILL/nightly.yaml" || true
night2="$("$bin" select --latest --source galera-node1 2>/dev/null || true)"
check "night 2's snapshot is a new one" "yes" "$([ -n "$night2" ] && [ "$night2" != "$night1" ] && echo yes || echo "no: '$night1' '$night2'")"
sleep 1.1
timed "backstop event add upgrade" "$bin" event add upgrade --note "MariaDB 10.11 -> 11.4 on the Galera cluster" || true
sleep 1.1

say "After the upgrade only $affected keep writing; the others stopped before it"
stop_writers $(for db in $(apps); do case " $affected " in *" $db "*) ;; *) echo "$db" ;; esac; done)
resume_writers
sleep 2
timed "backstop run (the night after the upgrade)" "$bin" run "$DRILL/nightly.yaml" || true
sleep 3
stop_writers
check "the applications saw no error at all" "0" "$(errors)"
[ "$(errors)" = 0 ] || head -n 5 "$DRILL"/writers/*.errors
echo "applications: $(writes) writes in all"
sqlc "$C" 2 -e "INSERT INTO app05.orders (name, amount, node) VALUES ('just before the failure', 3.00, 2); DELETE FROM app02.customers WHERE id = 2"
sleep 1.1
failure_at="$(date -u +%Y-%m-%dT%H:%M:%SZ)"   # every write above is before it
state "$C" 1 > "$DRILL/failure.txt"
for n in 2 3; do check "node $n holds the same data as node 1 at the failure" "$(cat "$DRILL/failure.txt")" "$(state "$C" "$n")"; done
wait_archived
pass "node 1's binlogs archived up to the failure at $failure_at"

say "The upgrade broke the cluster: every node killed, every data directory damaged"
stop_follower
timed "galera-cluster.sh kill (all three nodes)" "$galera" kill "$C" || true
for n in 1 2 3; do
    dd if=/dev/urandom of="$C/node$n/data/ibdata1" bs=64k count=16 conv=notrunc status=none
    rm -rf "$C/node$n/data/app0"* "$C/node$n/data/mysql"
done
broken_ns=$(now_ns)     # the recovery's clock starts: no node runs, no data directory is usable
check "no node of the broken cluster runs" "" "$("$galera" pids "$C")"
timed "backstop logs check --source mysql-binlog" "$bin" logs check --source mysql-binlog || true

say "Recovery: the snapshot from before the upgrade"
pre="$("$bin" select --before upgrade --source galera-node1 --explain || true)"
check "select --before upgrade chooses night 2's hot backup" "${night2:-(night 2 has no snapshot)}" "$pre"
[ -n "$pre" ] || abort "a pre-upgrade snapshot to restore"
mkdir -p "$R/node1"
timed "backstop restore --prepare (into node 1's new data directory)" "$bin" restore "$pre" --to "$R/node1/data" --prepare \
    || abort "restore --prepare of $pre"
check "grastate.dat lets node 1 bootstrap" "safe_to_bootstrap: 1" "$(grep -o 'safe_to_bootstrap: *1' "$R/node1/data/grastate.dat" 2>/dev/null | tr -s ' ')"
"$galera" init "$R"
timed "galera-cluster.sh bootstrap (node 1, a new cluster from the backup)" "$galera" bootstrap "$R" 1 || abort "node 1 bootstraps from the backup"
timed "galera-cluster.sh join (node 2, by SST)" "$galera" join "$R" 2 || true
timed "galera-cluster.sh join (node 3, by SST)" "$galera" join "$R" 3 || true
timed "galera-cluster.sh wait (3 nodes, Synced)" "$galera" wait "$R" 3 || abort "the rebuilt cluster reaches 3 synced nodes"
synced_ns=$(( $(now_ns) - broken_ns ))
"$galera" status "$R"
for n in 1 2 3; do check "node $n: every table's checksum equals the pre-upgrade state" "$(cat "$DRILL/pre.txt")" "$(state "$R" "$n")"; done

say "Each application written to after the upgrade, as of the failure: its binlog events into node 1"
"$bin" restore "$pre" --database app02 --until "$failure_at" --explain --to - 2>&1 >/dev/null | head -n 8 || true
for db in $affected; do
    timed "backstop restore --database $db --until (failure) | mariadb (node 1)" bash -c "set -o pipefail; '$bin' restore '$pre' --database $db --until '$failure_at' --to - | mariadb --defaults-file='$R/node1.cnf'" || true
done
timed "galera-cluster.sh wait (3 nodes, Synced)" "$galera" wait "$R" 3 || true
recovered_ns=$(( $(now_ns) - broken_ns ))
expected="$(while IFS=$'\t' read -r table sum; do
    case " $affected " in *" ${table%%.*} "*) awk -F'\t' -v t="$table" '$1 == t' "$DRILL/failure.txt" ;; *) printf '%s\t%s\n' "$table" "$sum" ;; esac
done < "$DRILL/pre.txt")"
for n in 1 2 3; do
    check "node $n: $affected equal their state at the failure, the others the pre-upgrade state" "$expected" "$(state "$R" "$n")"
done
check "the affected applications did change after the snapshot (the replay is what brought them back)" "different" \
    "$([ "$(grep '^app05.orders' "$DRILL/pre.txt")" != "$(grep '^app05.orders' "$DRILL/failure.txt")" ] && echo different || echo same)"

say "Report"
printf 'hot backup under load, backstop run:      %s s, %s bytes read, %s bytes stored\n' "$(secs "$hot_ns")" "${stored% *}" "${stored#* }"
printf 'mariadb-backup --backup alone:            %s s, %s bytes in its folder\n' "$(secs "$plain_ns")" "$plain_bytes"
printf 'recovery, cluster broken -> 3 nodes synced on the pre-upgrade data:          %s s\n' "$(secs "$synced_ns")"
printf 'recovery, cluster broken -> 3 nodes synced with every application recovered: %s s\n' "$(secs "$recovered_ns")"

say "Stopping the rebuilt cluster"
timed "galera-cluster.sh stop (rebuilt)" "$galera" stop "$R" || true
check "every server the drill started has stopped" "" "$("$galera" pids "$C")$("$galera" pids "$R")"

echo
if [ "$failures" -eq 0 ]; then echo "DRILL PASSED"; else echo "DRILL FAILED: $failures checks"; exit 1; fi
