import Foundation
import Testing
@testable import Backstop

/// Scanner tests on dumps made by the real tools (the checked-in fixtures, see
/// Tests/BackstopTests/Fixtures/README.md): no database server needed.
@Suite struct DumpScannerTests {
    static func scan(_ dump: [UInt8], format: DumpFormat, chunk: Int = 1 << 20) throws -> ([Section], MemorySink) {
        let sink = MemorySink()
        let scanner = DumpScanner(format: format, sink: sink)
        var i = 0
        while i < dump.count {
            let n = min(chunk, dump.count - i)
            try dump[i..<(i + n)].withUnsafeBytes { try scanner.consume($0) }
            i += n
        }
        return (try scanner.finish(), sink)
    }

    /// Sections cover the stream exactly, each digest is its slice's, and the stream passes unchanged.
    static func checkCoverage(_ dump: [UInt8], _ sections: [Section], _ sink: MemorySink) {
        #expect(sink.bytes == dump)
        var offset: Int64 = 0
        for s in sections {
            #expect(s.offset == offset, "\(s.name) starts where the previous section ended")
            let slice = Array(dump[Int(s.offset)..<Int(s.offset + s.length)])
            #expect(s.sha256 == SHA256Hasher.digest(slice), "\(s.name) digest")
            offset += s.length
        }
        #expect(offset == Int64(dump.count))
    }

    @Test func mariadbDumpOfSeveralDatabases() throws {
        let dump = try Fixtures.mariadbDatabases()
        #expect(DumpFormatDetector.detect(Array(dump.prefix(65536))) == .mysqldump)
        let (sections, sink) = try Self.scan(dump, format: .mysqldump)
        Self.checkCoverage(dump, sections, sink)
        #expect(sections.first?.kind == .preamble)
        #expect(sections.last?.kind == .trailer)
        let trailer = String(decoding: dump[Int(sections.last!.offset)...], as: UTF8.self)
        #expect(trailer.hasPrefix("/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;"))
        #expect(trailer.contains("-- Dump completed"))
        let names = sections.filter { $0.kind == .database }.map(\.name)
        #expect(Set(names) == ["shop", "crm", "we`ird"])
        #expect(names.filter { $0 == "shop" }.count == 2, "shop: the tables pass, then the views pass")
        for s in sections where s.kind == .database {
            let text = String(decoding: dump[Int(s.offset)..<Int(s.offset + s.length)], as: UTF8.self)
            #expect(text.hasPrefix("--\n-- Current Database: "), "\(s.name) starts at its comment block")
        }
        // The trigger and the routine belong to shop's section, not to the next database's.
        let shop = sections.first { $0.name == "shop" }!
        let shopText = String(decoding: dump[Int(shop.offset)..<Int(shop.offset + shop.length)], as: UTF8.self)
        #expect(shopText.contains("TRIGGER shop.orders_audit") && shopText.contains("PROCEDURE `order_count`"))
    }

    @Test func mariadbDumpOfOneDatabase() throws {
        let dump = try Fixtures.mariadbShop()
        let (sections, sink) = try Self.scan(dump, format: .mysqldump)
        Self.checkCoverage(dump, sections, sink)
        #expect(sections.map(\.kind) == [.preamble, .database, .trailer])
        #expect(sections[1].name == "shop")
    }

    @Test(arguments: [1, 7, 4096, 65_537])
    func chunkingDoesNotChangeSections(chunk: Int) throws {
        for dump in [try Fixtures.mariadbShop(), try Fixtures.mariadbDatabases()] {
            let (whole, _) = try Self.scan(dump, format: .mysqldump)
            let (pieces, sink) = try Self.scan(dump, format: .mysqldump, chunk: chunk)
            #expect(pieces == whole)
            #expect(sink.bytes == dump)
        }
    }

