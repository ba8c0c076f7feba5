import Foundation
import Testing

/// `backstop backup --files-cache=on|off` end to end: the summary line says how many files were
/// reused unread, and a snapshot built from reused frames verifies and restores to the tree.
@Suite struct FilesCacheCommandTests {
    /// A tree with old mtimes, so that it is far from any parent's start (not racy).
    func tree(_ s: Scratch) throws -> String {
        for i in 0..<40 { try s.write("data/d\(i % 3)/f\(i).txt", String(repeating: "line \(i)\n", count: 50 + i * 7)) }
        try sh("head -c 3000000 /dev/urandom > '\(s.sub("data/big.bin"))'")
        try sh("ln -s big.bin '\(s.sub("data/link"))'")
        try sh("find '\(s.sub("data"))' -exec touch -h -d @1600000000 {} +")
        return s.sub("data")
    }

    /// Records snapshots an hour and two hours ahead: files written now are outside the parent's
    /// racy window (2 s before its start), and the second is the source's newest.
    func backup(_ s: Scratch, _ path: String, hoursAhead: Int, _ extra: [String] = []) throws -> (id: String, stderr: String) {
        let at = Int(Date().timeIntervalSince1970) + hoursAhead * 3600
        let r = try CLI.run(["backup", path, "--source", "data", "--repo", s.repo, "--time", "@\(at)"] + extra)
        #expect(r.status == 0, "\(r.stderr)")
        return (r.stdout.trimmingCharacters(in: .whitespacesAndNewlines), r.stderr)
    }

    @Test func aSecondBackupReusesUnchangedFilesAndRestoresTheTree() throws {
        let s = Scratch()
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        let data = try tree(s)
        let first = try backup(s, data, hoursAhead: 1)
        #expect(!first.stderr.contains("reused"), "no parent: \(first.stderr)")
        let second = try backup(s, data, hoursAhead: 2)
        #expect(second.stderr.contains(", 41 files reused unread (files cache)"), "\(second.stderr)")
        let show = try CLI.run(["show", second.id, "--json", "--repo", s.repo])
        let manifest = try #require(try json(show.stdout) as? [String: Any])
        let fields = (manifest["manifest"] as? [String: Any]) ?? manifest
        #expect(fields["filesReused"] as? Int == 41, "\(show.stdout)")

        let off = try backup(s, data, hoursAhead: 3, ["--files-cache=off"])
        #expect(!off.stderr.contains("reused"), "\(off.stderr)")

        let verify = try CLI.run(["verify", "--all", "--repo", s.repo])
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        for id in [second.id, off.id] {
            let target = s.sub("restored-\(id)")
            let restore = try CLI.run(["restore", id, "--to", target, "--repo", s.repo])
            #expect(restore.status == 0, "\(restore.stderr)")
            #expect(try sh("diff -r --no-dereference '\(data)' '\(target)/data' && echo same") == "same\n")
        }
    }

    /// The policy key: `files-cache: off` reads every file; the default reuses.
    @Test func aPolicyJobTurnsItOffWithTheKey() throws {
        let s = Scratch()
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        let data = try tree(s)
        let policy = s.sub("policy.yaml")
        try """
        repository: \(s.repo)
        jobs:
          - source: cached
            kind: filesystem
            paths: [\(data)]
          - source: uncached
            kind: filesystem
            paths: [\(data)]
            files-cache: off
        verify:
          after-backup: none
        """.write(toFile: policy, atomically: false, encoding: .utf8)
        let now = Int(Date().timeIntervalSince1970)
        var reused: [String: Int] = [:]
        for hours in [1, 2] {
            let r = try CLI.run(["run", policy, "--time", "@\(now + hours * 3600)", "--json"])
            #expect(r.status == 0, "\(r.stderr)")
            let summary = try #require(try json(r.stdout) as? [String: Any])
            for job in summary["jobs"] as? [[String: Any]] ?? [] {
                if let n = job["filesReused"] as? Int { reused[job["source"] as? String ?? "?"] = n }
            }
        }
        #expect(reused == ["cached": 41], "\(reused)")
    }

    @Test func theFlagIsCheckedAndRefusedForLogicalSnapshots() throws {
        let s = Scratch()
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        try s.write("data/a", "a\n")
        let bad = try CLI.run(["backup", s.sub("data"), "--source", "data", "--repo", s.repo, "--files-cache=sometimes"])
        #expect(bad.status == 64)
        #expect(bad.stderr.contains("--files-cache sometimes is unknown; use on or off"), "\(bad.stderr)")
        let logical = try CLI.run(["backup", "--command", "echo hi", "--format", "raw", "--source", "dump", "--repo", s.repo, "--files-cache=off"])
        #expect(logical.status == 64)
        #expect(logical.stderr.contains("--files-cache=off does not apply to a logical snapshot"), "\(logical.stderr)")
    }
}
