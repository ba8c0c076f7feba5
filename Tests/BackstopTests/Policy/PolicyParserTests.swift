import Foundation
import Testing
@testable import Backstop

@Suite struct PolicyParserTests {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path

    @Test func everyShippedPolicyLoads() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.packageRoot + "/Policies").filter { $0.hasSuffix(".yaml") }.sorted()
        #expect(files == ["ci-verify.yaml", "mariabackup.yaml", "nightly.yaml", "pre-upgrade.yaml", "two-regions.yaml"])
        for f in files {
            let p = try PolicyParser.load(file: Self.packageRoot + "/Policies/" + f)
            #expect(p.repository == "/var/backups/backstop", "\(f)")
        }
        let physical = try PolicyParser.load(file: Self.packageRoot + "/Policies/mariabackup.yaml").jobs
        #expect(physical.map(\.kind) == [.filesystem])
        #expect(physical.first?.mariabackup == MariaBackupConnection(socket: "/run/mysqld/mysqld.sock", user: "backstop", defaultsFile: "/etc/backstop/db1.cnf"))
        let nightly = try PolicyParser.load(file: Self.packageRoot + "/Policies/nightly.yaml")
        #expect(nightly.jobs.map(\.source) == ["mysql-datadir", "mysql-dump"])
        #expect(nightly.timeZone.identifier == "Europe/Berlin")
        #expect(nightly.lockTimeout == 600)
        #expect(nightly.retention == RetentionPolicy(keepLast: 3, keepDaily: 7, keepWeekly: 4, keepMonthly: 12, keepWithin: 2 * 86400,
                                                     keepTags: ["keep-forever", "pre-upgrade"], keepBeforeEvent: 90 * 86400))
        #expect(nightly.verification == Policy.Verification(afterBackup: .full, sample: 2))
        #expect(nightly.jobs[1].format == .mysqldump && nightly.jobs[1].command?.hasPrefix("mariadb-dump") == true)
        #expect(nightly.copyTo.isEmpty)
        #expect(try PolicyParser.load(file: Self.packageRoot + "/Policies/two-regions.yaml").copyTo == ["/mnt/region-b/backstop"])
    }

    @Test func copyToIsOneRepositoryOrAList() throws {
        let one = try PolicyParser.parse(Self.valid + "\ncopy-to: /mnt/b", file: "/etc/backstop/p.yaml")
        #expect(one.copyTo == ["/mnt/b"])
        // Relative names are resolved as `repository:` is, against the policy's folder; URLs are kept.
        let list = try PolicyParser.parse(Self.valid + "\ncopy-to: [other, s3://bucket/prefix]", file: "/etc/backstop/p.yaml")
        #expect(list.copyTo == ["/etc/backstop/other", "s3://bucket/prefix"])
    }

    static let valid = """
        repository: /srv/backups
        jobs:
          - source: data
            kind: filesystem
            paths: [/srv/data]
        retention:
          keep-daily: 7
        """

    struct Mistake: CustomTestStringConvertible, Sendable {
        var name: String
        var yaml: String
        var line: Int
        var column: Int
        var message: String
        var testDescription: String { name }
    }

    static let mistakes: [Mistake] = [
        Mistake(name: "unknown key", yaml: valid.replacingOccurrences(of: "  keep-daily: 7", with: "  keep-daily: 7\n  keep-dayly: 3"),
                line: 8, column: 3, message: "unknown key 'keep-dayly'"),
        Mistake(name: "snake_case key", yaml: valid.replacingOccurrences(of: "  keep-daily: 7", with: "  keep_daily: 7"),
                line: 7, column: 3, message: "did you mean 'keep-daily'"),
        Mistake(name: "duplicate key", yaml: valid.replacingOccurrences(of: "  keep-daily: 7", with: "  keep-daily: 7\n  keep-daily: 9"),
                line: 7, column: 3, message: "duplicate key 'keep-daily'"),
        Mistake(name: "wrong type", yaml: valid.replacingOccurrences(of: "keep-daily: 7", with: "keep-daily: seven"),
                line: 7, column: 15, message: "'keep-daily' must be a whole number"),
        Mistake(name: "negative count", yaml: valid.replacingOccurrences(of: "keep-daily: 7", with: "keep-daily: -1"),
                line: 7, column: 15, message: "must not be negative"),
        Mistake(name: "bad duration", yaml: valid.replacingOccurrences(of: "keep-daily: 7", with: "keep-within: 2 days"),
                line: 7, column: 16, message: "'keep-within' is not a duration"),
        Mistake(name: "list expected", yaml: valid.replacingOccurrences(of: "paths: [/srv/data]", with: "paths: /srv/data"),
                line: 5, column: 12, message: "'paths' must be a list"),
        Mistake(name: "unknown kind", yaml: valid.replacingOccurrences(of: "kind: filesystem", with: "kind: snapshot"),
                line: 4, column: 11, message: "kind must be filesystem, logical or mariabackup"),
        Mistake(name: "missing command", yaml: valid.replacingOccurrences(of: "kind: filesystem\n    paths: [/srv/data]", with: "kind: logical"),
                line: 3, column: 5, message: "needs 'command'"),
        Mistake(name: "unknown time zone", yaml: "timezone: Mars/Olympus\n" + valid, line: 1, column: 11, message: "unknown time zone"),
        Mistake(name: "YAML syntax", yaml: valid.replacingOccurrences(of: "paths: [/srv/data]", with: "paths: [/srv/data"),
                line: 6, column: 10, message: "YAML syntax"),
        Mistake(name: "missing repository", yaml: valid.replacingOccurrences(of: "repository: /srv/backups\n", with: ""),
                line: 1, column: 1, message: "missing 'repository'"),
        Mistake(name: "bad source name", yaml: valid.replacingOccurrences(of: "source: data", with: "source: my/data"),
                line: 3, column: 13, message: "source 'my/data' may use only letters, digits, '.', '_' and '-'"),
        // Tags follow the one name rule (`Name`), as source and event names do.
        Mistake(name: "bad tag", yaml: valid.replacingOccurrences(of: "paths: [/srv/data]", with: "paths: [/srv/data]\n    tags: [nightly, \"two words\"]"),
                line: 6, column: 21, message: "tag 'two words' may use only letters, digits, '.', '_' and '-'"),
        Mistake(name: "copy-to own repository", yaml: valid + "\ncopy-to: [/mnt/b, /srv/backups]", line: 8, column: 19,
                message: "'copy-to' names the policy's own repository"),
        Mistake(name: "copy-to empty", yaml: valid + "\ncopy-to: []", line: 8, column: 10, message: "'copy-to' is an empty list"),
        Mistake(name: "copy-to twice", yaml: valid + "\ncopy-to: [/mnt/b, /mnt/b]", line: 8, column: 19, message: "'copy-to' names /mnt/b twice"),
        Mistake(name: "bad after-backup", yaml: valid + "\nverify:\n  after-backup: sometimes", line: 9, column: 17, message: "after-backup must be quick, full or none"),
    ]

    @Test(arguments: mistakes)
    func mistakesNameLineAndColumn(m: Mistake) throws {
        do {
            _ = try PolicyParser.parse(m.yaml, file: "p.yaml")
            Issue.record("accepted: \(m.yaml)")
        } catch let PolicyError.invalid(file, issues) {
            #expect(file == "p.yaml")
            let hit = issues.first { $0.message.contains(m.message) }
            #expect(hit != nil, "\(issues)")
            #expect(hit?.line == m.line && hit?.column == m.column, "\(issues)")
            #expect(PolicyError.invalid(file: file, issues: issues).exitStatus == .usage)
        }
    }

    @Test func allMistakesAreReportedAtOnce() throws {
        let yaml = Self.valid.replacingOccurrences(of: "keep-daily: 7", with: "keep-daily: -1\n  keep-weekly: x\n  keep-soon: 1")
        do {
            _ = try PolicyParser.parse(yaml, file: "p.yaml")
            Issue.record("accepted")
        } catch let PolicyError.invalid(_, issues) {
            #expect(issues.count == 3, "\(issues)")
            #expect(String(describing: PolicyError.invalid(file: "p.yaml", issues: issues)).contains("p.yaml:7:15:"))
        }
    }

    @Test func aRelativeRepositoryIsResolvedAgainstThePolicyFolder() throws {
        let p = try PolicyParser.parse(Self.valid.replacingOccurrences(of: "/srv/backups", with: "../backups"), file: "/etc/backstop/nightly.yaml")
        #expect(p.repository == "/etc/backups")
    }
}