    @Test func pgDumpallHasOneSectionPerDatabase() throws {
        let dump = try Fixtures.pgDumpall()
        #expect(DumpFormatDetector.detect(Array(dump.prefix(65536))) == .pgdumpall)
        let (sections, sink) = try Self.scan(dump, format: .pgdumpall)
        Self.checkCoverage(dump, sections, sink)
        #expect(sections.first?.kind == .preamble && sections.last?.kind == .trailer)
        let databases = sections.filter { $0.kind == .database }.map(\.name)
        #expect(Set(databases).isSuperset(of: ["ledger", "inventory", "postgres", "template1"]))
        #expect(databases.count == Set(databases).count)

        // Dumped twice without changes: the \restrict keys differ, the content digests do not.
        let again = try Fixtures.pgDumpall("again")
        let (sections2, _) = try Self.scan(again, format: .pgdumpall)
        let first = Dictionary(uniqueKeysWithValues: sections.filter { $0.kind == .database }.map { ($0.name, $0) })
        for s in sections2 where s.kind == .database {
            #expect(s.comparableDigest == first[s.name]?.comparableDigest, "\(s.name) content digest is stable")
        }
        #expect(String(decoding: dump, as: UTF8.self).contains("\n\\restrict "), "pg_dumpall 15.14+ writes \\restrict keys")
        #expect(sections2.first { $0.name == "ledger" }?.sha256 != first["ledger"]?.sha256)

        // A row added to ledger: its content digest changes, no other database's does.
        let (changed, _) = try Self.scan(try Fixtures.pgDumpall("changed"), format: .pgdumpall)
        for s in changed where s.kind == .database {
            #expect((s.comparableDigest == first[s.name]?.comparableDigest) == (s.name != "ledger"), "\(s.name)")
        }
    }

    @Test func pgDumpHasOneSectionPerTable() throws {
        let dump = try Fixtures.pgShop()
        #expect(DumpFormatDetector.detect(Array(dump.prefix(65536))) == .pgdump)
        let (sections, sink) = try Self.scan(dump, format: .pgdump)
        Self.checkCoverage(dump, sections, sink)
        #expect(sections.filter { $0.kind == .table }.map(\.name).sorted() == ["audit.log", "public.customers", "public.orders"])
        #expect(sections.first?.kind == .preamble && sections.last?.kind == .trailer)
        let trailer = String(decoding: dump[Int(sections.last!.offset)...], as: UTF8.self)
        #expect(trailer.contains("PRIMARY KEY") && trailer.contains("PostgreSQL database dump complete"))
    }

    @Test(arguments: [DumpFormat.mysqldump, .pgdump, .pgdumpall])
    func truncatedDumpsAreRefused(format: DumpFormat) throws {
        let dump: [UInt8]
        switch format {
        case .mysqldump: dump = try Fixtures.mariadbShop()
        case .pgdump: dump = try Fixtures.pgShop()
        default: dump = try Fixtures.pgDumpall()
        }
        #expect(throws: Never.self, "the whole dump is complete") { try Self.scan(dump, format: format) }
        for cut in [dump.count / 3, dump.count - 60] {
            #expect(throws: BackupError.self) { try Self.scan(Array(dump.prefix(cut)), format: format) }
        }
    }

    @Test func veryLongLinesPassThroughUnbuffered() throws {
        var text = "-- MySQL dump 10.13\n--\n-- Current Database: `big`\n--\n\nUSE `big`;\nINSERT INTO t VALUES "
        text += String(repeating: "(1,'abcdefgh'),", count: 40_000) + "(2,'z');\n"
        text += "/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;\n\n-- Dump completed on 2024-03-24 22:00:00\n"
        let dump = Array(text.utf8)
        let (sections, sink) = try Self.scan(dump, format: .mysqldump, chunk: 10_000)
        Self.checkCoverage(dump, sections, sink)
        #expect(sections.map(\.name) == ["preamble", "big", "trailer"])
    }

    // MARK: - `\restrict` (PostgreSQL 15.14+), whatever the installed version writes

