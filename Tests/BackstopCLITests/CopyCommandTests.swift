import Foundation
import Testing

/// `backstop copy` and the policy's `copy-to:`, end to end with the built binary.
@Suite struct CopyCommandTests {
    /// Two repositories `a` and `b`; in `a`: two snapshots of `data` and one of a dump, an event
    /// and a full verification of each.
    func twoRepositories(_ s: Scratch) throws -> (a: String, b: String) {
        let a = s.sub("a"), b = s.sub("b")
        for r in [a, b] { #expect(try CLI.run(["init", "--repo", r]).status == 0) }
        try s.write("data/ibdata1", String(repeating: "pages of rows\n", count: 40_000))
        try s.write("data/app/t.ibd", "rows\n")
        try s.write("dump.sql", sampleDump())
        #expect(try CLI.run(["backup", s.sub("data"), "--source", "datadir", "--time", "2026-11-01T02:00:00Z", "--repo", a]).status == 0)
        try s.write("data/app/t.ibd", "rows, changed\n")
        #expect(try CLI.run(["backup", s.sub("data"), "--source", "datadir", "--time", "2026-11-02T02:00:00Z", "--repo", a]).status == 0)
        #expect(try CLI.run(["backup", "--stdin", "--source", "dump", "--time", "2026-11-02T02:05:00Z", "--repo", a], stdinFile: s.sub("dump.sql")).status == 0)
        #expect(try CLI.run(["event", "add", "upgrade", "--at", "2026-11-02T01:00:00Z", "--repo", a]).status == 0)
        #expect(try CLI.run(["verify", "--all", "--repo", a]).status == 0)
        return (a, b)
    }

    /// IDs of the committed snapshots in local repository `repo` (folders with a manifest).
    func committed(_ repo: String) -> [String] {
        let ids = (try? FileManager.default.contentsOfDirectory(atPath: repo + "/snapshots")) ?? []
        return ids.filter { FileManager.default.fileExists(atPath: "\(repo)/snapshots/\($0)/manifest.json") }.sorted()
    }

    // Proves: --dry-run writes nothing and predicts the copy; the copy restores byte-identical
    // and verifies in the target, with the event and verification history; a second copy sends
    // nothing.
    @Test func copyDryRunThenCopyThenRestoreFromTheTarget() throws {
        let s = Scratch()
        let (a, b) = try twoRepositories(s)
        let sourceIDs = committed(a)
        #expect(sourceIDs.count == 3)

        let dry = try CLI.run(["copy", "--from", a, "--to", b, "--all", "--dry-run", "--json"])
        #expect(dry.status == 0, "\(dry.stderr)")
        let plan = try #require(try json(dry.stdout) as? [String: Any])
        #expect(plan["dryRun"] as? Bool == true)
        #expect((plan["copied"] as? [String])?.sorted() == sourceIDs)
        #expect(committed(b).isEmpty)
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: b + "/frames")) ?? []).isEmpty, "a dry run stores no frame")

        let copy = try CLI.run(["copy", "--from", a, "--to", b, "--all", "--json"])
        #expect(copy.status == 0, "\(copy.stderr)")
        let report = try #require(try json(copy.stdout) as? [String: Any])
        #expect((report["copied"] as? [String])?.sorted() == sourceIDs)
        #expect((report["framesSent"] as? Int).map { $0 > 0 } == true && report["framesSent"] as? Int == plan["framesSent"] as? Int)
        #expect(report["eventsCopied"] as? Int == 1 && report["verificationsCopied"] as? Int == 3)
        #expect(committed(b) == sourceIDs)

        let restored = try CLI.run(["restore", "--latest", "--source", "datadir", "--to", s.sub("restored"), "--repo", b])
        #expect(restored.status == 0, "\(restored.stderr)")
        #expect(try sh("diff -r '\(s.sub("data"))' '\(s.sub("restored/data"))' && echo same").contains("same"))
        let dump = try CLI.run(["restore", "--latest", "--source", "dump", "--to", s.sub("dump-restored.sql"), "--repo", b])
        #expect(dump.status == 0, "\(dump.stderr)")
        #expect(try sh("cmp '\(s.sub("dump.sql"))' '\(s.sub("dump-restored.sql"))' && echo same").contains("same"))
        #expect(try CLI.run(["verify", "--all", "--repo", b]).status == 0)
        #expect(try CLI.run(["event", "list", "--repo", b]).stdout.contains("upgrade"))
        // The event came along: selection by it works in the target.
        let before = try CLI.run(["select", "--before", "upgrade", "--source", "datadir", "--repo", b])
        #expect(before.status == 0 && before.stdout.contains(sourceIDs[0]), "\(before.stdout)\(before.stderr)")

        let again = try CLI.run(["copy", "--from", a, "--to", b, "--all"])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stdout.contains("copied 0 snapshots") && again.stdout.contains("skipped 3") && again.stdout.contains("frames: 0 sent"), "\(again.stdout)")
    }

    // Proves: the selection flags choose what is copied, and usage mistakes or an empty match
    // are refused with their exit codes, copying nothing.
    @Test func selectionFlagsChooseWhatIsCopied() throws {
        let s = Scratch()
        let (a, b) = try twoRepositories(s)
        let ids = committed(a)
        let none = try CLI.run(["copy", "--from", a, "--to", b, "--all", "--source", "nope"])
        #expect(none.status == 66 && none.stderr.contains("no snapshot"), "\(none.stderr)")
        #expect(try CLI.run(["copy", "--from", a, "--to", b]).status == 64)
        #expect(try CLI.run(["copy", "--from", a, "--to", b, "--after", "2026-11-01T00:00:00Z"]).status == 64)
        #expect(try CLI.run(["copy", "--from", a, "--to", b, "--all", "--latest"]).status == 64)
        #expect(try CLI.run(["copy", "--from", a, "--to", a, "--all"]).status == 64)
        #expect(try CLI.run(["copy", "--from", a, "--to", b, ids[0], "--source", "dump"]).status == 64, "a filter is never ignored")
        #expect(committed(b).isEmpty)

        // One snapshot, chosen as restore would: the last datadir snapshot before the event.
        let one = try CLI.run(["copy", "--from", a, "--to", b, "--before", "upgrade", "--source", "datadir", "--json"])
        #expect(one.status == 0, "\(one.stderr)")
        #expect(committed(b) == [ids[0]])
        // A set: every snapshot completed after a time, of one source.
        let set = try CLI.run(["copy", "--from", a, "--to", b, "--all", "--source", "dump", "--after", "2026-11-02T00:00:00Z"])
        #expect(set.status == 0, "\(set.stderr)")
        #expect(committed(b).count == 2 && committed(b).contains(ids[0]))
        // By ID prefix.
        let byID = try CLI.run(["copy", "--from", a, "--to", b, String(ids[1].suffix(8))])
        #expect(byID.status == 0, "\(byID.stderr)")
        #expect(committed(b) == ids)
    }

    // Proves: a corrupt frame in the source ends the copy with 65, naming the frame, and the
    // target shows no part of that snapshot.
    @Test func aCorruptSourceFrameIs65AndCommitsNothing() throws {
        let s = Scratch()
        let (a, b) = try twoRepositories(s)
        let ids = committed(a)
        let frame = try ownFrame(a, ids[1], notIn: [ids[0], ids[2]])
        try flipFrameByte(a, frame, at: Int(frame.compressedSize / 2))
        let r = try CLI.run(["copy", "--from", a, "--to", b, ids[1]])
        #expect(r.status == 65, "\(r.stderr)")
        #expect(r.stderr.contains(frame.key) && r.stderr.contains(ids[1]), "\(r.stderr)")
        #expect(committed(b).isEmpty)
        #expect(!FileManager.default.fileExists(atPath: b + "/" + frame.key))
        #expect(try CLI.run(["verify", "--all", "--repo", b]).status == 0)
    }

    // Proves: a target whose writer lock is held is 75, and nothing is copied.
    @Test func aHeldTargetLockIs75() throws {
        let s = Scratch()
        let (a, b) = try twoRepositories(s)
        let holder = try CLI.startHoldingLock(["backup", "--command", "sleep 4; cat '\(s.sub("dump.sql"))'", "--source", "slow", "--repo", b], repo: b)
        defer { holder.waitUntilExit() }
        let r = try CLI.run(["copy", "--from", a, "--to", b, "--all", "--json"])
        #expect(r.status == 75, "\(r.stderr)")
        let failure = try #require(try json(r.stdout) as? [String: Any])
        #expect(failure["exitCode"] as? Int == 75)
        #expect(committed(b).isEmpty)
    }

    /// A policy for repository `a` that copies to `copyTo`.
    func policy(_ s: Scratch, copyTo: String) throws -> String {
        try s.write("data/ibdata1", "pages\n")
        try s.write("dump.sql", sampleDump())
        try s.write("policy.yaml", """
            repository: a
            copy-to: \(copyTo)
            jobs:
              - source: datadir
                kind: filesystem
                paths: [\(s.sub("data"))]
              - source: dump
                kind: logical
                command: cat \(s.sub("dump.sql"))
                format: mysqldump
            verify:
              after-backup: full
            """)
        return s.sub("policy.yaml")
    }

    // Proves: `run` with `copy-to:` copies the snapshots it took (and their verification) to
    // the other repository; a failed copy is reported and is the run's exit status, after the
    // rest of the run was done.
    @Test func runCopiesWhatItTookToCopyTo() throws {
        let s = Scratch()
        for r in ["a", "b"] { #expect(try CLI.run(["init", "--repo", s.sub(r)]).status == 0) }
        let p = try policy(s, copyTo: "[b]")
        let r = try CLI.run(["run", p, "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let taken = committed(s.sub("a"))
        #expect(taken.count == 2)
        #expect(committed(s.sub("b")) == taken)
        let summary = try #require(try json(r.stdout) as? [String: Any])
        let copies = try #require(summary["copies"] as? [[String: Any]])
        #expect(copies.count == 1 && copies.first?["exitCode"] as? Int == 0)
        #expect(((copies.first?["report"] as? [String: Any])?["verificationsCopied"] as? Int) == 2)
        #expect(try CLI.run(["verify", "--all", "--repo", s.sub("b")]).status == 0)

        // A copy-to repository that does not exist: the jobs still ran, the run says why it failed.
        let broken = try policy(s, copyTo: s.sub("missing"))
        let failed = try CLI.run(["run", broken])
        #expect(failed.status == 1, "\(failed.stderr)")
        #expect(failed.stderr.contains("copy to \(s.sub("missing")) failed") && failed.stderr.contains("not a Backstop repository"), "\(failed.stderr)")
        #expect(failed.stdout.contains("FAILED") && failed.stdout.contains(s.sub("missing")), "\(failed.stdout)")
        #expect(committed(s.sub("a")).count == 4, "the jobs ran before the copy")
    }
}
