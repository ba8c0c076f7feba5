#!/usr/bin/env bash
# Installs what the tests need, builds, and runs the whole test suite.
# The tests start their own MariaDB and PostgreSQL servers in private temporary folders (Unix
# sockets only) and stop them when they finish; this script removes anything left behind.
#
#   scripts/test.sh                 the whole suite
#   scripts/test.sh --filter NAME   only tests whose name matches (swift test --filter)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh --test

work="$(mktemp -d /tmp/backstop-tests.XXXXXX)"
chmod 755 "$work"          # the PostgreSQL server runs as user postgres and must reach its folder
export TMPDIR="$work"
cleanup() {
    # Servers a crashed test run could not stop: anything still running from our folder.
    pkill -TERM -f "$work" 2>/dev/null || true
    sleep 1
    pkill -KILL -f "$work" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

swift build --build-tests
log="$work/swift-test.log"
set +e
swift test --skip-build "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One plain closing line for whoever reads only the last one.
total=$(sed -n 's/.*Test run with \([0-9]*\) tests\{0,1\} in .*/\1/p' "$log" | tail -n 1)
failed=$(grep -c '^✘ Test .* failed after' "$log" || true)
echo "tests: $(( ${total:-0} - failed )) passed, $failed failed"
exit "$status"
