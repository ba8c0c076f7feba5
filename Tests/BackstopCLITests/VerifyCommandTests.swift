import Foundation
import Testing

/// `backstop verify` end to end: exit codes, JSON and JUnit reports a CI system reads.
@Suite struct VerifyCommandTests {
    /// A repository with three filesystem snapshots (of a blob that changes every day, so each
    /// has frames of its own); returns their IDs.
    func threeSnapshots(_ s: Scratch) throws -> [String] {
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        return try (1...3).map { day in
            try sh("mkdir -p '\(s.sub("data"))' && head -c 3000000 /dev/urandom > '\(s.sub("data/blob"))' && echo hi > '\(s.sub("data/hi.txt"))'")
            let r = try CLI.run(["backup", s.sub("data"), "--source", "d", "--time", "2024-03-0\(day)T02:00:00Z", "--repo", s.repo])
            #expect(r.status == 0, "\(r.stderr)")
            return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }

    func flipByte(_ path: String, at fraction: Double) throws {
        var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[Int(Double(bytes.count) * fraction)] ^= 0x40
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    @Test func allCleanExits0() throws {
        let s = Scratch()
        let ids = try threeSnapshots(s)
        let r = try CLI.run(["verify", "--all", "--repo", s.repo])
        #expect(r.status == 0, "\(r.stderr)")
        for id in ids { #expect(r.stdout.contains("ok      \(id)")) }
        #expect(r.stdout.contains("3 verified: 3 passed, 0 failed"))
    }

    /// Proves: one corrupt snapshot fails the run with 65, the report names snapshot, file and
    /// frame, and the JUnit file is valid XML with the right counts.
    @Test func aCorruptSnapshotExits65WithJSONAndJUnitReports() throws {
        let s = Scratch()
        let ids = try threeSnapshots(s)
        // Format 2: damage a frame object only ids[1] uses (its blob's first frame).
        let frame = try ownFrame(s.repo, ids[1], notIn: [ids[0], ids[2]])
        try flipByte(framePath(s.repo, frame), at: 0.3)
        let junit = s.sub("report.xml")
        let r = try CLI.run(["verify", "--all", "--json", "--junit", junit, "--repo", s.repo])
        #expect(r.status == 65)
        let report = try #require(try json(r.stdout) as? [String: Any])
        #expect(report["passed"] as? Int == 2 && report["failed"] as? Int == 1)
        let results = try #require(report["results"] as? [[String: Any]])
        let bad = try #require(results.first { $0["snapshot"] as? String == ids[1] })
        #expect(bad["status"] as? String == "failed")
        let problems = try #require(bad["problems"] as? [[String: Any]])
        #expect(problems.first?["file"] as? String == "frames.tsv")
        #expect(problems.first?["location"] as? String == "frame \(frame.index)")
        for key in ["mode", "duration", "bytesRead"] { #expect(bad[key] != nil) }
        #expect(r.stderr.contains("snapshot \(ids[1]) failed verification: frames.tsv frame \(frame.index)"))

        let parsed = try sh("""
            python3 -c 'import xml.etree.ElementTree as E; r = E.parse("\(junit)").getroot(); s = r.find("testsuite"); \
            print(s.get("tests"), s.get("failures"), len(s.findall("testcase")), len(s.findall("testcase/failure")))'
            """)
        let counts = parsed.split(separator: " ").map { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        #expect(counts[0] == 3 && counts[1] == 1 && counts[2] == 3)
        #expect((counts[3] ?? 0) >= 1)

        // History: list shows the failure (and only that one), and the next run of the same
        // snapshot still fails. (A full one: format 2's quick check sees a frame object's
        // presence and size, not a flipped bit inside it.)
        let list = try CLI.run(["list", "--json", "--repo", s.repo])
        #expect(list.status == 0, "\(list.stderr)")
        let listed = try json(list.stdout)
        let rows = try #require((listed as? [[String: Any]]) ?? ((listed as? [String: Any])?["snapshots"] as? [[String: Any]]))
        let passed: [String: Bool?] = Dictionary(uniqueKeysWithValues: rows.map {
            ($0["id"] as? String ?? "?", ($0["lastVerification"] as? [String: Any])?["passed"] as? Bool)
        })
        #expect(passed == [ids[0]: true, ids[1]: false, ids[2]: true] as [String: Bool?], "\(list.stdout)")
        let text = try CLI.run(["list", "--repo", s.repo])
        let line = try #require(text.stdout.split(separator: "\n").first { $0.hasPrefix(ids[1]) })
        #expect(line.contains("FAILED full"), "\(line)")
        #expect(text.stdout.split(separator: "\n").filter { $0.contains("FAILED") }.count == 1)
        let again = try CLI.run(["verify", String(ids[1].suffix(8)), "--repo", s.repo])
        #expect(again.status == 65)
    }

    @Test func aNamedSnapshotThatDoesNotExistExits66() throws {
        let s = Scratch()
        _ = try threeSnapshots(s)
        let r = try CLI.run(["verify", "20990101T000000Z-00000000", "--repo", s.repo])
        #expect(r.status == 66)
        #expect(r.stderr.contains("no snapshot matches"))
    }

    @Test func sampleRotationCoversEverySnapshot() throws {
        let s = Scratch()
        let ids = try threeSnapshots(s)
        var seen: [String] = []
        for _ in 0..<3 {
            let r = try CLI.run(["verify", "--sample", "1", "--quick", "--json", "--repo", s.repo])
            #expect(r.status == 0)
            let results = (try json(r.stdout) as? [String: Any])?["results"] as? [[String: Any]] ?? []
            seen += results.compactMap { $0["snapshot"] as? String }
        }
        #expect(seen.sorted() == ids.sorted())
    }

    /// Proves: verify --all while another process writes a snapshot checks only committed ones.
    @Test func verifyIgnoresASnapshotBeingWritten() throws {
        let s = Scratch()
        let ids = try threeSnapshots(s)
        try s.write("dump.sql", sampleDump(rows: 300_000))
        let framesBefore = try sh("find '\(s.repo)/frames' -type f | wc -l")
        let writer = try CLI.start(["backup", "--command", "head -c 6000000 '\(s.sub("dump.sql"))'; sleep 8; tail -c +6000001 '\(s.sub("dump.sql"))'",
                                    "--source", "in-progress", "--repo", s.repo])
        defer { writer.waitUntilExit() }
        // Format 2: the writer holds its lease and has stored its first frames (each section
        // starts one), but has no manifest yet.
        var writing = false
        for _ in 0..<100 {
            let leases = (try? FileManager.default.contentsOfDirectory(atPath: s.repo + "/locks")) ?? []
            if !leases.isEmpty, try sh("find '\(s.repo)/frames' -type f | wc -l") != framesBefore { writing = true; break }
            usleep(50_000)
        }
        #expect(writing && writer.isRunning, "a snapshot is being written")
        let r = try CLI.run(["verify", "--all", "--json", "--repo", s.repo])
        #expect(r.status == 0, "\(r.stderr)")
        let checked = ((try json(r.stdout) as? [String: Any])?["results"] as? [[String: Any]])?.compactMap { $0["snapshot"] as? String }
        #expect(checked == ids)
        writer.waitUntilExit()
        #expect(writer.terminationStatus == 0)
    }
}
