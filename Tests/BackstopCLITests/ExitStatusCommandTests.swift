import Foundation
import Testing

/// One mapping from error to exit code: a failure gives the same code whether `backstop run`
/// meets it in a job or a command meets it directly.
@Suite struct ExitStatusCommandTests {
    /// Proves that a job's failure is reported by `run` with the code of the same failure met by
    /// `backup`: the job's `before` hook damages `catalog.sqlite` after `run` opened the
    /// repository, so the job fails when it records its snapshot (a raw SQLite error, which `run`
    /// used to report as 1); `backup` against the same damaged catalog fails as it opens the
    /// repository, 74. Nothing is committed either way.
    @Test func aDamagedCatalogIs74ThroughRunAndThroughBackup() throws {
        let s = Scratch()
        try s.write("data/f", "rows\n")
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        try s.write("policy.yaml", """
            repository: \(s.repo)
            jobs:
              - source: data
                kind: filesystem
                paths: [\(s.sub("data"))]
                before: printf 'not a catalog, damaged by the before hook %.0s' $(seq 1 200) > \(s.repo)/catalog.sqlite
            verify:
              after-backup: none
              sample: 0
            """)
        let run = try CLI.run(["run", "--json", s.sub("policy.yaml")])
        let summary = try #require(try json(run.stdout) as? [String: Any], "\(run.stdout)\(run.stderr)")
        let job = try #require((summary["jobs"] as? [[String: Any]])?.first)
        #expect(job["status"] as? String == "failed")
        #expect(job["exitCode"] as? Int == 74, "\(job)")
        #expect(run.status == 74, "\(run.stderr)")

        let backup = try CLI.run(["backup", "--repo", s.repo, "--source", "data", s.sub("data")])
        #expect(backup.status == 74, "\(backup.stderr)")
        #expect(backup.stderr.contains("catalog rebuild"), "\(backup.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: s.repo + "/snapshots").isEmpty)
    }
}
