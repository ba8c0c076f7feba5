import Foundation
import Testing
@testable import Backstop

/// What the logical writer refuses or warns about, on real mariadb-dump output.
@Suite struct LogicalSnapshotWriterTests {
    func backup(_ repo: Repository, _ bytes: [UInt8], _ dir: TemporaryDirectory, format: DumpFormatChoice = .auto,
                warn: ((String) -> Void)? = nil) throws -> Manifest {
        try writeFile(dir.sub("in"), bytes)
        let fd = open(dir.sub("in"), O_RDONLY)
        defer { close(fd) }
        return try LogicalSnapshotWriter(input: .fileDescriptor(fd), format: format, options: BackupOptions(source: "app"), warn: warn).write(to: repo)
    }

    // Item 2: `mariadb-dump --compact` has no header and no completion comment: stored as raw,
    // with a warning that a truncated copy would not be detected; then a complete dump of the
    // same source is refused under --format auto (its format differs) until it is named.
    @Test func compactDumpWarnsAndAFormatChangeIsRefused() throws {
        let db = try LogicalRestoreTests.mariadb.get()
        try db.sql("DROP DATABASE IF EXISTS lsw_app; CREATE DATABASE lsw_app; CREATE TABLE lsw_app.t (id INT); INSERT INTO lsw_app.t VALUES (1);")
        let compact = try runProcess("mariadb-dump", ["--no-defaults", "-S", db.socket, "-u", "root", "--compact", "lsw_app"])
        #expect(compact.status == 0, "\(compact.stderr)")
        let dir = TemporaryDirectory()
        let repo = try makeRepository(dir)
        let warnings = Locked<[String]>([])
        let m = try backup(repo, compact.stdout, dir) { w in warnings.set(warnings.get() + [w]) }
        #expect(m.dumpFormat == .raw)
        #expect(warnings.get().count == 1 && warnings.get()[0].contains("--compact") && warnings.get()[0].contains("truncated"), "\(warnings.get())")

        let full = try db.dump("lsw_app")
        do {
            _ = try backup(repo, full, dir)
            Issue.record("a mysqldump stream after raw snapshots must be refused under --format auto")
        } catch BackupError.formatChanged(let source, let detected, let previous, let id) {
            #expect(source == "app" && detected == .mysqldump && previous == .raw && id == m.id)
        }
        #expect(try repo.catalog.snapshots().count == 1, "nothing stored")
        #expect(try backup(repo, full, dir, format: .mysqldump).dumpFormat == .mysqldump)
    }
}
