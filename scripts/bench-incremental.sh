#!/usr/bin/env bash
# The incremental side of Backstop (repository format 2) against restic and borg, in one run:
#
#   1. the same tree backed up again, unchanged (files cache);
#   2. after 1% of the files changed: time and new bytes stored;
#   3. 30 nights of a data directory changing about 1% a day: repository size against one full
#      snapshot, and against restic's repository on the same nights;
#   4. 100,000 files of 1 KiB: first backup and whole restore against tar/zstd pipelines, and the
#      unchanged re-run against restic's.
#
#   scripts/bench-incremental.sh WORKDIR BACKSTOP_BINARY     (called by scripts/bench.sh)
#
# Wall time and peak RSS per command; sizes from each tool's repository on disk (du).
set -euo pipefail
work="$1"
bin="$2"
corpus=$(ls -d "$work"/corpus-* | head -n 1)
inc="$work/inc"
rm -rf "$inc"
mkdir -p "$inc"
export RESTIC_PASSWORD=bench BORG_PASSPHRASE="" BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes

rows=()
measure() { # name command...
    local name="$1"; shift
    sync
    /usr/bin/time -o "$inc/time.out" -f "%e %M" bash -c "$*" >/dev/null 2>"$inc/last.err" \
        || { echo "bench: '$name' failed:" >&2; tail -n 5 "$inc/last.err" >&2; return 0; }
    local t; t=$(tail -n 1 "$inc/time.out")
    rows+=("$(printf '%-52s %8.2f s %8.1f MiB' "$name" "${t% *}" "$(echo "${t#* } / 1024" | bc -l)")")
}
size() { du -sb "$1" | cut -f1; }
mib() { echo "$1" | awk '{printf "%.1f MiB", $1/1048576}'; }

# A private copy of the tree, to change.
cp -a "$corpus/tree" "$inc/tree"
tree_bytes=$(du -sb --apparent-size "$inc/tree" | cut -f1)
"$bin" init --repo "$inc/backstop" --quiet
restic init --repo "$inc/restic" -q >/dev/null
borg init -e none "$inc/borg" >/dev/null

measure "first: backstop backup"        "'$bin' backup '$inc/tree' --source t --repo '$inc/backstop' --quiet"
measure "first: restic backup"          "restic backup --repo '$inc/restic' -q '$inc/tree'"
measure "first: borg create"            "borg create --compression zstd,3 '$inc/borg::n0' '$inc/tree'"
measure "unchanged: backstop backup"    "'$bin' backup '$inc/tree' --source t --repo '$inc/backstop' --quiet"
measure "unchanged: restic backup"      "restic backup --repo '$inc/restic' -q '$inc/tree'"
measure "unchanged: borg create"        "borg create --compression zstd,3 '$inc/borg::n1' '$inc/tree'"

