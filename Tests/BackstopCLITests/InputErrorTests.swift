import Foundation
import Testing

/// Wrong inputs a new user makes: each is refused with a message that names the problem and the
/// next step, never a raw library error.
@Suite struct InputErrorTests {
    /// Proves (issue 10.12): `init` into a non-empty directory that is not a repository is
    /// refused (exit 1, nothing created) unless `--force`, as Borg does.
    @Test func initRefusesANonEmptyDirectoryWithoutForce() throws {
        let s = Scratch()
        try s.write("photos/holiday.jpg", "not a repository\n")
        let refused = try CLI.run(["init", "--repo", s.sub("photos")])
        #expect(refused.status == 1, "\(refused.stdout)\(refused.stderr)")
        #expect(refused.stderr.contains("not empty") && refused.stderr.contains("--force"), "\(refused.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: s.sub("photos")) == ["holiday.jpg"])

        let forced = try CLI.run(["init", "--force", "--repo", s.sub("photos")])
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(FileManager.default.fileExists(atPath: s.sub("photos/backstop.json")))
        #expect(try String(contentsOfFile: s.sub("photos/holiday.jpg"), encoding: .utf8) == "not a repository\n")

        try FileManager.default.createDirectory(atPath: s.sub("empty"), withIntermediateDirectories: true)
        #expect(try CLI.run(["init", "--repo", s.sub("empty")]).status == 0)
    }

    /// Proves (issue 10.10): a policy path that is a directory says so (64), not
    /// `NSCocoaErrorDomain error 256`.
    @Test func policyPathThatIsADirectory() throws {
        let s = Scratch()
        try FileManager.default.createDirectory(atPath: s.sub("Policies"), withIntermediateDirectories: true)
        let r = try CLI.run(["policy", "check", s.sub("Policies")])
        #expect(r.status == 64, "\(r.stderr)")
        #expect(r.stderr.contains("is a directory"), "\(r.stderr)")
        #expect(!r.stderr.contains("NSCocoaErrorDomain") && !r.stderr.contains("error 256"), "\(r.stderr)")
    }

    /// Proves (issue 10.10): a tab in a policy's indentation is named, with its line and column.
    @Test func policyWithATab() throws {
        let s = Scratch()
        try s.write("p.yaml", "repository: /tmp/r\njobs:\n  - source: a\n\tkind: filesystem\n")
        let r = try CLI.run(["policy", "check", s.sub("p.yaml")])
        #expect(r.status == 64, "\(r.stderr)")
        #expect(r.stderr.contains("p.yaml:4:1: a tab in the indentation"), "\(r.stderr)")
    }

    /// Proves (issue 10.10): a duplicate key is reported together with the policy's other
    /// mistakes, not alone.
    @Test func policyWithADuplicateKeyReportsEverything() throws {
        let s = Scratch()
        try s.write("p.yaml", """
            repository: /tmp/r
            lock-timeout: soon
            jobs:
              - source: a
                kind: filesystem
                paths: [/srv]
                source: b
            retention:
              keep-last: -3

            """)
        let r = try CLI.run(["policy", "check", s.sub("p.yaml")])
        #expect(r.status == 64, "\(r.stderr)")
        #expect(r.stderr.contains("duplicate key 'source'"), "\(r.stderr)")
        #expect(r.stderr.contains("p.yaml:2:"), "the bad lock-timeout is reported too: \(r.stderr)")
        #expect(r.stderr.contains("p.yaml:9:"), "the negative keep-last is reported too: \(r.stderr)")
        #expect(!r.stderr.contains("backstop-duplicate-key"), "\(r.stderr)")
    }
}
