import Foundation
import Testing

/// Issue #16's small things, each as a user meets it: help text, tables, counts, log lines.
@Suite struct OperatorComfortTests {
    func initRepo(_ s: Scratch) throws {
        let r = try CLI.run(["init", "--repo", s.repo])
        #expect(r.status == 0, "\(r.stderr)")
    }

    /// Proves: `list` has a RUN column with each snapshot's run ID (what `restore --run` takes and
    /// what its error tells people to look up), "-" for a snapshot taken outside a run.
    @Test func listShowsTheRunOfEachSnapshot() throws {
        let s = Scratch()
        try initRepo(s)
        try s.write("data/a.txt", "alpha\n")
        try s.write("policy.yaml", """
            repository: \(s.repo)
            jobs:
              - source: datadir
                kind: filesystem
                paths: [\(s.sub("data"))]
            """)
        let run = try CLI.run(["run", s.sub("policy.yaml"), "--json"])
        #expect(run.status == 0, "\(run.stderr)")
        let runID = try #require((try json(run.stdout) as? [String: Any])?["runID"] as? String)
        #expect(try CLI.run(["backup", s.sub("data"), "--source", "manual", "--repo", s.repo]).status == 0)
        let list = try CLI.run(["list", "--repo", s.repo])
        let lines = list.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first?.contains(" RUN ") == true, "\(list.stdout)")
        let datadir = try #require(lines.first { $0.contains("datadir") })
        #expect(datadir.contains(runID), "\(list.stdout)")
        let manual = try #require(lines.first { $0.contains("manual") })
        #expect(!manual.contains(runID))
        let bad = try CLI.run(["restore", "--run", "nope", "--to", s.sub("x"), "--repo", s.repo])
        #expect(bad.status == 64 && bad.stderr.contains("RUN column"), "\(bad.stderr)")
    }

    /// Proves: `policy check --json` gives the jobs as an array of objects, not a joined string.
    @Test func policyCheckGivesJobsAsAnArray() throws {
        let s = Scratch()
        try s.write("policy.yaml", """
            repository: \(s.repo)
            jobs:
              - source: datadir
                kind: filesystem
                paths: [/srv/data]
              - source: dump
                kind: logical
                command: cat /dev/null
            """)
        let r = try CLI.run(["policy", "check", s.sub("policy.yaml"), "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let jobs = try #require((try json(r.stdout) as? [String: Any])?["jobs"] as? [[String: Any]], "\(r.stdout)")
        #expect(jobs.map { $0["source"] as? String } == ["datadir", "dump"])
        #expect(jobs.map { $0["kind"] as? String } == ["filesystem", "logical"])
    }

    /// Proves: a default is said once in help ("(default: 0s)"), not "(default 0s). (default: 0s)".
    @Test func aDefaultIsSaidOnce() throws {
        for command in [["backup"], ["migrate"], ["catalog", "rebuild"]] {
            let help = try CLI.run(command + ["--help"], environment: ["COLUMNS": "200"])
            #expect(help.status == 0)
            #expect(help.stdout.components(separatedBy: "(default: 0s)").count == 2, "\(command): \(help.stdout)")
            #expect(!help.stdout.contains("(default 0s)"), "\(command): \(help.stdout)")
        }
    }

    /// Every command's path (`backup`, `event add`, …), from `--help`'s SUBCOMMANDS sections.
    func commands() throws -> [[String]] {
        func subcommands(_ path: [String]) throws -> [String] {
            let help = try CLI.run(path + ["--help"], environment: ["COLUMNS": "200"]).stdout
            guard let section = help.components(separatedBy: "SUBCOMMANDS:\n").dropFirst().first else { return [] }
            return section.split(separator: "\n", omittingEmptySubsequences: false).prefix { $0.hasPrefix("  ") }
                .compactMap { $0.split(separator: " ").first.map(String.init) }
                .filter { $0 != "help" }
        }
        var all: [[String]] = []
        for c in try subcommands([]) {
            let nested = try subcommands([c])
            all += nested.isEmpty ? [[c]] : nested.map { [c, $0] }
        }
        return all
    }

    /// Proves: on an 80-column terminal, every example line in every command's help is printed
    /// whole, as on a wide one: no command is broken in the middle by re-wrapping.
    @Test func helpExamplesAreNotRewrapped() throws {
        let all = try commands()
        #expect(all.count >= 18, "\(all)")
        for path in all {
            let wide = try CLI.run(path + ["--help"], environment: ["COLUMNS": "400"]).stdout
            let narrow = try CLI.run(path + ["--help"], environment: ["COLUMNS": "80"]).stdout
            let narrowLines = Set(narrow.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) })
            let examples = wide.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.hasPrefix("USAGE:") && ($0.hasPrefix("Example") || $0.hasPrefix("backstop ") || $0.contains(": backstop ") || $0.contains(" * * * ")) }
            #expect(!examples.isEmpty, "\(path) has an example: \(wide.prefix(200).debugDescription)")
            for line in examples {
                #expect(narrowLines.contains(line), "\(path.joined(separator: " ")): re-wrapped at 80 columns: \(line)")
            }
        }
    }

    /// Proves: counts of one are singular ("1 entry", "1 frame") in what backup, restore and
    /// export print.
    @Test func oneIsSingular() throws {
        let s = Scratch()
        try initRepo(s)
        try s.write("one.txt", "alpha\n")
        let backup = try CLI.run(["backup", s.sub("one.txt"), "--source", "one", "--repo", s.repo])
        #expect(backup.status == 0, "\(backup.stderr)")
        #expect(backup.stderr.contains(" 1 entry, 0 warnings") && !backup.stderr.contains("entries"), "\(backup.stderr)")
        let id = backup.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let restore = try CLI.run(["restore", id, "--to", s.sub("out"), "--repo", s.repo])
        #expect(restore.status == 0, "\(restore.stderr)")
        #expect(restore.stderr.contains(": 1 entry, ") && !restore.stderr.contains("1 entries"), "\(restore.stderr)")
        // A small raw stream is one frame.
        let raw = try CLI.run(["backup", "--stdin", "--format", "raw", "--source", "raw", "--repo", s.repo], stdinFile: s.sub("one.txt"))
        #expect(raw.status == 0, "\(raw.stderr)")
        let export = try CLI.run(["export", "--latest", "--source", "raw", "--to", s.sub("one.zst"), "--repo", s.repo])
        #expect(export.status == 0, "\(export.stderr)")
        #expect(export.stdout.contains(": 1 frame, ") && !export.stdout.contains("1 frames"), "\(export.stdout)")
    }

    /// The column at which `needle` starts in `line`, in terminal columns (counted by hand
    /// here: CJK ideographs and katakana take 2, a combining mark 0, ASCII 1).
    func column(of needle: String, in line: String) -> Int? {
        guard let range = line.range(of: needle) else { return nil }
        return line[..<range.lowerBound].unicodeScalars.reduce(0) { n, u in
            if (0x3040...0x9FFF).contains(u.value) { return n + 2 }
            if (0x0300...0x036F).contains(u.value) { return n + 0 }
            return n + 1
        }
    }

    /// Proves: table columns line up on a terminal when names hold wide (CJK) characters or
    /// combining marks: padding counts terminal columns, not characters or scalars.
    @Test func tableColumnsAlignByDisplayWidth() throws {
        let s = Scratch()
        try initRepo(s)
        try s.write("data/a.txt", "alpha\n")
        // 12 columns each: six katakana; twelve ASCII letters; twelve letters with a combining acute.
        let sources = ["データベース", "abcdefghijkl", String(repeating: "e\u{301}", count: 12)]
        for (i, source) in sources.enumerated() {
            let r = try CLI.run(["backup", s.sub("data"), "--source", source, "--time", "2024-03-2\(i + 1)T22:00:00Z", "--repo", s.repo])
            #expect(r.status == 0, "\(r.stderr)")
        }
        let list = try CLI.run(["list", "--repo", s.repo])
        let lines = list.stdout.split(separator: "\n").map(String.init)
        var columns: [Int] = []
        for (i, source) in sources.enumerated() {
            let line = try #require(lines.first { $0.contains(source) }, "\(list.stdout)")
            columns.append(try #require(column(of: "2024-03-2\(i + 1)T22:00:00Z", in: line)))
        }
        #expect(Set(columns).count == 1, "COMPLETED starts at columns \(columns):\n\(list.stdout)")
    }

    /// Proves: every command logs in one format: `run`'s swift-log lines and `list`'s own
    /// warnings alike are `TIMESTAMP backstop: LEVEL: message` when stderr is not a terminal.
    @Test func everyCommandLogsInOneFormat() throws {
        let s = Scratch()
        try initRepo(s)
        try s.write("data/a.txt", "alpha\n")
        try s.write("policy.yaml", """
            repository: \(s.repo)
            jobs:
              - source: datadir
                kind: filesystem
                paths: [\(s.sub("data"))]
            """)
        // A snapshot left out of the catalog: every command that opens the repository warns.
        let b = try CLI.run(["backup", s.sub("data"), "--source", "t", "--repo", s.repo])
        let id = b.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try "{\n".write(toFile: s.repo + "/snapshots/\(id)/manifest.json", atomically: false, encoding: .utf8)
        #expect(try CLI.run(["catalog", "rebuild", "--repo", s.repo]).status == 0)
        let format = #/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ backstop: (info|warning|error): \S/#
        let list = try CLI.run(["list", "--repo", s.repo])
        let run = try CLI.run(["run", s.sub("policy.yaml"), "--verbose"])
        let missing = try CLI.run(["show", "nosuchsnapshot", "--repo", s.repo])
        for (name, r) in [("list", list), ("run", run), ("show", missing)] {
            let lines = r.stderr.split(separator: "\n").map(String.init)
            #expect(!lines.isEmpty, "\(name) logged something")
            for line in lines {
                #expect(line.firstMatch(of: format) != nil, "\(name): \(line)")
            }
        }
        #expect(list.stderr.contains("backstop: warning: snapshots/\(id) is left out"), "\(list.stderr)")
        #expect(run.stderr.contains("backstop: warning: snapshots/\(id) is left out"), "\(run.stderr)")
        #expect(run.stderr.contains("backstop: info: datadir: snapshot"), "\(run.stderr)")
    }
}
