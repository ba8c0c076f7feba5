#!/usr/bin/env bash
# A 3-node MariaDB Galera cluster on 127.0.0.1, in one private folder, for the Galera drill and
# the tests. Never a system instance: every node has its own data directory, socket, pid file,
# option file and ports (the MariaDB port, the group-communication port, the IST and the SST
# ports), all chosen free when the folder is set up and kept in DIR/ports.env.
#
#   scripts/galera-cluster.sh init DIR                    chooses the ports, writes node1..3.cnf
#   scripts/galera-cluster.sh start DIR                   init (if needed), a new node 1 bootstraps,
#                                                         nodes 2 and 3 join by SST, wait synced
#   scripts/galera-cluster.sh bootstrap DIR N             node N starts a new cluster from its data
#                                                         directory (--wsrep-new-cluster)
#   scripts/galera-cluster.sh join DIR N                  node N joins (empty data directory: SST)
#   scripts/galera-cluster.sh wait DIR [SIZE]             until every running node sees SIZE (3)
#                                                         members and says Synced
#   scripts/galera-cluster.sh sql DIR N [mariadb ARGS]    the client on node N (-N -B, as root)
#   scripts/galera-cluster.sh status DIR                  one line per node
#   scripts/galera-cluster.sh stop DIR [N]                clean shutdown (node N, or 3, 2, then 1)
#   scripts/galera-cluster.sh kill DIR [N]                SIGKILL by pid file (node N, or all)
#   scripts/galera-cluster.sh pids DIR                    the pids of its running nodes
#
# Node N's data directory is DIR/nodeN/data, its socket DIR/nodeN/sock, its log DIR/nodeN/err.log,
# its pid (written when it is started, before any state transfer) DIR/nodeN/pid.
# A hot backup of node N: mariadb-backup --defaults-file=DIR/nodeN.cnf --backup (backstop's
# backup --mariabackup adds --galera-info itself on a wsrep node: the drill relies on that).
# Node 1 writes a binlog (log-bin, log-slave-updates, binlog_format=ROW): every write of the
# cluster, made on any node, is in it, which is what point-in-time recovery archives.
#
# State transfer (SST, how a joining node gets the whole data set) is mariabackup by default
# (wsrep_sst_method=mariabackup, streamed with socat), set by SST=mariabackup|rsync when the folder
# is set up. Why not rsync: the servers run as root here (CI), and rsync SST's receiving daemon,
# started by a root server, drops to user nobody and cannot write the joiner's data directory
# (rsync: mkdir "mysql" failed: Permission denied). mariabackup SST also keeps the donor writable
# during the transfer (rsync SST holds it read-only), so a node can join under load. SST=rsync
# works for servers that run as a non-root user.
set -euo pipefail

cmd="${1:-}"; dir="${2:-}"
[ -n "$cmd" ] && [ -n "$dir" ] || { sed -n '2,24p' "$0" >&2; exit 64; }
mkdir -p "$dir"; dir="$(cd "$dir" && pwd)"
provider=/usr/lib/galera/libgalera_smm.so
root_user=""; [ "$(id -u)" = 0 ] && root_user="user = root"

die() { echo "galera-cluster: $*" >&2; exit 1; }

# Free TCP ports on 127.0.0.1, COUNT of them, all bound at once so they differ.
free_ports() {
    python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks: s.close()
EOF
}

init() {
    [ -f "$provider" ] || die "$provider is missing: install galera-4 (scripts/setup.sh --test)"
    command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || die "mariadbd is missing: install mariadb-server"
    local sst="${SST:-mariabackup}"
    case "$sst" in
        rsync) command -v rsync >/dev/null || die "rsync is missing: install rsync (scripts/setup.sh --test)" ;;
        mariabackup) command -v mariadb-backup >/dev/null && command -v socat >/dev/null \
                         || die "SST=mariabackup needs mariadb-backup and socat (scripts/setup.sh --test)" ;;
        *) die "SST=$sst: use rsync or mariabackup" ;;
    esac
    if [ ! -f "$dir/ports.env" ]; then
        # shellcheck disable=SC2046
        set -- $(free_ports 12)
        {
            echo "SST_METHOD=$sst"
            for n in 1 2 3; do
                echo "PORT$n=$1 GCOMM$n=$2 IST$n=$3 SSTPORT$n=$4"; shift 4
            done
        } > "$dir/ports.env"
    fi
    # shellcheck disable=SC1091
    . "$dir/ports.env"
    local members="gcomm://127.0.0.1:$GCOMM1,127.0.0.1:$GCOMM2,127.0.0.1:$GCOMM3"
    for n in 1 2 3; do
        local port gcomm ist sstport binlog=""
        eval "port=\$PORT$n gcomm=\$GCOMM$n ist=\$IST$n sstport=\$SSTPORT$n"
        mkdir -p "$dir/node$n/data"
        [ "$n" = 1 ] && binlog="log-bin = $dir/node1/data/mysql-bin
log-slave-updates = ON"
        cat > "$dir/node$n.cnf" <<EOF
# Galera node $n of the cluster in $dir (written by scripts/galera-cluster.sh)
[mysqld]
$root_user
datadir = $dir/node$n/data
socket = $dir/node$n/sock
pid-file = $dir/node$n/mariadbd.pid
log-error = $dir/node$n/err.log
bind-address = 127.0.0.1
port = $port
server-id = 1
$binlog
binlog-format = ROW
default-storage-engine = InnoDB
innodb-autoinc-lock-mode = 2
innodb-buffer-pool-size = 64M
innodb-log-file-size = 32M
wsrep-on = ON
wsrep-provider = $provider
wsrep-cluster-name = backstop-drill-$(basename "$dir")
wsrep-cluster-address = $members
wsrep-node-name = node$n
wsrep-node-address = 127.0.0.1:$gcomm
wsrep-provider-options = "gmcast.listen_addr=tcp://127.0.0.1:$gcomm;ist.recv_addr=127.0.0.1:$ist;gcache.size=64M;gcs.fc_limit=256"
wsrep-sst-method = $SST_METHOD
wsrep-sst-receive-address = 127.0.0.1:$sstport
wsrep-sst-auth = root:
[client]
socket = $dir/node$n/sock
user = root
[mariadb-backup]
socket = $dir/node$n/sock
user = root
EOF
    done
}

