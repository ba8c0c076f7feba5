#!/usr/bin/env bash
# Installs backstop under a prefix: the binary and the cron wrapper, shell completions, man
# pages, the cron and systemd examples and the example policies. Safe to run again (files are
# replaced).
#
#   scripts/install.sh PREFIX                  # builds (swift build -c release), then installs
#   scripts/install.sh PREFIX --binary PATH    # installs an already built binary
#
# The commit `backstop --version` reports is `git describe` of this checkout at install time,
# written to PREFIX/share/backstop/COMMIT; from a tarball (no git) it is "unknown".
#
#   PREFIX/bin/backstop, PREFIX/bin/backstop-cron
#   PREFIX/share/bash-completion/completions/backstop
#   PREFIX/share/zsh/site-functions/_backstop
#   PREFIX/share/fish/vendor_completions.d/backstop.fish
#   PREFIX/share/man/man1/backstop.1, backstop-COMMAND.1 ...
#   PREFIX/share/backstop/{COMMIT,crontab.example,policies/*.yaml}
#   PREFIX/lib/systemd/system/backstop-nightly.{service,timer}
set -euo pipefail

prefix="${1:?usage: scripts/install.sh PREFIX [--binary PATH]}"
shift
binary=""
while (($#)); do
    case "$1" in
        --binary) binary="${2:?--binary needs a path}"; shift 2 ;;
        *) echo "install: unknown option $1 (use --binary PATH)" >&2; exit 64 ;;
    esac
done
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ -z "$binary" ]; then
    (cd "$root" && swift build -c release --product backstop)
    binary="$root/.build/release/backstop"
fi
[ -x "$binary" ] || { echo "install: $binary is not an executable; build it or pass --binary PATH" >&2; exit 66; }

share="$prefix/share"
install -d "$prefix/bin" "$share/backstop/policies" "$share/man/man1" "$share/bash-completion/completions" \
    "$share/zsh/site-functions" "$share/fish/vendor_completions.d" "$prefix/lib/systemd/system"
install -m 0755 "$binary" "$prefix/bin/backstop"
install -m 0755 "$root/scripts/backstop-cron" "$prefix/bin/backstop-cron"

commit="$(git -C "$root" describe --always --dirty --tags 2>/dev/null || true)"
echo "${commit:-unknown}" > "$share/backstop/COMMIT"

bin="$prefix/bin/backstop"
"$bin" --generate-completion-script bash > "$share/bash-completion/completions/backstop"
"$bin" --generate-completion-script zsh > "$share/zsh/site-functions/_backstop"
"$bin" --generate-completion-script fish > "$share/fish/vendor_completions.d/backstop.fish"
python3 "$root/scripts/gen-man.py" "$bin" "$share/man/man1" >/dev/null

install -m 0644 "$root/scripts/crontab.example" "$share/backstop/crontab.example"
install -m 0644 "$root"/Policies/*.yaml "$share/backstop/policies/"
for unit in "$root"/scripts/systemd/backstop-nightly.*; do
    sed "s|/usr/local/bin/|$prefix/bin/|g" "$unit" > "$prefix/lib/systemd/system/$(basename "$unit")"
done
echo "installed backstop $("$bin" --version | head -n 1 | cut -d' ' -f2) (commit $(cat "$share/backstop/COMMIT")) under $prefix"
