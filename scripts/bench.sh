#!/usr/bin/env bash
# Backup, verify-style read and logical-snapshot throughput of Backstop side by side with its
# peers, on one reproducible ~1 GiB corpus (scripts/gen-corpus.py), in one run.
#
#   scripts/bench.sh [--scale S] [WORKDIR]      (default scale 1.0, WORKDIR ./bench-work)
#
# Prints wall time, MB/s (of the uncompressed input) and peak RSS (the largest process of the
# command) for each. The page cache is warm for every command alike (the corpus is read once
# first). Timings are for reading, not for asserting: nothing fails on a slow number.
set -euo pipefail
cd "$(dirname "$0")/.."

scale=1.0
if [ "${1:-}" = "--scale" ]; then scale="$2"; shift 2; fi
work="${1:-$PWD/bench-work}"

scripts/setup.sh --bench
swift build -c release --product backstop 2>&1 | tail -n 1
bin="$(swift build -c release --show-bin-path)/backstop"

if [ ! -f "$work/corpus-$scale/dump.sql" ]; then
    rm -rf "$work"
    mkdir -p "$work"
    echo "generating corpus (scale $scale) in $work/corpus-$scale" >&2
    python3 scripts/gen-corpus.py "$work/corpus-$scale" --scale "$scale"
fi
corpus="$work/corpus-$scale"
tree="$corpus/tree"
out="$work/out"
rm -rf "$out"
mkdir -p "$out"
tar -cf - -C "$corpus" tree > /dev/null     # warm the page cache
tree_bytes=$(du -sb --apparent-size "$tree" | cut -f1)
dump_bytes=$(stat -c %s "$corpus/dump.sql")

export RESTIC_PASSWORD=bench BORG_PASSPHRASE="" BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
"$bin" init --repo "$out/backstop" --quiet
restic init --repo "$out/restic" -q >/dev/null
borg init -e none "$out/borg" >/dev/null

