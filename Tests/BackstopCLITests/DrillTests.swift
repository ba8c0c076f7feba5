import Foundation
import Testing

/// The outage drill (scripts/drill.sh) end to end, on real MariaDB and PostgreSQL servers the
/// drill starts and stops: nightly runs from a policy, an upgrade event, the pre-upgrade
/// snapshot restored into a rebuilt server with exactly the pre-upgrade rows, diff naming exactly
/// the applications written to afterwards, each of them recovered from the post-upgrade dump,
/// and a corrupted pre-upgrade snapshot falling back to the one before; then PostgreSQL point in
/// time: WAL archived by `logs push` as the archive_command, a base backup streamed by
/// `backup --tar-command pg_basebackup`, writes before, during and after it, a botched migration
/// at a known moment, and `restore --source pg-base --until` that moment giving a server whose
/// every database equals its state just before it. Every claim is checked
/// inside the drill ("PASS"/"FAIL" lines); this test fails on any FAIL, a non-zero exit, or a
/// server left running.
@Suite(.tags(.liveServer), .needsLiveServer) struct DrillTests {
    @Test func theOutageDrillPasses() throws {
        try runDrill([])
    }

    /// The same drill on an encrypted repository (`--encrypt`): backups and the binlog follower
    /// with the writer key only, restores, diff and verify with the identity; the drill also
    /// checks that no database name or event note is readable in the stored manifests and events.
    @Test func theOutageDrillPassesOnAnEncryptedRepository() throws {
        try runDrill(["--encrypt"])
    }

    private func runDrill(_ flags: [String], minimumPasses: Int = 23) throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let work = Scratch()
        chmod(work.path, 0o755)   // the PostgreSQL server runs as user postgres
        let args = (flags + [work.sub("drill")]).map { "'\($0)'" }.joined(separator: " ")
        let output = try sh("BACKSTOP_BIN='\(CLI.binary)' '\(root)/scripts/drill.sh' \(args) 2>&1; echo \"exit=$?\"")
        let lines = output.split(separator: "\n").map(String.init)
        let failures = lines.filter { $0.hasPrefix("FAIL") }
        #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))\n\(output.suffix(3000))")
        #expect(lines.last == "exit=0", "\(output.suffix(3000))")
        #expect(lines.contains("DRILL PASSED"))
        #expect(lines.filter { $0.hasPrefix("PASS") }.count >= minimumPasses)
        if flags.contains("--encrypt") {
            #expect(lines.contains("PASS encrypted: no database name or event note readable in manifests or events"))
        }
        // The PostgreSQL point-in-time part ran and passed (its checks by name).
        #expect(lines.contains { $0.hasPrefix("PASS every database equals its state just before the failure") }, "\(output.suffix(3000))")
        // The drill checks its own servers stopped ("FAIL every server the drill started has
        // stopped"); this is the outside view. Anything found is recorded, then ended by its pid.
        let leftovers = try sh("pgrep -af '[m]ariadbd.*\(work.path)|[p]ostgres.*\(work.path)' || true")
        #expect(leftovers.isEmpty, "servers left running: \(leftovers)")
        for line in leftovers.split(separator: "\n") {
            if let pid = Int32(line.split(separator: " ").first ?? "") { kill(pid, SIGKILL) }
        }
        #expect(!FileManager.default.fileExists(atPath: work.sub("drill")), "the drill removes its folder")
    }
}

/// The outage drill on a 3-node Galera cluster (scripts/drill.sh --galera, scripts/drill-galera.sh)
/// end to end: applications writing to all three nodes and seeing no error during the hot backups
/// a `kind: mariabackup` policy takes, node 1's binlogs followed, an upgrade event, the cluster
/// killed and its data directories damaged, then `select --before upgrade`, `restore --prepare`
/// into node 1, a new cluster bootstrapped from it, nodes 2 and 3 joining by state transfer, every
/// node's per-table checksums equal to the pre-upgrade state, and each application written to
/// after the upgrade replayed to the failure (`restore --database --until | mariadb`) on all three
/// nodes. Any FAIL line, a missing Backstop step, or a server left running fails it.
@Suite(.tags(.liveServer, .slow), .needsLiveServer) struct GaleraDrillTests {
    @Test func theGaleraClusterDrillPasses() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let work = Scratch()
        chmod(work.path, 0o755)
        let output = try sh("BACKSTOP_BIN='\(CLI.binary)' '\(root)/scripts/drill.sh' --galera '\(work.sub("drill"))' 2>&1; echo \"exit=$?\"")
        let lines = output.split(separator: "\n").map(String.init)
        let failures = lines.filter { $0.hasPrefix("FAIL") }
        #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))\n\(output.suffix(4000))")
        #expect(lines.last == "exit=0", "\(output.suffix(4000))")
        #expect(lines.contains("DRILL PASSED"))
        // Every step ran: the checks of the recovery's end are there (a drill cut short has fewer).
        #expect(lines.filter { $0.hasPrefix("PASS") }.count >= 20, "\(output.suffix(4000))")
        #expect(lines.contains { $0.hasPrefix("recovery, cluster broken -> 3 nodes synced with every application recovered:") })
        let leftovers = try sh("pgrep -af '[m]ariadbd.*\(work.path)' || true")
        #expect(leftovers.isEmpty, "servers left running: \(leftovers)")
        for line in leftovers.split(separator: "\n") {
            if let pid = Int32(line.split(separator: " ").first ?? "") { kill(pid, SIGKILL) }
        }
        #expect(!FileManager.default.fileExists(atPath: work.sub("drill")), "the drill removes its folder")
    }
}
