#!/usr/bin/env bash
# Installs what the tests need, builds, and runs the whole test suite.
# The tests start their own MariaDB and PostgreSQL servers in private temporary folders (Unix
# sockets only) and stop them when they finish; this script removes anything left behind.
#
#   scripts/test.sh                 the whole suite; a server that cannot start fails its tests
#   scripts/test.sh --fast          the fast tier: every test that needs no database server (the
#                                   scanner, verifier and logical-restore tests read the dumps in
#                                   Tests/BackstopTests/Fixtures/); says how many were left out
#   scripts/test.sh --filter NAME   only tests whose name matches (swift test --filter)
#
# --fast sets BACKSTOP_FAST=1: tests marked `.tags(.liveServer), .needsLiveServer` are skipped
# with that reason (Swift 6.3's `swift test` cannot filter by tag), and a test that starts a
# server without those marks fails.
set -euo pipefail
cd "$(dirname "$0")/.."

fast=0
if [ "${1:-}" = --fast ]; then fast=1; shift; export BACKSTOP_FAST=1; else unset BACKSTOP_FAST; fi

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
# Skipped tests (a skipped suite prints each of its tests too; a parameterized test counts once,
# as in the total).
skipped=$(grep -cE '^[^ ]+ Test .* skipped' "$log" || true)
if [ "$fast" = 1 ]; then
    left=$(grep -E '^[^ ]+ Test .* skipped: .*fast tier' "$log" | sed -E 's/^[^ ]+ Test (.*) skipped: .*/\1/' | sort || true)
    echo "fast tier: $(printf '%s' "$left" | grep -c . || true) live-server tests were LEFT OUT (not run):"
    printf '%s\n' "$left" | sed 's/^/  - /'
    echo "run scripts/test.sh (no flag) for the whole suite, which runs them and fails if a server cannot start"
fi
echo "tests: $(( ${total:-0} - failed - skipped )) passed, $failed failed, $skipped skipped"
exit "$status"