rows=()
measure() { # name bytes command...   (dirty pages are flushed first, so no command pays for another's writes)
    local name="$1" bytes="$2"; shift 2
    local t
    sync
    /usr/bin/time -o "$work/time.out" -f "%e %M" bash -c "$*" >/dev/null 2>"$work/last.err" \
        || { echo "bench: '$name' failed:" >&2; tail -n 5 "$work/last.err" >&2; return 0; }
    t=$(tail -n 1 "$work/time.out")
    local secs=${t% *} rss=${t#* }
    rows+=("$(printf '%-44s %8.2f s %9.1f MB/s %8.1f MiB' "$name" "$secs" \
        "$(echo "$bytes / $secs / 1000000" | bc -l)" "$(echo "$rss / 1024" | bc -l)")")
}

measure "backstop backup (filesystem)"              "$tree_bytes" "'$bin' backup '$tree' --source bench --repo '$out/backstop' --quiet"
measure "tar -c | zstd -3 -T0 | tee >(sha256sum)"  "$tree_bytes" "tar -cf - -C '$corpus' tree | zstd -3 -T0 -q | tee >(sha256sum > '$out/tar.sum') > '$out/tree.tar.zst'"
# The digest of the uncompressed stream, as Backstop's manifest records it (DESIGN: "a sha256sum
# tee on the same data"), rather than of the compressed output.
measure "tar -c | tee >(sha256sum) | zstd -3 -T0"  "$tree_bytes" "tar -cf - -C '$corpus' tree | tee >(sha256sum > '$out/tar3.sum') | zstd -3 -T0 -q > '$out/tree3.tar.zst'"
# The same made durable, as Backstop's commit is (it fsyncs every file before the rename).
measure "  the same, then sync FILE (durable)"      "$tree_bytes" "tar -cf - -C '$corpus' tree | zstd -3 -T0 -q | tee >(sha256sum > '$out/tar2.sum') > '$out/tree2.tar.zst' && sync '$out/tree2.tar.zst'"
measure "restic backup"                             "$tree_bytes" "restic backup --repo '$out/restic' -q '$tree'"
measure "borg create --compression zstd,3"         "$tree_bytes" "borg create --compression zstd,3 '$out/borg::a' '$tree'"
snap=$(ls "$out/backstop/snapshots" | head -n 1)
measure "zstd -dc tree.tar.zst | sha256sum"        "$tree_bytes" "zstd -dc '$out/tree.tar.zst' | sha256sum"
measure "zstd -dc tree.tar.zst | tar -x"           "$tree_bytes" "mkdir -p '$out/x' && zstd -dc '$out/tree.tar.zst' | tar -xf - -C '$out/x'"
measure "backstop restore (whole snapshot)"       "$tree_bytes" "'$bin' restore '$snap' --to '$out/r' --repo '$out/backstop' --quiet"
one="tree/small/d042/f04242.frm"
measure "backstop restore --include (one file)"    "$(stat -c %s "$corpus/$one")" "'$bin' restore '$snap' --include '$one' --to '$out/r1' --repo '$out/backstop' --quiet"
measure "zstd -dc | tar -x (one file)"             "$(stat -c %s "$corpus/$one")" "mkdir -p '$out/x1' && zstd -dc '$out/tree.tar.zst' | tar -xf - -C '$out/x1' '$one'"
measure "backstop verify (full)"                   "$tree_bytes" "'$bin' verify '$snap' --repo '$out/backstop' --quiet"
measure "restic check --read-data"                 "$tree_bytes" "restic check --repo '$out/restic' --read-data -q"
measure "borg check --verify-data"                 "$tree_bytes" "borg check --verify-data '$out/borg'"
# Encryption at rest (age): the same backup and full verify on an encrypted repository
# (target: each <= 1.15x its unencrypted row above; peak RSS < 64 MiB).
age-keygen -o "$out/age-identity.txt" 2>/dev/null
"$bin" init --repo "$out/backstop-enc" --encrypt --recipient "$(age-keygen -y "$out/age-identity.txt")" \
    --writer-key "$out/writer-key.json" --quiet
measure "backstop backup (filesystem, encrypted)"  "$tree_bytes" "BACKSTOP_WRITER_KEY='$out/writer-key.json' '$bin' backup '$tree' --source bench --repo '$out/backstop-enc' --quiet"
snap_enc=$(ls "$out/backstop-enc/snapshots" | head -n 1)
measure "backstop verify (full, encrypted)"        "$tree_bytes" "'$bin' verify '$snap_enc' --repo '$out/backstop-enc' --identity '$out/age-identity.txt' --quiet"
measure "backstop backup --stdin (logical dump)"   "$dump_bytes" "'$bin' backup --stdin --source bench-dump --repo '$out/backstop' --quiet < '$corpus/dump.sql'"
measure "zstd -3 -T0 | sha256sum (dump)"           "$dump_bytes" "zstd -3 -T0 -q < '$corpus/dump.sql' | sha256sum"

# Selection over a catalog of 100,000 snapshots (catalog rows, and a manifest in each snapshot
# folder so that the open's reconcile sees them committed).
sel="$work/select-repo-2"
if [ ! -f "$sel/.ready" ]; then
    rm -rf "$sel"
    "$bin" init --repo "$sel" --quiet
    "$bin" list --repo "$sel" --quiet >/dev/null    # the catalog's tables exist after an open
    python3 - "$sel" <<'PY'
import os, sqlite3, sys, random, datetime
repo = sys.argv[1]
db = sqlite3.connect(os.path.join(repo, "catalog.sqlite"))
rng = random.Random(7)
t0 = datetime.datetime(2014, 1, 1, tzinfo=datetime.timezone.utc)
rows = []
for i in range(100_000):
    t = t0 + datetime.timedelta(hours=i)
    sid = t.strftime("%Y%m%dT%H%M%SZ") + "-%08x" % rng.getrandbits(32)
    os.mkdir(os.path.join(repo, "snapshots", sid))
    with open(os.path.join(repo, "snapshots", sid, "manifest.json"), "w") as f:
        f.write("{}\n")
    ms = int(t.timestamp() * 1000)
    rows.append((sid, "logical", "src%02d" % (i % 20), "host", None, ms, ms + 60000, 0, 0, 0, 0, 1))
db.executemany("INSERT INTO snapshot (id, kind, source, host, runID, startedAtMs, completedAtMs, bytesIn, bytesStored, entryCount, warningCount, framesIndexed) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows)
db.commit()
PY
    touch "$sel/.ready"
fi
"$bin" list --repo "$sel" --source src07 --quiet >/dev/null   # warm
measure "backstop select over 100,000 snapshots"   0 "'$bin' select --before 2020-06-01T00:00:00Z --source src07 --repo '$sel'"
hyperfine -N -w 2 -r 10 --export-json "$work/select.json" "'$bin' select --before 2020-06-01T00:00:00Z --source src07 --repo '$sel'" \
    "'$bin' --version" >/dev/null 2>&1 || true
select_ms=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"]; print("%.1f ms (process start alone: %.1f ms)" % (r[0]["mean"]*1000, r[1]["mean"]*1000))' "$work/select.json" 2>/dev/null || echo "n/a")

echo
echo "selection over 100,000 snapshots, whole command (hyperfine mean of 10): $select_ms"
echo "corpus: $(numfmt --to=iec "$tree_bytes") tree, $(numfmt --to=iec "$dump_bytes") dump; $(nproc) cores"
printf '%-44s %10s %14s %12s\n' "command" "wall" "throughput" "peak RSS"
printf '%s\n' "${rows[@]}"
echo
echo "stored: backstop $("$bin" stats --repo "$out/backstop" --json | python3 -c 'import json,sys; print("%.0fM" % (json.load(sys.stdin)["deduplicatedBytes"]/2**20))') (tree and dump), tar.zst $(du -sh "$out/tree.tar.zst" | cut -f1), restic $(du -sh "$out/restic" | cut -f1), borg $(du -sh "$out/borg" | cut -f1)"

# Format 2: unchanged re-runs, 1% of files changed, 30 nights, 100,000 small files.
scripts/bench-incremental.sh "$work" "$bin"

# WAL archiving: pushes per second of 16 MiB segments, beside zstd and cp.
scripts/bench-wal.sh "$work" "$bin"

# S3: the same tree to a local S3 server, beside a local directory; GETs of a one-file restore.
scripts/bench-s3.sh "$work" "$bin" "$tree" "$one"
