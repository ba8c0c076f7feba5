#!/usr/bin/env bash
# WAL archiving throughput: PostgreSQL's archive_command runs once per 16 MiB segment, so what
# counts is pushes per second, process start and repository opening included. Pushes N
# generated segments with `backstop logs push` (as archive_command would: one process each)
# beside the peer pipeline `zstd -3 FILE -o ARCHIVE && sync`, and times what a push costs before
# it reads a byte: the process alone (`backstop --version`) and opening the repository and its
# catalog (`backstop logs list`).
#
#   scripts/bench-wal.sh [WORKDIR] [BACKSTOP_BIN]     (N=50 segments; bench.sh calls it)
set -euo pipefail
cd "$(dirname "$0")/.."
work="${1:-$PWD/bench-work}"
bin="${2:-}"
if [ -z "$bin" ]; then
    swift build -c release --product backstop 2>&1 | tail -n 1
    bin="$(swift build -c release --show-bin-path)/backstop"
fi
n="${N:-50}"
dir="$work/wal"
rm -rf "$dir"; mkdir -p "$dir/segments" "$dir/peer"
# Segments like a busy server's: 8 KiB pages, each half new data, half zeros (WAL compresses ~2x).
python3 - "$dir/segments" "$n" <<'PY'
import os, random, sys
out, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(15)
for i in range(1, n + 1):
    with open(os.path.join(out, "0000000100000000%08X" % i), "wb") as f:
        for _ in range(2048):
            f.write(rng.randbytes(4096) + bytes(4096))
PY
segments=("$dir"/segments/*)
"$bin" init --repo "$dir/repo" --quiet
sync

rate() { # LABEL COMMAND-PER-SEGMENT (with {} for the path): runs it for each segment, one process each
    local label="$1" cmd="$2" t0 ns f
    sync
    t0=$(date +%s%N)
    for f in "${segments[@]}"; do bash -c "${cmd//\{\}/$f}" >/dev/null; done
    ns=$(( $(date +%s%N) - t0 ))
    printf '%-52s %8.2f s  %7.1f per second  %6.1f ms each\n' "$label" "$(echo "$ns / 1000000000" | bc -l)" \
        "$(echo "$n * 1000000000 / $ns" | bc -l)" "$(echo "$ns / $n / 1000000" | bc -l)"
}

echo "WAL archiving: $n segments of 16 MiB, one process per segment; $(nproc) cores"
rate "backstop logs push --source pg-wal"       "'$bin' logs push --quiet --repo '$dir/repo' --source pg-wal {}"
rate "zstd -3 FILE -o ARCHIVE && sync ARCHIVE"   "zstd -q -3 {} -o '$dir/peer/'\$(basename {}).zst && sync '$dir/peer/'\$(basename {}).zst"
rate "cp FILE ARCHIVE && sync ARCHIVE"           "cp {} '$dir/peer/'\$(basename {}) && sync '$dir/peer/'\$(basename {})"
rate "  of a push: backstop --version"           "'$bin' --version"
rate "  of a push: backstop logs list (open repo)" "'$bin' logs list --quiet --repo '$dir/repo' --source pg-wal"
rate "backstop logs push again (already archived)" "'$bin' logs push --quiet --repo '$dir/repo' --source pg-wal {}"
echo "stored: backstop $(du -sh "$dir/repo/logs" | cut -f1), zstd $(du -shc "$dir"/peer/*.zst | tail -n 1 | cut -f1)"
rm -rf "$dir"