# 1% of the files (by count) rewritten with new content of the same size.
python3 - "$inc/tree" <<'PY'
import os, random, sys
rng = random.Random(1)
files = sorted(os.path.join(d, f) for d, _, fs in os.walk(sys.argv[1]) for f in fs)
for p in rng.sample(files, max(1, len(files) // 100)):
    n = os.path.getsize(p)
    with open(p, "r+b") as f:
        f.write(rng.randbytes(min(n, 4096)) if n else b"")
PY
b0=$(size "$inc/backstop"); r0=$(size "$inc/restic"); g0=$(size "$inc/borg")
measure "1% changed: backstop backup"   "'$bin' backup '$inc/tree' --source t --repo '$inc/backstop' --quiet"
measure "1% changed: restic backup"     "restic backup --repo '$inc/restic' -q '$inc/tree'"
measure "1% changed: borg create"       "borg create --compression zstd,3 '$inc/borg::n2' '$inc/tree'"
b1=$(size "$inc/backstop"); r1=$(size "$inc/restic"); g1=$(size "$inc/borg")

# 30 nights of a data directory (the binary files and small files) changing ~1% of its bytes a
# day, in two models: "scattered", 16 KiB pages rewritten at random places (the worst case for
# any chunking: most 1 MiB pieces get one page), and "clustered", what a database's files see
# more often: half the day's bytes appended to a few tables (new rows) and half rewritten as
# 256 KiB hot extents; both also rewrite 1% of the small files.
nights() { # model
    local model="$1" night="$inc/night-$1"
    rm -rf "$night"
    mkdir -p "$night"
    cp -a "$corpus/tree/binary" "$corpus/tree/small" "$night/"
    "$bin" init --repo "$inc/n-backstop-$model" --quiet
    restic init --repo "$inc/n-restic-$model" -q >/dev/null
    local first=""
    for n in $(seq 1 30); do
        python3 - "$night" "$n" "$model" <<'PY'
import os, random, sys
root, n, model = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rng = random.Random(n)
files = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs)
total = sum(os.path.getsize(p) for p in files)
budget = total // 100
big = [p for p in files if os.path.getsize(p) >= 1 << 20]
small = [p for p in files if os.path.getsize(p) < 1 << 20]
for p in rng.sample(small, max(1, len(small) // 100)):
    with open(p, "r+b") as f:
        f.write(rng.randbytes(min(os.path.getsize(p), 512)))
        budget -= 512
if model == "scattered":
    while budget > 0:
        p = rng.choice(big)
        with open(p, "r+b") as f:
            f.seek(rng.randrange(os.path.getsize(p) // 16384) * 16384)
            f.write(rng.randbytes(16384))
        budget -= 16384
else:
    for p in rng.sample(big, 3):
        with open(p, "ab") as f:
            f.write(rng.randbytes(budget // 6))
    left = budget // 2
    while left > 0:
        p = rng.choice(big)
        with open(p, "r+b") as f:
            f.seek(rng.randrange(os.path.getsize(p) // 16384 - 16) * 16384)
            f.write(rng.randbytes(1 << 18))
        left -= 1 << 18
PY
        "$bin" backup "$night" --source night --repo "$inc/n-backstop-$model" --quiet >/dev/null
        restic backup --repo "$inc/n-restic-$model" -q "$night" >/dev/null
        if [ -z "$first" ]; then first=$(size "$inc/n-backstop-$model"); echo "$first" > "$inc/first-$model"; fi
    done
}
nights scattered
nights clustered
# 100,000 files of 1 KiB.
many="$inc/many"
python3 - "$many" <<'PY'
import os, random, sys
rng = random.Random(3)
for d in range(200):
    folder = os.path.join(sys.argv[1], f"db{d:03d}")
    os.makedirs(folder)
    for t in range(250):
        for ext in ("frm", "ibd"):
            with open(os.path.join(folder, f"t{t:03d}.{ext}"), "wb") as f:
                f.write(rng.randbytes(256) + bytes(768))
PY
"$bin" init --repo "$inc/m-backstop" --quiet
restic init --repo "$inc/m-restic" -q >/dev/null
measure "100k files: backstop backup"               "'$bin' backup '$many' --source m --repo '$inc/m-backstop' --quiet"
measure "100k files: tar | zstd -3 -T0 | tee | sha256sum" "tar -cf - -C '$inc' many | zstd -3 -T0 -q | tee >(sha256sum > '$inc/m.sum') > '$inc/many.tar.zst'"
msnap=$(ls "$inc/m-backstop/snapshots" | head -n 1)
measure "100k files: backstop restore"              "'$bin' restore '$msnap' --to '$inc/m-r' --repo '$inc/m-backstop' --quiet"
measure "100k files: zstd -dc | tar -x"             "mkdir -p '$inc/m-x' && zstd -dc '$inc/many.tar.zst' | tar -xf - -C '$inc/m-x'"
measure "100k files: restic backup"                 "restic backup --repo '$inc/m-restic' -q '$many'"
measure "100k files unchanged: backstop backup"     "'$bin' backup '$many' --source m --repo '$inc/m-backstop' --quiet"
measure "100k files unchanged: restic backup"       "restic backup --repo '$inc/m-restic' -q '$many'"

echo
echo "incremental (format 2): tree $(mib "$tree_bytes"), $(nproc) cores"
printf '%-52s %10s %12s\n' "command" "wall" "peak RSS"
printf '%s\n' "${rows[@]}"
echo
echo "1% of files changed, new bytes stored: backstop $(mib $((b1 - b0))) ($(echo "100 * ($b1 - $b0) / $tree_bytes" | bc -l | cut -c1-5)% of the tree), restic $(mib $((r1 - r0))), borg $(mib $((g1 - g0)))"
for model in scattered clustered; do
    nb=$(size "$inc/n-backstop-$model"); nr=$(size "$inc/n-restic-$model"); first=$(cat "$inc/first-$model")
    echo "30 nights at ~1%/day ($model): backstop repository $(mib "$nb") = $(echo "$nb / $first" | bc -l | cut -c1-5)x its first full snapshot ($(mib "$first")); restic $(mib "$nr") = $(echo "$nr / $first" | bc -l | cut -c1-5)x"
done