ensure_init() { [ -f "$dir/ports.env" ] && [ -f "$dir/node1.cnf" ] || init; . "$dir/ports.env"; }

node_pid() { local f="$dir/node$1/pid"; [ -f "$f" ] && head -n 1 "$f" 2>/dev/null || true; }
running() { local pid; pid="$(node_pid "$1")"; [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }
sql() { local n="$1"; shift; mariadb --defaults-file="$dir/node$n.cnf" -N -B "$@"; }
status_var() { sql "$1" -e "SHOW GLOBAL STATUS LIKE '$2'" 2>/dev/null | cut -f2; }

# Starts node N in the background, closing every inherited descriptor (a test's pipes), and waits
# until it answers (a joiner answers once its state transfer is done).
launch() { # N [EXTRA MARIADBD ARGS]
    local n="$1"; shift
    running "$n" && die "node $n is already running (pid $(node_pid "$n"))"
    mkdir -p "$dir/node$n/data"
    ( for fd in /proc/$BASHPID/fd/*; do k=${fd##*/}; [ "$k" -gt 2 ] && eval "exec $k>&-"; done 2>/dev/null
      exec </dev/null >>"$dir/node$n/out" 2>&1
      /usr/sbin/mariadbd --defaults-file="$dir/node$n.cnf" "$@" &
      echo $! > "$dir/node$n/pid" )
    for _ in $(seq 1 1800); do   # 3 minutes: an SST on a loaded machine
        if sql "$n" -e 'SELECT 1' >/dev/null 2>&1 && [ "$(status_var "$n" wsrep_ready)" = ON ]; then return 0; fi
        running "$n" || break
        sleep 0.1
    done
    echo "galera-cluster: node $n did not start; the end of $dir/node$n/err:" >&2
    tail -n 30 "$dir/node$n/err.log" >&2 || true
    exit 1
}

bootstrap() { # N: a new cluster from node N's data directory (a new one if it is empty)
    local n="$1"
    if [ ! -d "$dir/node$n/data/mysql" ]; then
        mariadb-install-db --defaults-file="$dir/node$n.cnf" --auth-root-authentication-method=normal \
            --skip-test-db >"$dir/node$n/install.log" 2>&1 || { cat "$dir/node$n/install.log" >&2; die "mariadb-install-db failed for node $n"; }
    fi
    launch "$n" --wsrep-new-cluster
}

wait_synced() { # SIZE: every running node sees SIZE members and is Synced
    local size="${1:-3}" n ok line
    for _ in $(seq 1 1800); do
        ok=1
        for n in 1 2 3; do
            running "$n" || continue
            [ "$(status_var "$n" wsrep_cluster_size)" = "$size" ] && [ "$(status_var "$n" wsrep_local_state_comment)" = Synced ] || ok=0
        done
        [ "$ok" = 1 ] && return 0
        sleep 0.1
    done
    for n in 1 2 3; do
        line="node $n: $(running "$n" && echo "size=$(status_var "$n" wsrep_cluster_size) state=$(status_var "$n" wsrep_local_state_comment)" || echo stopped)"
        echo "galera-cluster: $line" >&2
    done
    die "the cluster in $dir did not reach $size synced nodes"
}

stop_node() {
    local n="$1" pid
    pid="$(node_pid "$n")"
    running "$n" || return 0
    mariadb-admin --defaults-file="$dir/node$n.cnf" shutdown >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 600); do kill -0 "$pid" 2>/dev/null || { rm -f "$dir/node$n/pid"; return 0; }; sleep 0.1; done
    die "node $n (pid $pid) did not stop in 60 s"
}

kill_node() {
    local n="$1" pid
    pid="$(node_pid "$n")"
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid"
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$dir/node$n/pid"
}

case "$cmd" in
    init) init ;;
    start)
        ensure_init
        bootstrap 1
        launch 2
        launch 3
        wait_synced 3 ;;
    bootstrap) ensure_init; bootstrap "${3:?node number}" ;;
    join) ensure_init; launch "${3:?node number}" ;;
    wait) ensure_init; wait_synced "${3:-3}" ;;
    sql) n="${3:?node number}"; shift 3; sql "$n" "$@" ;;
    status)
        for n in 1 2 3; do
            if running "$n"; then
                echo "node$n pid=$(node_pid "$n") port=$(sed -n 's/^port = //p' "$dir/node$n.cnf") size=$(status_var "$n" wsrep_cluster_size) state=$(status_var "$n" wsrep_local_state_comment)"
            else
                echo "node$n stopped"
            fi
        done ;;
    stop) if [ -n "${3:-}" ]; then stop_node "$3"; else for n in 3 2 1; do stop_node "$n"; done; fi ;;
    kill) if [ -n "${3:-}" ]; then kill_node "$3"; else for n in 1 2 3; do kill_node "$n"; done; fi ;;
    pids) for n in 1 2 3; do running "$n" && node_pid "$n"; done; true ;;
    *) die "unknown command $cmd (init, start, bootstrap, join, wait, sql, status, stop, kill, pids)" ;;
esac
