import Foundation
import Testing
@testable import Backstop

/// What a hot physical backup (`backup --mariabackup`) records from mariadb-backup's info files,
/// and the policy's `kind: mariabackup` jobs. No server: the files are written here in the
/// formats mariadb-backup 10.11 writes.
@Suite struct PhysicalBackupTests {
    func folder(_ files: [String: String]) throws -> TemporaryDirectory {
        let dir = TemporaryDirectory()
        for (name, text) in files { try writeFile(dir.sub(name), Array(text.utf8)) }
        return dir
    }

    /// Proves: versions, binlog file/position/GTID and Galera UUID/seqno are read from the three
    /// files (a Galera line with a trailing domain or GTID, too); the binlog position is where a
    /// replay starts; grastate.dat carries them with safe_to_bootstrap: 1.
    @Test func readsTheInfoFilesAndWritesGrastate() throws {
        let dir = try folder([
            "xtrabackup_info": "uuid = 1f0e\nname = \ntool_name = mariadb-backup\ntool_command = --backup\ntool_version = 10.11.19-MariaDB\nibbackup_version = 10.11.19-MariaDB\nserver_version = 10.11.19-MariaDB-0+deb12u1-log\n",
            "xtrabackup_binlog_info": "mysql-bin.000003\t1234\t0-1-57,1-2-3\n",
            "xtrabackup_galera_info": "6d1a6a2c-8d0e-11ef-9a7a-b3b2d62e0e5f:4711 0\n",
        ])
        let b = PhysicalBackup.read(folder: dir.path)
        #expect(b.tool == "mariadb-backup" && b.needsPrepare)
        #expect(b.toolVersion == "10.11.19-MariaDB" && b.serverVersion == "10.11.19-MariaDB-0+deb12u1-log")
        #expect(b.binlog == BinlogPosition(file: "mysql-bin.000003", position: 1234, gtid: "0-1-57,1-2-3"))
        #expect(b.galeraUUID == "6d1a6a2c-8d0e-11ef-9a7a-b3b2d62e0e5f" && b.galeraSeqno == 4711)
        #expect(b.grastate?.contains("version: 2.1\n") == true)
        #expect(b.grastate?.contains("uuid:    6d1a6a2c-8d0e-11ef-9a7a-b3b2d62e0e5f\nseqno:   4711\nsafe_to_bootstrap: 1\n") == true)
    }

    /// Proves: without binary logging (no xtrabackup_binlog_info) or GTID, and off Galera, the
    /// fields are absent, not invented; there is no grastate.dat to write.
    @Test func absentFilesLeaveFieldsOut() throws {
        let dir = try folder(["xtrabackup_binlog_info": "mysql-bin.000001\t328\n"])
        let b = PhysicalBackup.read(folder: dir.path)
        #expect(b.binlog == BinlogPosition(file: "mysql-bin.000001", position: 328, gtid: nil))
        #expect(b.serverVersion == nil && b.galeraUUID == nil && b.grastate == nil)
        #expect(PhysicalBackup.read(folder: TemporaryDirectory().path).binlog == nil)
    }

    /// Proves: the version check compares major.minor: 10.11.19 and 10.11.6 match, 10.6 and 11.4 do not.
    @Test func majorMinor() {
        #expect(PhysicalBackup.majorMinor("10.11.19-MariaDB-0+deb12u1-log") == "10.11")
        #expect(PhysicalBackup.majorMinor("mariadb-backup based on MariaDB server 10.11.6-MariaDB") == "10.11")
        #expect(PhysicalBackup.majorMinor("11.4.2-MariaDB") == "11.4")
        #expect(PhysicalBackup.majorMinor("10.6.18-MariaDB-log") != PhysicalBackup.majorMinor("10.11.19-MariaDB"))
    }

    static let job = "repository: /srv/backups\njobs:\n  - source: db1\n    kind: mariabackup\n"

    /// Proves: `kind: mariabackup` reads its connection keys; keys of other kinds, both a socket
    /// and a host, and connection keys on a filesystem job are refused, each named.
    @Test func policyJobs() throws {
        let p = try PolicyParser.parse(Self.job + "    host: 127.0.0.1\n    port: 3307\n    user: backstop\n", file: "p.yaml")
        #expect(p.jobs.first?.kind == .filesystem)
        #expect(p.jobs.first?.mariabackup == MariaBackupConnection(host: "127.0.0.1", port: 3307, user: "backstop"))
        for (yaml, message) in [
            (Self.job + "    paths: [/var/lib/mysql]\n", "'paths' does not apply to a mariabackup job"),
            (Self.job + "    socket: /s\n    port: 3306\n", "gives 'socket' and 'host'/'port'"),
            ("repository: /srv/backups\njobs:\n  - source: d\n    kind: filesystem\n    paths: [/x]\n    socket: /s\n", "'socket' is for mariabackup jobs"),
            (Self.job.replacingOccurrences(of: "mariabackup", with: "physical"), "kind must be filesystem, logical or mariabackup"),
        ] {
            do {
                _ = try PolicyParser.parse(yaml, file: "p.yaml")
                Issue.record("accepted: \(yaml)")
            } catch let PolicyError.invalid(_, issues) {
                #expect(issues.contains { $0.message.contains(message) }, "\(issues)")
            }
        }
    }
}
