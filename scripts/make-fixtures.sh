#!/usr/bin/env bash
# Regenerates the dump fixtures in Tests/BackstopTests/Fixtures/ from live servers, so the fast
# test tier (scripts/test.sh --fast) can check the scanners, the verifier and logical restores on
# real dump bytes without starting a database server.
#
# The checked-in fixtures were made by:
#   MariaDB 10.11.19 (mariadbd, mariadb-dump 10.19 from Debian 12's mariadb-server/-client)
#   PostgreSQL 15.18 (initdb, pg_dump, pg_dumpall 15.18 from Debian 12's postgresql-15)
# Update these two lines when you regenerate with other versions, and run the fast tier.
#
#   scripts/make-fixtures.sh            write the fixtures (replacing the old ones)
#   scripts/make-fixtures.sh DIR        write them into DIR instead
#
# It starts its own MariaDB and PostgreSQL servers in a temporary folder (Unix sockets only, as
# the tests do), never a system instance, and stops them on exit. Needs what
# `scripts/setup.sh --test` installs. Dumps hold dates and random \restrict keys, so two runs
# never give identical bytes; the tests check structure, not bytes.
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(realpath -m "${1:-Tests/BackstopTests/Fixtures}")"
mkdir -p "$out"

work="$(mktemp -d /tmp/backstop-fixtures.XXXXXX)"
chmod 755 "$work"                       # the PostgreSQL server runs as user postgres
if [ "$(id -u)" = 0 ]; then run="runuser -u postgres --"; mariadb_user=--user=root; else run=""; mariadb_user=""; fi
pgbin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
[ -x "$pgbin/initdb" ] || { echo "make-fixtures: PostgreSQL server binaries not found; run scripts/setup.sh --test" >&2; exit 69; }
[ -x /usr/sbin/mariadbd ] || { echo "make-fixtures: mariadbd not found; run scripts/setup.sh --test" >&2; exit 69; }

cleanup() {
    if [ -f "$work/pg-data/postmaster.pid" ]; then $run "$pgbin/pg_ctl" -D "$work/pg-data" -m fast -w stop >/dev/null 2>&1 || true; fi
    if [ -f "$work/my.pid" ]; then
        pid="$(cat "$work/my.pid")"; kill "$pid" 2>/dev/null || true
        for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -rf "$work"
}
trap cleanup EXIT

echo "MariaDB: $(/usr/sbin/mariadbd --version)"
mariadb-install-db --no-defaults --datadir="$work/my-data" $mariadb_user --auth-root-authentication-method=normal --skip-test-db >/dev/null 2>&1
(exec </dev/null >/dev/null 2>&1; /usr/sbin/mariadbd --no-defaults --datadir="$work/my-data" $mariadb_user --socket="$work/my.sock" \
    --skip-networking --pid-file="$work/my.pid" --log-error="$work/my.err" &)
for _ in $(seq 300); do mariadb-admin --no-defaults -S "$work/my.sock" -u root ping >/dev/null 2>&1 && break; sleep 0.1; done
my() { mariadb --no-defaults -S "$work/my.sock" -u root -N -B "$@"; }
mydump() { mariadb-dump --no-defaults -S "$work/my.sock" -u root "$@"; }

my -e "
    CREATE DATABASE shop; CREATE TABLE shop.orders (id INT PRIMARY KEY, item VARCHAR(40));
    INSERT INTO shop.orders VALUES (1, 'lamp'), (2, 'desk');
    CREATE VIEW shop.big_orders AS SELECT * FROM shop.orders WHERE id > 1;
    CREATE TABLE shop.audit (at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, what VARCHAR(40));
    CREATE TRIGGER shop.orders_audit AFTER INSERT ON shop.orders FOR EACH ROW INSERT INTO shop.audit (what) VALUES (NEW.item);
    CREATE PROCEDURE shop.order_count() SELECT COUNT(*) FROM shop.orders;
    CREATE DATABASE crm; CREATE TABLE crm.contacts (id INT PRIMARY KEY, name TEXT);
    INSERT INTO crm.contacts VALUES (1, 'Ada');
    CREATE DATABASE \`we\`\`ird\`; CREATE TABLE \`we\`\`ird\`.t (a INT); INSERT INTO \`we\`\`ird\`.t VALUES (7);"
# Several databases, as a nightly job takes them (the mysql system database is left out: it
# would make the file ten times larger and holds nothing the tests need).
mydump --single-transaction --routines --events --triggers --databases shop crm 'we`ird' > "$out/mariadb-databases.sql"
mydump --single-transaction --routines --triggers shop > "$out/mariadb-shop.sql"
mydump --single-transaction --compact shop > "$out/mariadb-shop-compact.sql"

