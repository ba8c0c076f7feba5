#!/usr/bin/env python3
"""Writes man pages (roff, section 1) for backstop and each of its commands, from the same help
the binary prints: `backstop --experimental-dump-help` (swift-argument-parser's JSON dump).

    scripts/gen-man.py BINARY OUTDIR      # OUTDIR/backstop.1, OUTDIR/backstop-list.1, ...
"""
import datetime, json, os, subprocess, sys


def esc(text):
    """Text as roff reads it: backslashes doubled, a leading dot or quote made literal."""
    lines = []
    for line in (text or "").replace("\\", "\\e").split("\n"):
        if line.startswith((".", "'")):
            line = "\\&" + line
        line = line.replace("-", "\\-")
        # troff reads ASCII: any other character as its Unicode escape (\[u2026] for an ellipsis).
        lines.append("".join(c if ord(c) < 128 else f"\\[u{ord(c):04X}]" for c in line))
    return "\n".join(lines)


def names(arg):
    out = []
    for n in arg.get("names", []):
        out.append(("-" if n["kind"] == "short" else "--") + n["name"])
    return out


def page(cmd, path, version, date):
    full = " ".join(path)
    title = "-".join(path).upper()
    out = [f'.TH {title} 1 "{date}" "backstop {version}" "Backstop Manual"', ".SH NAME",
           f"{esc('-'.join(path))} \\- {esc(cmd.get('abstract', ''))}", ".SH SYNOPSIS", f".B {esc(full)}"]
    args = [a for a in cmd.get("arguments", []) if a.get("shouldDisplay", True)]
    synopsis = []
    for a in args:
        value = a.get("valueName", "value")
        if a["kind"] == "positional":
            synopsis.append(f"<{value}>" + ("..." if a.get("isRepeating") else ""))
        else:
            flag = (names(a) or ["?"])[-1] + ("" if a["kind"] == "flag" else f" <{value}>")
            synopsis.append(f"[{flag}]" if a.get("isOptional") else flag)
    if cmd.get("subcommands"):
        synopsis.append("<subcommand>")
    out.append(esc(" ".join(synopsis)))
    if cmd.get("discussion"):
        out += [".SH DESCRIPTION", ".nf", esc(cmd["discussion"]), ".fi"]
    if args:
        out.append(".SH OPTIONS")
        for a in args:
            value = a.get("valueName", "value")
            label = ", ".join(names(a)) if a["kind"] != "positional" else f"<{value}>"
            if a["kind"] == "option":
                label += f" <{value}>"
            out += [".TP", f".B {esc(label)}", esc(a.get("abstract", "")) + (f" (default: {esc(a['defaultValue'])})" if a.get("defaultValue") else "")]
    subs = [s for s in cmd.get("subcommands", []) if s.get("shouldDisplay", True) and s["commandName"] != "help"]
    if subs:
        out.append(".SH COMMANDS")
        for s in subs:
            out += [".TP", f".B {esc(s['commandName'])}", esc(s.get("abstract", "")) + f" See \\fB{'-'.join(path + [s['commandName']])}\\fR(1)."]
    if len(path) > 1:
        out += [".SH SEE ALSO", f"\\fB{'-'.join(path[:-1])}\\fR(1)"]
    return "\n".join(out) + "\n"


def walk(cmd, path, outdir, version, date, written):
    name = "-".join(path) + ".1"
    with open(os.path.join(outdir, name), "w") as f:
        f.write(page(cmd, path, version, date))
    written.append(name)
    for s in cmd.get("subcommands", []):
        if s.get("shouldDisplay", True) and s["commandName"] != "help":
            walk(s, path + [s["commandName"]], outdir, version, date, written)


def main():
    binary, outdir = sys.argv[1], sys.argv[2]
    info = json.loads(subprocess.run([binary, "--experimental-dump-help"], check=True, capture_output=True, text=True).stdout)
    version = json.loads(subprocess.run([binary, "--version", "--json"], check=True, capture_output=True, text=True).stdout)["version"]
    date = datetime.date.today().isoformat()
    os.makedirs(outdir, exist_ok=True)
    written = []
    walk(info["command"], ["backstop"], outdir, version, date, written)
    print(" ".join(written))


if __name__ == "__main__":
    main()
