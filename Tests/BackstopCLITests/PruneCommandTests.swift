import Foundation
import Testing

/// `prune --policy FILE`: the policy names the repository; `--repo` and `$BACKSTOP_REPO` are
/// read as by every command and must name the same one.
@Suite struct PruneCommandTests {
    /// Two repositories with two snapshots each, and a keep-last 1 policy for the first.
    func setUp(_ s: Scratch) throws -> (policy: String, other: String) {
        let other = s.sub("other")
        try s.write("t/a", "a\n")
        for repo in [s.repo, other] {
            #expect(try CLI.run(["init", "--repo", repo]).status == 0)
            for time in ["2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z"] {
                let b = try CLI.run(["backup", s.sub("t"), "--source", "t", "--time", time, "--repo", repo])
                #expect(b.status == 0, "\(b.stderr)")
            }
        }
        try s.write("policy.yaml", "repository: \(s.repo)\njobs:\n  - source: t\n    kind: filesystem\n    paths: [\(s.sub("t"))]\nretention:\n  keep-last: 1\n")
        return (s.sub("policy.yaml"), other)
    }

    func snapshotCount(_ repo: String) throws -> Int {
        try FileManager.default.contentsOfDirectory(atPath: repo + "/snapshots").count
    }

    /// Proves that `$BACKSTOP_REPO` is not ignored: naming another repository than the policy's
    /// is refused (64) and nothing is removed from either; `--repo` likewise.
    @Test func anotherRepositoryInTheEnvironmentOrInRepoIsRefused() throws {
        let s = Scratch()
        let (policy, other) = try setUp(s)
        let viaEnvironment = try CLI.run(["prune", "--policy", policy], environment: ["BACKSTOP_REPO": other])
        #expect(viaEnvironment.status == 64, "\(viaEnvironment.stdout)\(viaEnvironment.stderr)")
        #expect(viaEnvironment.stderr.contains("$BACKSTOP_REPO (\(other))") && viaEnvironment.stderr.contains(s.repo), "\(viaEnvironment.stderr)")
        let viaOption = try CLI.run(["prune", "--policy", policy, "--repo", other])
        #expect(viaOption.status == 64, "\(viaOption.stdout)\(viaOption.stderr)")
        #expect(viaOption.stderr.contains("--repo \(other)"), "\(viaOption.stderr)")
        #expect(try snapshotCount(s.repo) == 2)
        #expect(try snapshotCount(other) == 2)
    }

    /// The same repository spelled differently (`$BACKSTOP_REPO` through a symlink, `--repo`
    /// with a trailing `/.`) is the policy's: the prune runs.
    @Test func theSameRepositoryInTheEnvironmentOrInRepoPrunes() throws {
        let s = Scratch()
        let (policy, other) = try setUp(s)
        try FileManager.default.createSymbolicLink(atPath: s.sub("link"), withDestinationPath: s.repo)
        let dry = try CLI.run(["prune", "--policy", policy, "--dry-run", "--repo", s.repo + "/."])
        #expect(dry.status == 0, "\(dry.stderr)")
        #expect(dry.stdout.contains("1 would be removed"), "\(dry.stdout)")
        let r = try CLI.run(["prune", "--policy", policy], environment: ["BACKSTOP_REPO": s.sub("link")])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try snapshotCount(s.repo) == 1)
        #expect(try snapshotCount(other) == 2)
    }
}
