import Foundation
import Testing

/// Format 2 end to end: a frame object altered on disk (one bit) is reported by `verify` naming
/// the frame's key, and refused by `restore` with 65, the target untouched.
@Suite struct FrameIntegrityCommandTests {
    @Test func aFlippedBitInAFrameObjectIsReportedAndRefused() throws {
        let s = Scratch()
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        try sh("mkdir -p '\(s.sub("data"))' && head -c 3000000 /dev/urandom > '\(s.sub("data/blob"))' && echo hi > '\(s.sub("data/hi.txt"))'")
        let b = try CLI.run(["backup", s.sub("data"), "--source", "d", "--repo", s.repo])
        #expect(b.status == 0, "\(b.stderr)")
        let id = b.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try CLI.run(["verify", id, "--repo", s.repo]).status == 0)

        // The blob's second frame (its data, 1 MiB cuts), one bit in the middle of its object.
        let frames = try storedFrames(s.repo, id)
        let frame = try #require(frames.first { $0.compressedSize > 500_000 && $0.index > 0 })
        try flipFrameByte(s.repo, frame, at: Int(frame.compressedSize / 2), mask: 0x04)

        let v = try CLI.run(["verify", id, "--json", "--repo", s.repo])
        #expect(v.status == 65, "\(v.stderr)")
        #expect(v.stderr.contains(frame.key), "verify names the frame: \(v.stderr)")
        let report = try #require(try json(v.stdout) as? [String: Any])
        let problems = (report["results"] as? [[String: Any]])?.first?["problems"] as? [[String: Any]] ?? []
        #expect(problems.contains { ($0["message"] as? String)?.contains(frame.key) == true && $0["location"] as? String == "frame \(frame.index)" },
                "\(problems)")

        let target = s.sub("restored")
        let r = try CLI.run(["restore", id, "--to", target, "--repo", s.repo])
        #expect(r.status == 65, "\(r.stderr)")
        #expect(r.stderr.contains(frame.key), "restore names the frame: \(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: target), "the target is untouched")
        // An existing target keeps what it held.
        try s.write("kept/file.txt", "mine\n")
        let f = try CLI.run(["restore", id, "--to", s.sub("kept"), "--force", "--repo", s.repo])
        #expect(f.status == 65, "\(f.stderr)")
        #expect(try sh("ls -A '\(s.sub("kept"))'") == "file.txt\n")
        #expect(try String(contentsOfFile: s.sub("kept/file.txt"), encoding: .utf8) == "mine\n")
    }

    /// A frame shared by two snapshots (an unchanged file backed up twice is stored once): a
    /// bit flipped in it fails both, each report naming the same frame key, and neither restores.
    @Test func aFlippedBitInASharedFrameFailsEverySnapshotThatUsesIt() throws {
        let s = Scratch()
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        try sh("mkdir -p '\(s.sub("data"))' && head -c 3000000 /dev/urandom > '\(s.sub("data/blob"))'")
        let ids = try (1...2).map { day -> String in
            if day == 2 { try s.write("data/new.txt", "only in the second\n") }
            let r = try CLI.run(["backup", s.sub("data"), "--source", "d", "--time", "2024-03-0\(day)T02:00:00Z", "--repo", s.repo])
            #expect(r.status == 0, "\(r.stderr)")
            return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let first = try storedFrames(s.repo, ids[0]), second = try storedFrames(s.repo, ids[1])
        let shared = try #require(first.first { f in f.compressedSize > 500_000 && second.contains { $0.id == f.id } }, "the blob's frames are shared")
        #expect(second.count > first.count - 1, "the second snapshot holds the blob's frames too")
        try flipFrameByte(s.repo, shared, at: Int(shared.compressedSize / 3), mask: 0x01)

        let v = try CLI.run(["verify", "--all", "--json", "--repo", s.repo])
        #expect(v.status == 65, "\(v.stderr)")
        let results = try #require((try json(v.stdout) as? [String: Any])?["results"] as? [[String: Any]])
        for id in ids {
            let result = try #require(results.first { $0["snapshot"] as? String == id })
            #expect(result["status"] as? String == "failed", "\(id)")
            let problems = result["problems"] as? [[String: Any]] ?? []
            #expect(problems.contains { ($0["message"] as? String)?.contains(shared.key) == true }, "\(id): \(problems)")
        }
        for id in ids {
            let r = try CLI.run(["restore", id, "--to", s.sub("out"), "--repo", s.repo])
            #expect(r.status == 65 && r.stderr.contains(shared.key), "\(id): \(r.stderr)")
        }
        // Both are known bad now: a selection finds no candidate (66) rather than a damaged one.
        let latest = try CLI.run(["restore", "--latest", "--source", "d", "--fallback", "--to", s.sub("out"), "--repo", s.repo])
        #expect(latest.status == 66, "\(latest.stderr)")
        #expect(!FileManager.default.fileExists(atPath: s.sub("out")))
    }
}
