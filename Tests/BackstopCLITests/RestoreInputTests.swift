import Foundation
import Testing

/// Restores as an operator runs them at 3 a.m.: to a pipe, to odd targets, with flags that do
/// not fit the snapshot. Each test says what it proves.
@Suite struct RestoreInputTests {
    /// A mysqldump-format stream whose `shop` section spans several 2 MiB frames.
    static func bigDump(mark: String) -> String {
        var s = "-- MariaDB dump 10.19  Distrib 10.11.6-MariaDB\n--\n-- Host: localhost    Database: \n"
        s += "/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;\n\n"
        for (db, lines) in [("shop", 700), ("crm", 1)] {
            s += "--\n-- Current Database: `\(db)`\n--\n\nCREATE DATABASE `\(db)`;\nUSE `\(db)`;\n"
            for line in 0..<lines {
                s += "INSERT INTO t VALUES " + (0..<100).map { "(\(line * 100 + $0),'\(mark) \(db) row \(line * 100 + $0) of a big table')" }
                    .joined(separator: ",") + ";\n"
            }
        }
        s += "/*!40101 SET CHARACTER_SET_CLIENT=@OLD_CHARACTER_SET_CLIENT */;\n\n-- Dump completed on 2024-03-24 22:00:00\n"
        return s
    }

    func initRepo(_ s: Scratch) throws {
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
    }

