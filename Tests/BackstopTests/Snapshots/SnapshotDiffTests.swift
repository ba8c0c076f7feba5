import Foundation
import Testing
@testable import Backstop

/// `SnapshotDiff` on real snapshots in a real repository: filesystem entries matched by the exact
/// bytes of their names, logical sections by name and content digest.
@Suite struct SnapshotDiffTests {
    /// A source folder and a repository; `take()` snapshots the folder as it is now.
    final class Fixture {
        let dir = TemporaryDirectory("diff")
        let repo: Repository
        var src: String { dir.sub("src") }

        init() throws {
            repo = try makeRepository(dir)
            try FileSystem.makeDirectory(src)
        }

        func take() throws -> SnapshotID {
            try FilesystemSnapshotWriter(paths: [src], options: BackupOptions(source: "files")).write(to: repo).id
        }

        func takeLogical(_ text: String, _ format: DumpFormatChoice) throws -> SnapshotID {
            let file = dir.sub("dump.in")
            try writeFile(file, Array(text.utf8))
            let fd = open(file, O_RDONLY)
            defer { close(fd) }
            return try LogicalSnapshotWriter(input: .fileDescriptor(fd), format: format, options: BackupOptions(source: "db")).write(to: repo).id
        }

        /// `src/NAME` as raw bytes, so names that are not UTF-8 or not normalized stay as given.
        func rawPath(_ name: [UInt8]) -> [CChar] {
            (Array(src.utf8) + [0x2F] + name + [0]).map { CChar(bitPattern: $0) }
        }

        func create(_ name: [UInt8], _ content: [UInt8]) {
            let fd = open(rawPath(name), O_CREAT | O_WRONLY | O_TRUNC, 0o644)
            precondition(fd >= 0, "open failed: \(errno)")
            _ = content.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            close(fd)
        }

        func remove(_ name: [UInt8]) { precondition(unlink(rawPath(name)) == 0) }
    }

    /// The bytes of a reported name, so that NFC and NFD spellings (equal as Swift strings) differ.
    static func bytes(_ names: [String]) -> [[UInt8]] { names.map { Array($0.utf8) } }
    static func src(_ name: [UInt8]) -> [UInt8] { Array("src/".utf8) + name }

    static let nfc: [UInt8] = [0x63, 0x61, 0x66, 0xC3, 0xA9]            // "café", é precomposed
    static let nfd: [UInt8] = [0x63, 0x61, 0x66, 0x65, 0xCC, 0x81]      // "café", e + combining acute

    @Test func filesystemEntriesAddedRemovedAndChangedByContentModeOwnerLinkTargetAndType() throws {
        let f = try Fixture()
        let p = { (name: String) in f.src + "/" + name }
        try writeFile(p("keep"), Array("same".utf8))
        try writeFile(p("gone"), Array("bye".utf8))
        try writeFile(p("grow"), Array("abc".utf8))
        try writeFile(p("same-size"), Array("abc".utf8))
        try writeFile(p("touched"), Array("abc".utf8))
        try writeFile(p("mode"), Array("m".utf8), mode: 0o644)
        try writeFile(p("owner"), Array("o".utf8))
        try writeFile(p("kind"), Array("k".utf8))
        #expect(symlink("t1", p("link")) == 0)
        setMTime(p("touched"), 1_600_000_000)
        let a = try f.take()

        try FileSystem.removeTree(p("gone"))
        try writeFile(p("grow"), Array("abcd".utf8))
        try writeFile(p("same-size"), Array("xyz".utf8))
        setMTime(p("touched"), 1_700_000_000)
        #expect(chmod(p("mode"), 0o600) == 0)
        #expect(chown(p("owner"), 1234, 1234) == 0)
        try FileSystem.removeTree(p("kind"))
        try FileSystem.makeDirectory(p("kind"))
        #expect(unlink(p("link")) == 0 && symlink("t2", p("link")) == 0)
        try writeFile(p("new"), Array("hi".utf8))
        let b = try f.take()

        let diff = try SnapshotDiff.compute(f.repo, from: a, to: b)
        #expect(diff.from == a && diff.to == b && diff.kind == .filesystem)
        #expect(diff.added == ["src/new"])
        #expect(diff.removed == ["src/gone"])
        #expect(diff.changed.map(\.path) == ["src/grow", "src/kind", "src/link", "src/mode", "src/owner", "src/same-size"])
        let what = Dictionary(uniqueKeysWithValues: diff.changed.map { ($0.path, $0.what) })
        #expect(what["src/grow"] == ["content"])
        #expect(what["src/same-size"] == ["content"])
        #expect(what["src/mode"] == ["mode"])
        #expect(what["src/owner"] == ["owner"])
        #expect(what["src/link"] == ["link target"])
        #expect(what["src/kind"]?.first == "type")
        // `src` itself and `touched` changed only their mtime, `keep` nothing.
        #expect(diff.unchanged == 3)
        #expect(!diff.isEmpty)

        // The reverse diff swaps added and removed.
        let back = try SnapshotDiff.compute(f.repo, from: b, to: a)
        #expect(back.added == ["src/gone"] && back.removed == ["src/new"])
        #expect(back.changed.map(\.path) == diff.changed.map(\.path))

        let same = try SnapshotDiff.compute(f.repo, from: b, to: b)
        #expect(same.isEmpty)
        #expect(same.unchanged == 10)
    }