    /// A pg_dumpall stream as PostgreSQL 15.14+ writes it: every part between `\restrict KEY`
    /// and `\unrestrict KEY`, a new random key each time. `drop` leaves out one database's
    /// `\unrestrict` line.
    static func syntheticDumpall(keys: [String: String], ledgerAmount: Int = 20, drop: String? = nil) -> [UInt8] {
        func part(_ db: String, _ body: String) -> String {
            let key = keys[db]!
            return "--\n-- PostgreSQL database dump\n--\n\n\\restrict \(key)\n\n" + body
                + (drop == db ? "" : "\\unrestrict \(key)\n") + "\n--\n-- PostgreSQL database dump complete\n--\n\n"
        }
        var s = "--\n-- PostgreSQL database cluster dump\n--\n\n\\restrict \(keys["globals"]!)\n\n"
        s += "SET default_transaction_read_only = off;\nCREATE ROLE app;\n\n\\unrestrict \(keys["globals"]!)\n\n"
        s += "--\n-- Databases\n--\n\n"
        for (db, body) in [("ledger", "CREATE TABLE public.entries (id integer, amount integer);\nCOPY public.entries (id, amount) FROM stdin;\n1\t10\n2\t\(ledgerAmount)\n\\.\n\n"),
                           ("inventory", "CREATE TABLE public.items (id integer, name text);\nCOPY public.items (id, name) FROM stdin;\n1\tbolt\n\\.\n\n")] {
            s += "--\n-- Database \"\(db)\" dump\n--\n\nCREATE DATABASE \(db);\n\\connect \(db)\n\n" + part(db, body)
        }
        s += "--\n-- PostgreSQL database cluster dump complete\n--\n\n"
        return Array(s.utf8)
    }

    static func keys(_ seed: String) -> [String: String] {
        ["globals": "G\(seed)x7Qk2", "ledger": "L\(seed)p0Zr9", "inventory": "I\(seed)w3Mn1"]
    }

    /// Proves: dumps that differ only in their `\restrict` keys have different stored digests and
    /// the same content digests (so `diff` reports nothing changed), while a changed row still
    /// changes its database's content digest and no other.
    @Test func restrictKeysDoNotChangeContentDigestsButChangedRowsDo() throws {
        let a = Self.syntheticDumpall(keys: Self.keys("aaaa"))
        let b = Self.syntheticDumpall(keys: Self.keys("bbbb"))
        let changed = Self.syntheticDumpall(keys: Self.keys("cccc"), ledgerAmount: 21)
        var scanned: [[String: Section]] = []
        for dump in [a, b, changed] {
            let (sections, sink) = try Self.scan(dump, format: .pgdumpall, chunk: 7)
            Self.checkCoverage(dump, sections, sink)
            scanned.append(Dictionary(uniqueKeysWithValues: sections.filter { $0.kind == .database }.map { ($0.name, $0) }))
        }
        #expect(Set(scanned[0].keys) == ["ledger", "inventory"])
        for db in ["ledger", "inventory"] {
            #expect(scanned[0][db]!.sha256 != scanned[1][db]!.sha256, "\(db): the keys are in the stored bytes")
            #expect(scanned[0][db]!.comparableDigest == scanned[1][db]!.comparableDigest, "\(db): same content")
        }
        #expect(scanned[2]["ledger"]!.comparableDigest != scanned[0]["ledger"]!.comparableDigest, "a changed row is a change")
        #expect(scanned[2]["inventory"]!.comparableDigest == scanned[0]["inventory"]!.comparableDigest)
    }

    /// Proves: a `\restrict` never closed by its `\unrestrict` (a cut or spliced dump) makes the
    /// dump incomplete, even with the completion marker at its end.
    @Test(arguments: ["ledger", "inventory", "globals"])
    func anUnmatchedRestrictIsAnIncompleteDump(drop: String) throws {
        var dump = Self.syntheticDumpall(keys: Self.keys("dddd"), drop: drop == "globals" ? nil : drop)
        if drop == "globals" {
            dump = Array(String(decoding: dump, as: UTF8.self).replacingOccurrences(of: "\\unrestrict Gddddx7Qk2\n", with: "").utf8)
        }
        #expect(!String(decoding: dump, as: UTF8.self).contains("\\unrestrict \(Self.keys("dddd")[drop]!)"))
        let error = #expect(throws: BackupError.self) { try Self.scan(dump, format: .pgdumpall) }
        guard case let .incompleteDump(format, _)? = error else {
            Issue.record("expected incompleteDump, got \(String(describing: error))")
            return
        }
        #expect(format == .pgdumpall)
        // The same dump with every key matched is complete.
        #expect(throws: Never.self) { try Self.scan(Self.syntheticDumpall(keys: Self.keys("dddd")), format: .pgdumpall) }
    }
}