    func backup(_ s: Scratch, _ text: String, source: String = "dump", time: String, format: [String] = []) throws -> String {
        try s.write("in.sql", text)
        let r = try CLI.run(["backup", "--stdin", "--source", source, "--time", time, "--repo", s.repo] + format, stdinFile: s.sub("in.sql"))
        #expect(r.status == 0, "\(r.stderr)")
        return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func manifest(_ s: Scratch, _ id: String) throws -> [String: Any] {
        try #require(try json(try CLI.run(["show", id, "--json", "--repo", s.repo]).stdout) as? [String: Any])
    }

    /// Flips a byte in the middle of the last stored frame that holds part of section `name`
    /// (so the frames before it are intact). Returns that frame's index.
    @discardableResult
    func corruptLastFrame(of name: String, _ s: Scratch, _ id: String) throws -> Int {
        let m = try manifest(s, id)
        let sections = try #require(m["sections"] as? [[String: Any]])
        let section = try #require(sections.first { $0["name"] as? String == name })
        let start = (section["offset"] as! NSNumber).int64Value, end = start + (section["length"] as! NSNumber).int64Value
        let frames = try storedFrames(s.repo, id)
        let overlapping = frames.indices.filter { i in
            frames[i].uncompressedOffset < end && frames[i].uncompressedOffset + frames[i].uncompressedSize > start
        }
        #expect(overlapping.count >= 2, "the section spans several frames")
        let victim = try #require(overlapping.last)
        // Format 2: the frame's own object, changed in place.
        try flipFrameByte(s.repo, frames[victim], at: Int(frames[victim].compressedSize / 2), mask: 0x5A)
        return victim
    }

    /// Runs `backstop ARGS | head -c 10 >/dev/null` and returns backstop's exit status and stderr.
    func runIntoHead(_ arguments: [String], _ s: Scratch) throws -> (status: Int32, stderr: String) {
        let quoted = ([CLI.binary] + arguments).map { "'\($0)'" }.joined(separator: " ")
        let r = try CLI.run([], prefix: ["/bin/bash", "-c", "\(quoted) 2>'\(s.sub("err.txt"))' | head -c 10 >/dev/null; exit ${PIPESTATUS[0]}", "--"])
        return (r.status, (try? String(contentsOfFile: s.sub("err.txt"), encoding: .utf8)) ?? "")
    }

    // Item 13: nothing reaches `| mariadb` before it is verified; a fallback to `-` writes one
    // whole stream, never a partial one followed by another.
    @Test func aCorruptFrameMidSectionWritesNothingToStdoutAndFallbackWritesOneStream() throws {
        let s = Scratch()
        try initRepo(s)
        let older = Self.bigDump(mark: "old"), newer = Self.bigDump(mark: "new")
        _ = try backup(s, older, time: "2024-03-01T02:00:00Z")
        let newID = try backup(s, newer, time: "2024-03-02T02:00:00Z")
        try corruptLastFrame(of: "shop", s, newID)

        let fallback = try CLI.run(["restore", "--latest", "--source", "dump", "--fallback", "--to", "-", "--repo", s.repo])
        #expect(fallback.status == 0, "\(fallback.stderr)")
        #expect(fallback.stderr.contains("falling back"))
        #expect(fallback.stdout == older, "exactly the older stream, with nothing of the corrupt one before it")

        let one = try CLI.run(["restore", newID, "--database", "shop", "--to", "-", "--repo", s.repo])
        #expect(one.status == 65, "\(one.stderr)")
        #expect(one.stdout.isEmpty, "no byte of shop's SQL went out: \(one.stdout.utf8.count) bytes did")
        let whole = try CLI.run(["restore", newID, "--to", "-", "--repo", s.repo])
        #expect(whole.status == 65)
        #expect(whole.stdout.isEmpty, "\(whole.stdout.utf8.count) bytes went out")
    }

    // Item 1: a reader that goes away (a broken pipe) is the target's failure: 74, and the good
    // snapshot stays selectable.
    @Test func aBrokenPipeIsExit74AndRecordsNothingAgainstTheSnapshot() throws {
        let s = Scratch()
        try initRepo(s)
        let id = try backup(s, Self.bigDump(mark: "x"), time: "2024-03-01T02:00:00Z")
        for extra in [["--database", "shop"], []] {
            let r = try runIntoHead(["restore", "--latest", "--source", "dump", "--to", "-", "--repo", s.repo] + extra, s)
            #expect(r.status == 74, "\(extra): \(r.stderr)")
            #expect(r.stderr.contains("standard output") && !r.stderr.contains("corrupt"), "\(r.stderr)")
        }
        let sel = try CLI.run(["select", "--latest", "--source", "dump", "--repo", s.repo])
        #expect(sel.status == 0, "\(sel.stderr)")
        #expect(sel.stdout == id + "\n", "the intact snapshot is still chosen")
        let list = try CLI.run(["list", "--json", "--repo", s.repo])
        #expect(!list.stdout.contains("\"passed\":false") && !list.stdout.contains("\"passed\" : false"), "\(list.stdout)")
    }

    // Item 4: a FIFO, a device, or a symlink to one is never replaced by a regular file.
    @Test func aFIFOOrDeviceTargetIsRefused() throws {
        let s = Scratch()
        try initRepo(s)
        let id = try backup(s, sampleDump(), time: "2024-03-01T02:00:00Z")
        try sh("mkfifo '\(s.sub("p"))' && ln -s /dev/null '\(s.sub("null-link"))'")
        for (target, force) in [(s.sub("p"), false), (s.sub("p"), true), (s.sub("null-link"), true)] {
            let r = try CLI.run(["restore", id, "--to", target, "--repo", s.repo] + (force ? ["--force"] : []))
            #expect(r.status == 64, "\(target) \(force): \(r.stderr)")
            #expect(r.stderr.contains(target) && (r.stderr.contains("FIFO") || r.stderr.contains("device")), "\(r.stderr)")
        }
        var st = stat()
        #expect(lstat(s.sub("p"), &st) == 0 && (st.st_mode & S_IFMT) == S_IFIFO, "still a FIFO")
        #expect(lstat(s.sub("null-link"), &st) == 0 && (st.st_mode & S_IFMT) == S_IFLNK, "still the symlink")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: s.path).filter { $0.contains("before-restore") || $0.contains("backstop-restore") }
        #expect(leftovers.isEmpty, "\(leftovers)")
    }

    // Item 5: --force moves an existing file or symlink aside to TARGET.before-restore-TIME;
    // nothing is deleted, and a second forced restore never overwrites the first aside.
    @Test func forceMovesAFileOrSymlinkAsideAndDeletesNothing() throws {
        let s = Scratch()
        try initRepo(s)
        let id = try backup(s, sampleDump(), time: "2024-03-01T02:00:00Z")
        try s.write("app.sql", "yesterday's hand-edited copy\n")
        let refused = try CLI.run(["restore", id, "--to", s.sub("app.sql"), "--repo", s.repo])
        #expect(refused.status == 73)
        for round in 1...2 {
            let r = try CLI.run(["restore", id, "--to", s.sub("app.sql"), "--force", "--repo", s.repo])
            #expect(r.status == 0, "round \(round): \(r.stderr)")
            #expect(r.stderr.contains("app.sql.before-restore-"), "the message names the aside: \(r.stderr)")
        }
        #expect(try String(contentsOfFile: s.sub("app.sql"), encoding: .utf8) == sampleDump())
        let asides = try FileManager.default.contentsOfDirectory(atPath: s.path).filter { $0.hasPrefix("app.sql.before-restore-") }.sorted()
        #expect(asides.count == 2, "each forced restore kept what it found: \(asides)")
        let name = try #require(asides.first)
        #expect(name.range(of: #"^app\.sql\.before-restore-\d{8}T\d{6}Z(-\d+)?$"#, options: .regularExpression) != nil, "\(name)")
        let kept = try asides.map { try String(contentsOfFile: s.sub($0), encoding: .utf8) }
        #expect(kept.contains("yesterday's hand-edited copy\n"))

        // A symlink is moved aside itself; what it points to is untouched.
        try s.write("real.sql", "the link's target\n")
        try sh("ln -s real.sql '\(s.sub("link.sql"))'")
        #expect(try CLI.run(["restore", id, "--to", s.sub("link.sql"), "--repo", s.repo]).status == 73)
        let r = try CLI.run(["restore", id, "--to", s.sub("link.sql"), "--force", "--repo", s.repo])
        #expect(r.status == 0, "\(r.stderr)")
        let linkAside = try #require(try FileManager.default.contentsOfDirectory(atPath: s.path).first { $0.hasPrefix("link.sql.before-restore-") })
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: s.sub(linkAside)) == "real.sql")
        #expect(try String(contentsOfFile: s.sub("real.sql"), encoding: .utf8) == "the link's target\n")
        var st = stat()
        #expect(lstat(s.sub("link.sql"), &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG)
        #expect(try String(contentsOfFile: s.sub("link.sql"), encoding: .utf8) == sampleDump())
    }

    // Item 6: flags that do not apply to the chosen snapshot's kind are usage errors naming the
    // flag and the kind, and nothing is written.
    @Test func flagsThatDoNotApplyAreUsageErrors() throws {
        let s = Scratch()
        try initRepo(s)
        try s.write("data/app07/t.ibd", "pages\n")
        let fs = try CLI.run(["backup", s.sub("data"), "--source", "datadir", "--repo", s.repo]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let logical = try backup(s, sampleDump(), time: "2024-03-01T02:00:00Z")
        let cases: [([String], String, String)] = [
            ([fs, "--database", "app07", "--to", s.sub("out1")], "--database", "filesystem"),
            ([fs, "--table", "orders", "--to", s.sub("out2")], "--table", "filesystem"),
            ([fs, "--to", "-"], "--to -", "filesystem"),
            ([logical, "--include", "*", "--to", s.sub("out3")], "--include", "logical"),
        ]
        for (arguments, flag, kind) in cases {
            // Run in the scratch folder: a `--to -` that is ignored would create ./-
            let r = try CLI.run(["restore"] + arguments + ["--repo", s.repo], prefix: ["/usr/bin/env", "-C", s.path])
            #expect(r.status == 64, "\(arguments): \(r.stderr)")
            #expect(r.stderr.contains(flag) && r.stderr.contains("\(kind) snapshot"), "\(r.stderr)")
            #expect(r.stdout.isEmpty)
        }
        let run = try CLI.run(["restore", "--run", "20240301T020000Z-00000000", "--to", "-", "--repo", s.repo], prefix: ["/usr/bin/env", "-C", s.path])
        #expect(run.status == 64 && run.stderr.contains("--to -"), "\(run.stderr)")
        let written = try FileManager.default.contentsOfDirectory(atPath: s.path).filter { $0.hasPrefix("out") || $0 == "-" || $0.contains("restore") }
        #expect(written.isEmpty, "\(written)")
    }

    /// Proves: `--run` takes a run ID (a snapshot ID's form); anything else is a usage error (64)
    /// naming the flag and where run IDs are shown, not "no snapshot" (66).
    @Test func restoreRunRefusesWhatIsNotARunID() throws {
        let s = Scratch()
        try initRepo(s)
        let r = try CLI.run(["restore", "--run", "last-night", "--to", s.sub("set"), "--repo", s.repo])
        #expect(r.status == 64, "\(r.stderr)")
        #expect(r.stderr.contains("--run last-night is not a run ID") && r.stderr.contains("backstop list` shows each snapshot's run ID in its RUN column"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: s.sub("set")))
    }

    // Item 9: without --source, a fallback stays within the first candidate's source and kind.
    @Test func fallbackStaysWithinTheSourceAndKind() throws {
        let s = Scratch()
        try initRepo(s)
        let oldDump = sampleDump(rows: 2)
        _ = try backup(s, oldDump, time: "2024-03-01T02:00:00Z")
        _ = try backup(s, "an unrelated raw stream\n", source: "blob", time: "2024-03-02T02:00:00Z", format: ["--format", "raw"])
        try s.write("tree/f", "a file\n")
        #expect(try CLI.run(["backup", s.sub("tree"), "--source", "dump", "--time", "2024-03-02T03:00:00Z", "--repo", s.repo]).status == 0)
        let bad = try backup(s, Self.bigDump(mark: "new"), time: "2024-03-03T02:00:00Z")
        try corruptLastFrame(of: "shop", s, bad)

        let r = try CLI.run(["restore", "--latest", "--fallback", "--to", s.sub("out.sql"), "--repo", s.repo])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try String(contentsOfFile: s.sub("out.sql"), encoding: .utf8) == oldDump, "the older mysql-dump, not the raw stream or the tree")

        let explain = try CLI.run(["select", "--latest", "--explain", "--repo", s.repo])
        #expect(explain.stderr.contains("--fallback stays within"), "\(explain.stderr)")
    }
}