    @Test func theNFCAndNFDSpellingsOfANameAreTwoNames() throws {
        let f = try Fixture()
        f.create(Self.nfc, Array("one".utf8))
        let a = try f.take()
        f.remove(Self.nfc)
        f.create(Self.nfd, Array("one".utf8))
        let b = try f.take()
        let renamed = try SnapshotDiff.compute(f.repo, from: a, to: b)
        #expect(Self.bytes(renamed.removed) == [Self.src(Self.nfc)])
        #expect(Self.bytes(renamed.added) == [Self.src(Self.nfd)])
        #expect(renamed.changed.isEmpty)

        // Both spellings side by side: a change to one is reported for that one only.
        f.create(Self.nfc, Array("two".utf8))
        let c = try f.take()
        f.create(Self.nfd, Array("ONE".utf8))
        let d = try f.take()
        let one = try SnapshotDiff.compute(f.repo, from: c, to: d)
        #expect(one.added.isEmpty && one.removed.isEmpty)
        #expect(Self.bytes(one.changed.map(\.path)) == [Self.src(Self.nfd)])
        #expect(one.changed.map(\.what) == [["content"]])
        #expect(one.unchanged == 2)   // `src` and the NFC name
    }

    @Test func namesAreReportedInBytewiseOrder() throws {
        let f = try Fixture()
        let a = try f.take()
        let e: [UInt8] = [0x65, 0xCC, 0x81], f66: [UInt8] = [0x66], é: [UInt8] = [0xC3, 0xA9]
        for name in [é, f66, e, [0x5A]] { f.create(name, [1]) }
        let b = try f.take()
        let diff = try SnapshotDiff.compute(f.repo, from: a, to: b)
        // Bytewise: "Z" 5A < "e\u{301}" 65 CC 81 < "f" 66 < "é" C3 A9. (Swift's String order,
        // which takes both spellings of é for one, would put "f" first.)
        #expect(Self.bytes(diff.added) == [[0x5A], e, f66, é].map(Self.src))
    }

    @Test func namesThatAreNotUTF8AreMatchedByTheirBytesAndReportedEscaped() throws {
        let f = try Fixture()
        let ff: [UInt8] = Array("bad".utf8) + [0xFF], fe: [UInt8] = Array("bad".utf8) + [0xFE], fd: [UInt8] = Array("bad".utf8) + [0xFD]
        f.create(ff, Array("x".utf8))
        f.create(fe, Array("y".utf8))
        let a = try f.take()
        f.remove(ff)
        f.create(fe, Array("changed".utf8))
        f.create(fd, Array("x".utf8))
        let b = try f.take()
        let diff = try SnapshotDiff.compute(f.repo, from: a, to: b)
        #expect(diff.added == [#"src/bad\xfd"#])
        #expect(diff.removed == [#"src/bad\xff"#])
        #expect(diff.changed == [SnapshotDiff.Change(path: #"src/bad\xfe"#, what: ["content"])])
        #expect(diff.unchanged == 1)
    }

    static func mysqldump(server: String, date: String, databases: [(String, String)]) -> String {
        var s = """
            -- MariaDB dump 10.19  Distrib \(server), for debian-linux-gnu (x86_64)
            --
            -- Host: localhost    Database:
            -- ------------------------------------------------------
            -- Server version\t\(server)

            /*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;
            /*!40103 SET @OLD_TIME_ZONE=@@TIME_ZONE */;

            """
        for (name, rows) in databases {
            s += """
                --
                -- Current Database: `\(name)`
                --

                CREATE DATABASE /*!32312 IF NOT EXISTS*/ `\(name)`;

                USE `\(name)`;

                --
                -- Table structure for table `t`
                --

                CREATE TABLE `t` (`a` int);
                INSERT INTO `t` VALUES \(rows);

                """
        }
        s += """
            /*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;
            /*!40101 SET CHARACTER_SET_CLIENT=@OLD_CHARACTER_SET_CLIENT */;

            -- Dump completed on \(date)

            """
        return s
    }

