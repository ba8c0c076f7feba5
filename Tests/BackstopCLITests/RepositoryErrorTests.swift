import Foundation
import Testing

/// Damaged repository files and unwritable catalogs: a clear message with the next step, the
/// results that could be computed, and never a raw SQLite or decoding error.
@Suite(.serialized) struct RepositoryErrorTests {
    func repoWithTwoSnapshots(_ s: Scratch, repo: String) throws -> [String] {
        #expect(try CLI.run(["init", "--repo", repo]).status == 0)
        try s.write("data/a.txt", "a\n")
        var ids: [String] = []
        for source in ["one", "two"] {
            let r = try CLI.run(["backup", s.sub("data"), "--source", source, "--repo", repo])
            #expect(r.status == 0, "\(r.stderr)")
            ids.append(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return ids
    }

    func expectNoRawError(_ r: CLI.Result, _ context: String) {
        for raw in ["SQLite error", "DecodingError", "NSCocoaErrorDomain", "dataCorrupted", "CodingKeys"] {
            #expect(!r.stderr.contains(raw) && !r.stdout.contains(raw), "\(context): \(r.stderr)")
        }
    }

    /// Proves (issue 10.8): after `catalog rebuild` leaves out a snapshot whose manifest is
    /// unreadable, `verify ID` and `verify --all` report that snapshot as failed with the reason
    /// (65, with the JSON report), instead of dying on a foreign key (exit 1, no report).
    @Test func snapshotLeftOutOfTheCatalogIsReportedAsFailed() throws {
        let s = Scratch()
        let ids = try repoWithTwoSnapshots(s, repo: s.repo)
        try "{\n".write(toFile: s.repo + "/snapshots/\(ids[0])/manifest.json", atomically: false, encoding: .utf8)
        let rebuild = try CLI.run(["catalog", "rebuild", "--repo", s.repo])
        #expect(rebuild.status == 0)
        #expect(rebuild.stderr.contains("backstop verify \(ids[0])") || rebuild.stderr.contains(ids[0]), "\(rebuild.stderr)")

        let one = try CLI.run(["verify", ids[0], "--quick", "--repo", s.repo])
        #expect(one.status == 65, "\(one.stderr)")
        #expect(one.stdout.contains("FAILED  \(ids[0])"), "\(one.stdout)")
        #expect(one.stdout.contains("manifest.json"), "\(one.stdout)")
        expectNoRawError(one, "verify ID")

        let all = try CLI.run(["verify", "--all", "--quick", "--json", "--repo", s.repo])
        #expect(all.status == 65, "\(all.stderr)")
        expectNoRawError(all, "verify --all")
        let report = try #require(try json(all.stdout) as? [String: Any])
        let results = try #require(report["results"] as? [[String: Any]])
        #expect(results.count == 2)
        let broken = results.first { $0["snapshot"] as? String == ids[0] }
        #expect(broken?["status"] as? String == "failed", "\(all.stdout)")
        #expect(results.first { $0["snapshot"] as? String == ids[1] }?["status"] as? String == "passed")

        // `verify --sample` takes it (in up to half of the sample: it has no history to rotate
        // by), and `list` says it is left out instead of skipping it silently.
        let sample = try CLI.run(["verify", "--sample", "2", "--quick", "--repo", s.repo])
        #expect(sample.status == 65 && sample.stdout.contains("FAILED  \(ids[0])") && sample.stdout.contains(ids[1]),
                "\(sample.stdout)\(sample.stderr)")
        let list = try CLI.run(["list", "--repo", s.repo])
        #expect(list.status == 0)
        #expect(list.stderr.contains("snapshots/\(ids[0]) is left out of the catalog"), "\(list.stderr)")
    }

    /// Proves (issue 10.10): a garbage `catalog.sqlite` says to run `backstop catalog rebuild`
    /// (74) instead of `SQLite error 26`, and the rebuild repairs it.
    @Test func garbageCatalogSaysToRebuildIt() throws {
        let s = Scratch()
        let ids = try repoWithTwoSnapshots(s, repo: s.repo)
        try String(repeating: "not a database\n", count: 400).write(toFile: s.repo + "/catalog.sqlite", atomically: false, encoding: .utf8)
        let list = try CLI.run(["list", "--repo", s.repo])
        #expect(list.status == 74, "\(list.stderr)")
        #expect(list.stderr.contains("backstop catalog rebuild"), "\(list.stderr)")
        expectNoRawError(list, "list")
        #expect(try CLI.run(["catalog", "rebuild", "--repo", s.repo]).status == 0)
        let again = try CLI.run(["list", "--repo", s.repo])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(ids.allSatisfy { again.stdout.contains($0) })
    }

    /// Proves (issue 10.10): a garbage `backstop.json` is reported in words, not as a raw
    /// `DecodingError`.
    @Test(arguments: ["garbage\n", "{\"format\": 1}\n", "{\"format\": \"one\", \"id\": \"x\"}\n"])
    func garbageConfigIsExplained(_ text: String) throws {
        let s = Scratch()
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        try text.write(toFile: s.repo + "/backstop.json", atomically: false, encoding: .utf8)
        let r = try CLI.run(["list", "--repo", s.repo])
        #expect(r.status != 0)
        #expect(r.stderr.contains("backstop.json"), "\(r.stderr)")
        expectNoRawError(r, text)
    }

    /// Proves (issue 9.12): `verify --all` on a full disk prints every result (and the JSON
    /// report) and warns that the history could not be saved, instead of exiting 1 with
    /// `SQLite error 13` and no results.
    @Test func verifyOnAFullDiskReportsAndWarns() throws {
        let s = Scratch()
        let disk = try Tmpfs(at: s.sub("disk"), size: "8m")
        defer { disk.unmount() }
        let repo = disk.path + "/repo"
        let ids = try repoWithTwoSnapshots(s, repo: repo)
        _ = try? sh("head -c 20000000 /dev/zero > '\(disk.path)/filler'")
        #expect((try? sh("echo x > '\(disk.path)/probe'")) == nil, "the disk is full")

        let text = try CLI.run(["verify", "--all", "--repo", repo])
        #expect(text.status == 0, "\(text.stderr)")
        #expect(ids.allSatisfy { text.stdout.contains("ok      \($0)") }, "\(text.stdout)")
        #expect(text.stderr.contains("could not be saved") && text.stderr.contains("disk is full"), "\(text.stderr)")
        expectNoRawError(text, "verify --all")

        let js = try CLI.run(["verify", "--all", "--quick", "--json", "--repo", repo])
        #expect(js.status == 0, "\(js.stderr)")
        let report = try #require(try json(js.stdout) as? [String: Any])
        #expect((report["results"] as? [[String: Any]])?.count == 2)
        #expect((report["warnings"] as? [String])?.first?.contains("could not be saved") == true, "\(js.stdout)")
    }

    /// Proves (issue 10.10): `verify` on a read-only repository verifies, reports, and warns that
    /// the history could not be recorded, instead of `SQLite error 8` and no report.
    @Test func verifyOnAReadOnlyRepositoryReportsAndWarns() throws {
        let s = Scratch()
        let disk = try Tmpfs(at: s.sub("disk"), size: "16m")
        defer { disk.unmount() }
        let repo = disk.path + "/repo"
        let ids = try repoWithTwoSnapshots(s, repo: repo)
        try sh("mount -o remount,ro '\(disk.path)'")
        let r = try CLI.run(["verify", "--all", "--repo", repo])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(ids.allSatisfy { r.stdout.contains("ok      \($0)") }, "\(r.stdout)")
        #expect(r.stderr.contains("could not be saved") && r.stderr.contains("read-only"), "\(r.stderr)")
        expectNoRawError(r, "verify on a read-only repository")
    }
}