extension RestoreInputTests {
    // Item 5 and 4 for filesystem snapshots: a file or symlink where the tree should go is moved
    // aside with --force (73 without), and a FIFO is refused.
    @Test func aTreeRestoredOverAFileOrSymlinkMovesItAside() throws {
        let s = Scratch()
        try initRepo(s)
        try s.write("data/ibdata1", "pages\n")
        let id = try CLI.run(["backup", s.sub("data"), "--source", "datadir", "--repo", s.repo]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try s.write("restored", "a file in the way\n")
        try s.write("elsewhere/keep", "x\n")
        try sh("ln -s elsewhere '\(s.sub("linked"))' && mkfifo '\(s.sub("fifo"))'")
        #expect(try CLI.run(["restore", id, "--to", s.sub("restored"), "--repo", s.repo]).status == 73)
        for (name, original) in [("restored", "file"), ("linked", "symlink")] {
            let r = try CLI.run(["restore", id, "--to", s.sub(name), "--force", "--repo", s.repo])
            #expect(r.status == 0, "\(name): \(r.stderr)")
            #expect(try String(contentsOfFile: s.sub(name + "/data/ibdata1"), encoding: .utf8) == "pages\n")
            let aside = try #require(try FileManager.default.contentsOfDirectory(atPath: s.path).first { $0.hasPrefix(name + ".before-restore-") },
                                     "the \(original) was moved aside")
            #expect(aside.range(of: #"^[a-z]+\.before-restore-\d{8}T\d{6}Z$"#, options: .regularExpression) != nil, "\(aside)")
        }
        #expect(try String(contentsOfFile: s.sub("elsewhere/keep"), encoding: .utf8) == "x\n", "the symlink's target is untouched")
        let fifo = try CLI.run(["restore", id, "--to", s.sub("fifo"), "--force", "--repo", s.repo])
        #expect(fifo.status == 64 && fifo.stderr.contains("FIFO"), "\(fifo.stderr)")
    }
}