    @Test func logicalSectionsAreComparedWithoutThePreambleAndTrailer() throws {
        let f = try Fixture()
        let a = try f.takeLogical(Self.mysqldump(server: "10.11.6-MariaDB", date: "2024-03-24 22:00:00",
                                                 databases: [("app", "(1),(2)"), ("old", "(9)"), ("shop", "(5)")]), .mysqldump)
        // Another server version and date (preamble and trailer), `app` unchanged.
        let b = try f.takeLogical(Self.mysqldump(server: "10.11.7-MariaDB", date: "2024-03-25 22:00:00",
                                                 databases: [("app", "(1),(2)"), ("extra", "(3)"), ("shop", "(5),(6)")]), .mysqldump)
        let diff = try SnapshotDiff.compute(f.repo, from: a, to: b)
        #expect(diff.kind == .logical)
        #expect(diff.added == ["extra"])
        #expect(diff.removed == ["old"])
        #expect(diff.changed == [SnapshotDiff.Change(path: "shop", what: ["content"])])
        #expect(diff.unchanged == 1)

        let c = try f.takeLogical(Self.mysqldump(server: "10.11.8-MariaDB", date: "2024-03-26 22:00:00",
                                                 databases: [("app", "(1),(2)"), ("extra", "(3)"), ("shop", "(5),(6)")]), .mysqldump)
        let none = try SnapshotDiff.compute(f.repo, from: b, to: c)
        #expect(none.isEmpty)
        #expect(none.unchanged == 3)
    }

    static func pgdumpall(key: String, rows: String) -> String {
        """
        --
        -- PostgreSQL database cluster dump
        --

        \\restrict cluster\(key)

        SET default_transaction_read_only = off;

        \\unrestrict cluster\(key)

        --
        -- Database "app" dump
        --

        \\restrict app\(key)

        --
        -- PostgreSQL database dump
        --

        CREATE TABLE public.t (a integer);
        COPY public.t (a) FROM stdin;
        \(rows)
        \\.

        --
        -- PostgreSQL database dump complete
        --

        \\unrestrict app\(key)

        --
        -- Database "shop" dump
        --

        \\restrict shop\(key)

        CREATE TABLE public.s (a integer);

        \\unrestrict shop\(key)

        --
        -- PostgreSQL database cluster dump complete
        --


        """
    }

    @Test func theRandomRestrictKeysOfPgDumpDoNotMakeADifference() throws {
        let f = try Fixture()
        let a = try f.takeLogical(Self.pgdumpall(key: "Qx81bXaPzQ", rows: "1"), .pgdumpall)
        let b = try f.takeLogical(Self.pgdumpall(key: "mM3k0LcYeV", rows: "1"), .pgdumpall)
        let ma = try f.repo.manifest(a), mb = try f.repo.manifest(b)
        // The stored bytes differ in every database section; their content digests do not.
        let app = { (m: Manifest) in m.sections.first { $0.name == "app" } }
        #expect(app(ma)?.sha256 != app(mb)?.sha256)
        #expect(app(ma)?.contentSHA256 != nil && app(ma)?.contentSHA256 == app(mb)?.contentSHA256)
        let same = try SnapshotDiff.compute(f.repo, from: a, to: b)
        #expect(same.isEmpty)
        #expect(same.unchanged == 2)

        let c = try f.takeLogical(Self.pgdumpall(key: "Zz0000000a", rows: "1\n2"), .pgdumpall)
        let diff = try SnapshotDiff.compute(f.repo, from: b, to: c)
        #expect(diff.changed == [SnapshotDiff.Change(path: "app", what: ["content"])])
        #expect(diff.added.isEmpty && diff.removed.isEmpty && diff.unchanged == 1)
    }

    @Test func sectionDigestsPreferTheContentDigestAndJoinSectionsOfOneName() {
        let d = { (s: String) in SHA256Hasher.digest(Array(s.utf8)) }
        func section(_ name: String, _ kind: Section.Kind, _ sha: String, _ content: String? = nil) -> Section {
            Section(name: name, kind: kind, offset: 0, length: 1, sha256: d(sha), contentSHA256: content.map(d))
        }
        let old = SnapshotDiff.digestsByName([
            section("preamble", .preamble, "p1"), section("public.t", .table, "t-key1", "t"),
            section("other", .other, "o1"), section("public.u", .table, "u"), section("trailer", .trailer, "z1"),
            section("app", .database, "a1"), section("app", .database, "a2"),
        ])
        let new = SnapshotDiff.digestsByName([
            section("preamble", .preamble, "p2"), section("public.t", .table, "t-key2", "t"),
            section("other", .other, "o2"), section("public.u", .table, "u"), section("trailer", .trailer, "z2"),
            section("app", .database, "a1"), section("app", .database, "a2-changed"),
        ])
        #expect(Set(old.keys) == ["public.t", "public.u", "app"])
        #expect(old["public.t"] == d("t") && old["public.t"] == new["public.t"])
        #expect(old["public.u"] == d("u"))
        #expect(old["app"] != new["app"])
        #expect(old["app"] != d("a1") && old["app"] != d("a2"))
    }

    @Test func snapshotsOfDifferentKindsAreNotCompared() throws {
        let f = try Fixture()
        try writeFile(f.src + "/a", [1])
        let tree = try f.take()
        let dump = try f.takeLogical(Self.mysqldump(server: "10.11.6-MariaDB", date: "2024-03-24 22:00:00",
                                                    databases: [("app", "(1)")]), .mysqldump)
        #expect(throws: RestoreError.self) { try SnapshotDiff.compute(f.repo, from: tree, to: dump) }
        #expect(throws: RestoreError.self) { try SnapshotDiff.compute(f.repo, from: dump, to: tree) }
    }
}
