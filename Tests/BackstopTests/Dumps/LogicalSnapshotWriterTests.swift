import Foundation
import Testing
@testable import Backstop

/// What the logical writer refuses or warns about, on real dump output (the checked-in fixtures).
@Suite struct LogicalSnapshotWriterTests {
    func backup(_ repo: Repository, _ bytes: [UInt8], _ dir: TemporaryDirectory, format: DumpFormatChoice = .auto,
                warn: ((String) -> Void)? = nil) throws -> Manifest {
        try writeFile(dir.sub("in"), bytes)
        let fd = open(dir.sub("in"), O_RDONLY)
        defer { close(fd) }
        return try LogicalSnapshotWriter(input: .fileDescriptor(fd), format: format, options: BackupOptions(source: "app"), warn: warn).write(to: repo)
    }

    // Item 2: `mariadb-dump --compact` has no header and no completion comment: stored as raw,
    // with a warning that a truncated copy would not be detected. A complete dump of the same
    // source is then accepted under --format auto (raw → a checked format loses no check) with a
    // notice; but a raw stream after it is refused until the format is named.
    @Test func compactDumpWarnsAndOnlyAChangeAwayFromACheckedFormatIsRefused() throws {
        let compact = try Fixtures.mariadbShopCompact()
        let dir = TemporaryDirectory()
        let repo = try makeRepository(dir)
        let warnings = Locked<[String]>([])
        let collect: (String) -> Void = { w in warnings.set(warnings.get() + [w]) }
        let m = try backup(repo, compact, dir, warn: collect)
        #expect(m.dumpFormat == .raw)
        #expect(warnings.get().count == 1 && warnings.get()[0].contains("--compact") && warnings.get()[0].contains("truncated"), "\(warnings.get())")

        warnings.set([])
        let full = try Fixtures.mariadbShop()
        let upgraded = try backup(repo, full, dir, warn: collect)
        #expect(upgraded.dumpFormat == .mysqldump)
        #expect(warnings.get().count == 1 && warnings.get()[0].contains("now recognised as mysqldump") && warnings.get()[0].contains("\(m.id)"),
                "\(warnings.get())")

        do {
            _ = try backup(repo, compact, dir)
            Issue.record("a raw stream after a mysqldump snapshot must be refused under --format auto")
        } catch BackupError.formatChanged(let source, let detected, let previous, let id) {
            #expect(source == "app" && detected == .raw && previous == .mysqldump && id == upgraded.id)
        }
        #expect(try repo.catalog.snapshots().count == 2, "nothing stored")
        #expect(try backup(repo, compact, dir, format: .raw).dumpFormat == .raw)
    }

    // Review finding 2: pg_dump -Fc/-Ft sources were stored as raw before backstop recognised
    // them; the first night after the upgrade must not be refused. A change between two checked
    // formats (-Fc → -Ft) still is.
    @Test func aPgDumpArchiveSourceStoredAsRawIsAcceptedOnceRecognised() throws {
        let custom = try PgArchiveTests.Kind.customPipe.fixture()
        let dir = TemporaryDirectory()
        let repo = try makeRepository(dir)
        let old = try backup(repo, custom, dir, format: .raw)   // what earlier versions stored under auto
        #expect(old.dumpFormat == .raw)

        let warnings = Locked<[String]>([])
        let m = try backup(repo, custom, dir) { w in warnings.set(warnings.get() + [w]) }
        #expect(m.dumpFormat == .pgdumpCustom)
        #expect(warnings.get().count == 1 && warnings.get()[0].contains("now recognised as pgdump-custom"), "\(warnings.get())")

        let tar = try PgArchiveTests.Kind.tar.fixture()
        do {
            _ = try backup(repo, tar, dir)
            Issue.record("pgdump-custom → pgdump-tar must be refused under --format auto")
        } catch BackupError.formatChanged(_, let detected, let previous, let id) {
            #expect(detected == .pgdumpTar && previous == .pgdumpCustom && id == m.id)
        }
        #expect(try repo.catalog.snapshots().count == 2, "nothing stored")
    }
}
