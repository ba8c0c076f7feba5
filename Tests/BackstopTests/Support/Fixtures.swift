import Foundation
import Testing

/// Small real dumps checked in under `Tests/BackstopTests/Fixtures/` (made by
/// `scripts/make-fixtures.sh` from live MariaDB and PostgreSQL servers; see the README there), so
/// scanner, verifier and logical-restore tests need no database server. Read from the source tree
/// next to this file (`#filePath`), not copied as bundle resources.
enum Fixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures").path

    /// The bytes of fixture `name`; a missing one says how to make it.
    static func bytes(_ name: String) throws -> [UInt8] {
        let path = directory + "/" + name
        guard let data = FileManager.default.contents(atPath: path) else {
            throw FixtureError(description: "fixture \(path) is missing; regenerate the fixtures with scripts/make-fixtures.sh")
        }
        return Array(data)
    }

    /// `mariadb-dump --databases shop crm 'we`ird'` (with routines, events and triggers).
    static func mariadbDatabases() throws -> [UInt8] { try bytes("mariadb-databases.sql") }
    /// `mariadb-dump shop`: one database, no `CREATE DATABASE`.
    static func mariadbShop() throws -> [UInt8] { try bytes("mariadb-shop.sql") }
    /// `mariadb-dump --compact shop`: no header, no completion comment.
    static func mariadbShopCompact() throws -> [UInt8] { try bytes("mariadb-shop-compact.sql") }
    /// `pg_dumpall` of a cluster with `ledger` and `inventory`: twice unchanged, then after one
    /// row was added to `ledger`.
    static func pgDumpall(_ which: String = "") throws -> [UInt8] { try bytes(which.isEmpty ? "pg-dumpall.sql" : "pg-dumpall-\(which).sql") }
    /// Plain `pg_dump --no-blobs shop`: `public.customers`, `public.orders`, `audit.log`.
    static func pgShop() throws -> [UInt8] { try bytes("pg-shop.sql") }

    /// `pg-dumpall.sql` with `rows` generated rows added to `ledger`'s `entries` (about 12 bytes
    /// each), so the dump spans several 2 MiB frames.
    static func bigPgDumpall(rows: Int = 400_000, seed: UInt64 = 1999) throws -> [UInt8] {
        let text = String(decoding: try pgDumpall(), as: UTF8.self)
        let copy = "COPY public.entries (id, amount) FROM stdin;\n"
        let at = try #require(text.range(of: copy), "pg-dumpall.sql has ledger's entries").upperBound
        var gen = SeededBytes(seed: seed)
        var generated = ""
        generated.reserveCapacity(rows * 14)
        for id in 100..<(100 + rows) { generated += "\(id)\t\(gen.next() % 100_000)\n" }
        return Array((text[..<at] + generated + text[at...]).utf8)
    }

    /// `mariadb-shop.sql` with about `megabytes` MB of generated rows added to its `orders` data,
    /// so that database spans several 2 MiB frames: the real dump's header, comments, table
    /// definitions and trailer around rows too large to check in (they are never loaded into a
    /// server: `item` is a VARCHAR(40)).
    static func bigMariaDBShop(megabytes: Int = 5) throws -> [UInt8] {
        let text = String(decoding: try mariadbShop(), as: UTF8.self)
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let insert = try #require(lines.firstIndex { $0.hasPrefix("INSERT INTO `orders` VALUES") }, "mariadb-shop.sql has orders rows")
        var gen = SeededBytes(seed: 2024)
        var rows: [String] = []
        var id = 100
        for _ in 0..<(megabytes * 1_000_000 / 64_000) {
            var values: [String] = []
            for _ in 0..<50 {
                values.append("(\(id),'\(String(decoding: gen.bytes(1_270).map { 97 + $0 % 26 }, as: UTF8.self))')")
                id += 1
            }
            rows.append("INSERT INTO `orders` VALUES " + values.joined(separator: ",") + ";")
        }
        lines.insert(contentsOf: rows, at: insert + 1)
        return Array(lines.joined(separator: "\n").utf8)
    }
}

struct FixtureError: Error, CustomStringConvertible {
    var description: String
}
