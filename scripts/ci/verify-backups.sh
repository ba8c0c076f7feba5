#!/usr/bin/env bash
# CI job: fully verify every snapshot of a repository and fail the build on any corruption.
# Writes a JUnit report (default backstop-verify.xml) that CI systems show as test results.
#
#   scripts/ci/verify-backups.sh REPO [JUNIT_FILE]
#
# Exit: 0 all snapshots passed; 65 one or more are corrupt (the report names snapshot, file and
# frame, entry or section); other codes as `backstop --help` lists them.
set -euo pipefail
repo="${1:?usage: verify-backups.sh REPO [JUNIT_FILE]}"
junit="${2:-backstop-verify.xml}"
backstop="${BACKSTOP:-backstop}"
if ! command -v "$backstop" >/dev/null; then
    here="$(cd "$(dirname "$0")/../.." && pwd)"
    swift build -c release --product backstop --package-path "$here" >&2
    backstop="$(swift build -c release --show-bin-path --package-path "$here")/backstop"
fi
exec "$backstop" verify --all --repo "$repo" --junit "$junit"