echo "PostgreSQL: $("$pgbin/postgres" --version)"
mkdir -p "$work/pg-data" "$work/pg"; [ -z "$run" ] || chown postgres "$work/pg-data" "$work/pg"
$run "$pgbin/initdb" -D "$work/pg-data" -U postgres -A trust --no-sync -E UTF8 --locale=C.UTF-8 >/dev/null
$run "$pgbin/pg_ctl" -D "$work/pg-data" -l "$work/pg/server.log" -w -o "-k $work/pg -c listen_addresses='' -p 5432 -c fsync=off" start >/dev/null
conn=(-h "$work/pg" -p 5432 -U postgres)
pg() { psql -X -q -v ON_ERROR_STOP=1 "${conn[@]}" -At "$@"; }

# pg_dumpall: two application databases, dumped twice unchanged (new \restrict keys each time),
# then once after one row changed in ledger.
pg -d postgres -c "CREATE DATABASE ledger" -c "CREATE DATABASE inventory"
pg -d ledger -c "CREATE TABLE entries (id serial PRIMARY KEY, amount int); INSERT INTO entries (amount) VALUES (10), (20);"
pg -d inventory -c "CREATE TABLE items (id serial PRIMARY KEY, name text); INSERT INTO items (name) VALUES ('bolt'), ('nut');"
pg_dumpall "${conn[@]}" > "$out/pg-dumpall.sql"
pg_dumpall "${conn[@]}" > "$out/pg-dumpall-again.sql"
pg -d ledger -c "INSERT INTO entries (amount) VALUES (30);"
pg_dumpall "${conn[@]}" > "$out/pg-dumpall-changed.sql"

# pg_dump: three tables in two schemas, a foreign key and a large object.
pg -d postgres -c "CREATE DATABASE shop"
pg -d shop -c "
    CREATE TABLE customers (id serial PRIMARY KEY, name text);
    CREATE TABLE orders (id serial PRIMARY KEY, customer int REFERENCES customers(id), total numeric);
    CREATE SCHEMA audit; CREATE TABLE audit.log (at timestamptz, what text);
    INSERT INTO customers (name) SELECT 'customer ' || g FROM generate_series(1, 50) g;
    INSERT INTO orders (customer, total) SELECT 1 + g % 50, g * 1.25 FROM generate_series(1, 70) g;
    INSERT INTO audit.log VALUES ('2024-03-24 22:00:00+00', 'upgrade');
    SELECT lo_from_bytea(0, 'a large object');" >/dev/null
pg_dump "${conn[@]}" --no-blobs shop > "$out/pg-shop.sql"
pg_dump "${conn[@]}" -Fc shop | cat > "$out/pg-shop-custom-pipe.dump"     # to a pipe: no data offsets
pg_dump "${conn[@]}" -Fc -f "$work/shop.dump" shop; cat "$work/shop.dump" > "$out/pg-shop-custom-file.dump"  # seeks back, writes offsets
pg_dump "${conn[@]}" -Ft shop > "$out/pg-shop.tar"
# The same database after one table changed and one was added.
pg -d shop -c "UPDATE audit.log SET what = 'downgrade'; CREATE TABLE added (a int); INSERT INTO added VALUES (1);"
pg_dump "${conn[@]}" -Fc shop | cat > "$out/pg-shop-changed-custom-pipe.dump"
pg_dump "${conn[@]}" -Ft shop > "$out/pg-shop-changed.tar"

chmod 644 "$out"/*
ls -l "$out"
