import Foundation
import Testing
@testable import Backstop

/// Archiving change logs without a server: idempotent pushes, refused conflicts, checksums.
@Suite struct LogArchiveTests {
    /// Proves: pushing the same WAL segment twice is success and changes nothing; other bytes
    /// under the same name are refused (65) and the stored segment stays as it was.
    @Test func walPushIsIdempotentAndADifferentFileUnderTheSameNameIsRefused() throws {
        let dir = TemporaryDirectory()
        let repo = try makeRepository(dir)
        var rng = SeededBytes(seed: 15)
        let wal = rng.bytes(64 << 10)
        let name = "000000010000000000000003"
        let first = try repo.pushLog(bytes: wal, name: name, source: "pg-wal", kind: .pgWAL)
        guard case .archived = first else { Issue.record("expected archived, got \(first)"); return }
        let again = try repo.pushLog(bytes: wal, name: name, source: "pg-wal", kind: .pgWAL)
        guard case .alreadyArchived = again else { Issue.record("expected alreadyArchived, got \(again)"); return }
        var other = wal
        other[100] ^= 1
        let refused = #expect(throws: LogError.self) {
            try repo.pushLog(bytes: other, name: name, source: "pg-wal", kind: .pgWAL)
        }
        #expect(refused.map { ExitStatus(for: $0) } == .integrity)
        #expect("\(refused!)".contains(name))
        try repo.getLog(source: "pg-wal", name: name, to: dir.sub("out"))
        #expect(try readFile(dir.sub("out")) == wal)
        #expect(try repo.logSegments(source: "pg-wal").map(\.name) == [name])
    }

    /// Proves: a stored segment whose bytes changed is named by `logs check` and refused by `get`.
    @Test func aDamagedSegmentIsReportedByCheck() throws {
        let dir = TemporaryDirectory()
        let repo = try makeRepository(dir)
        var rng = SeededBytes(seed: 16)
        try repo.pushLog(bytes: rng.bytes(4096), name: "000000010000000000000001", source: "pg-wal", kind: .pgWAL)
        try repo.pushLog(bytes: rng.bytes(4096), name: "000000010000000000000002", source: "pg-wal", kind: .pgWAL)
        #expect(try repo.checkLogs(source: "pg-wal").problems.isEmpty)
        // Replace segment 2's data object with another valid zstd frame of the same size.
        let key = RepositoryLayout.logData("pg-wal", "000000010000000000000002")
        try repo.storage.put(key, try repo.compressLogPayload(rng.bytes(4096)), mode: .replace)
        let report = try repo.checkLogs(source: "pg-wal")
        #expect(report.problems.count == 1 && report.problems[0].contains("000000010000000000000002"))
        #expect(throws: LogError.self) { try repo.getLog(source: "pg-wal", name: "000000010000000000000002", to: dir.sub("x")) }
        #expect(!FileManager.default.fileExists(atPath: dir.sub("x")))
    }

    /// Proves: the mysqldump scanner records the binlog position and GTID a `--master-data=2
    /// --gtid` dump carries, in either order.
    @Test func theDumpScannerRecordsBinlogCoordinates() throws {
        let dump = """
        -- MariaDB dump 10.19  Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)
        --
        -- Host: localhost    Database:
        -- ------------------------------------------------------
        --
        -- Preferably use GTID to start replication from GTID position:

        -- CHANGE MASTER TO MASTER_USE_GTID=slave_pos;
        -- SET GLOBAL gtid_slave_pos='0-1-7';

        --
        -- Alternately, following is the position of the binary logging from SHOW MASTER STATUS at point of backup.
        --

        -- CHANGE MASTER TO MASTER_LOG_FILE='mysql-bin.000003', MASTER_LOG_POS=1234;

        --
        -- Current Database: `app07`
        --

        CREATE DATABASE `app07`;
        -- Dump completed on 2026-11-28  2:00:00

        """
        let sink = HashingSink()
        let scanner = DumpScanner(format: .mysqldump, sink: sink)
        try Array(dump.utf8).withUnsafeBytes { try scanner.consume($0) }
        _ = try scanner.finish()
        #expect(scanner.binlogPosition == BinlogPosition(file: "mysql-bin.000003", position: 1234, gtid: "0-1-7"))
        let mysql8 = BinlogPosition.parseChangeMaster("-- CHANGE REPLICATION SOURCE TO SOURCE_LOG_FILE='binlog.000002', SOURCE_LOG_POS=157;")
        #expect(mysql8?.file == "binlog.000002" && mysql8?.position == 157)
    }
}
