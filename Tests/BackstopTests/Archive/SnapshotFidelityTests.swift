import Foundation
import Testing
@testable import Backstop

/// Fidelity of filesystem snapshots: names as bytes, nanosecond mtimes, holes, and a stream that
/// does not depend on atime or ctime. GNU tar (reading the stored payload through `zstd -dc`) is
/// the oracle: what it extracts must be what was backed up.
@Suite struct SnapshotFidelityTests {
    // MARK: helpers working on byte paths (never through String)

    /// `base` (UTF-8) joined with raw name bytes.
    func join(_ base: String, _ name: [UInt8]) -> [UInt8] { Array(base.utf8) + [0x2F] + name }

    func withCPath<T>(_ path: [UInt8], _ body: (UnsafePointer<CChar>) -> T) -> T {
        (path + [0]).withUnsafeBufferPointer { $0.withMemoryRebound(to: CChar.self) { body($0.baseAddress!) } }
    }

    func create(_ path: [UInt8], _ content: [UInt8]) throws {
        let fd = withCPath(path) { open($0, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644) }
        guard fd >= 0 else { throw FileError.open(path: EntryRecord.display(path), errno: errno) }
        defer { close(fd) }
        _ = content.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    }

    func lstatBytes(_ path: [UInt8]) -> stat? {
        var st = stat()
        return withCPath(path) { lstat($0, &st) } == 0 ? st : nil
    }

    func setTimes(_ path: String, mtime: timespec, atime: timespec? = nil) {
        var times = [atime ?? timespec(tv_sec: 0, tv_nsec: (1 << 30) - 2)  /* UTIME_OMIT */, mtime]
        utimensat(AT_FDCWD, path, &times, AT_SYMLINK_NOFOLLOW)
    }

    func backup(_ repo: Repository, _ paths: [String]) throws -> Manifest {
        try FilesystemSnapshotWriter(paths: paths, options: BackupOptions(source: "fidelity")).write(to: repo)
    }

    /// Format 2: a shell command writing the payload's zstd stream (the README's recipe).
    func payloadPath(_ repo: Repository, _ m: Manifest) -> String { repo.catFramesCommand(m) }

    func streamBytes(_ repo: Repository, _ m: Manifest) throws -> [UInt8] {
        let sink = MemorySink()
        try SnapshotReader(repository: repo, manifest: m).payload().readAll(into: sink)
        return sink.bytes
    }

    // MARK: item 6: names are bytes

    /// Non-UTF-8 bytes, and the NFC and NFD spellings of one name.
    let badFile: [UInt8] = Array("bad".utf8) + [0xFF]
    let badDir: [UInt8] = [0x64, 0xFF]  // "d\xff"
    let latin1: [UInt8] = Array("caf".utf8) + [0xE9, 0x2E, 0x74, 0x78, 0x74]  // "café.txt" in ISO-8859-1
    let nfc: [UInt8] = Array("caf".utf8) + [0xC3, 0xA9]  // "café", precomposed
    let nfd: [UInt8] = Array("cafe".utf8) + [0xCC, 0x81]  // "café", e + combining acute
    let badLink: [UInt8] = Array("link".utf8) + [0xFE]
    let badHard: [UInt8] = Array("hard".utf8) + [0xFD]

    func makeByteNamedTree(_ src: String) throws {
        try FileManager.default.createDirectory(atPath: src, withIntermediateDirectories: true)
        try create(join(src, badFile), Array("bad\n".utf8))
        #expect(withCPath(join(src, badDir)) { mkdir($0, 0o755) } == 0)
        try create(join(src, badDir) + Array("/inner".utf8), Array("inner\n".utf8))
        try create(join(src, badDir) + [0x2F] + badFile, Array("nested\n".utf8))
        try create(join(src, latin1), Array("latin1\n".utf8))
        try create(join(src, nfc), Array("NFC\n".utf8))
        try create(join(src, nfd), Array("NFD\n".utf8))
        #expect(withCPath(badFile) { target in withCPath(join(src, badLink)) { symlink(target, $0) } } == 0)
        #expect(withCPath(join(src, badFile)) { from in withCPath(join(src, badHard)) { link(from, $0) } } == 0)
    }

    /// Proves: names that are not UTF-8 (a file, a directory and its subtree, a symlink and its
    /// target, a hard link) and the NFC and NFD spellings of one name are stored as exact bytes,
    /// without warnings, listed losslessly in the entry list, and GNU tar lists and extracts the
    /// exact bytes back.
    @Test func namesAreStoredAsExactBytes() throws {
        let dir = TemporaryDirectory()
        let src = dir.sub("src")
        try makeByteNamedTree(src)
        let repo = try makeRepository(dir)
        let m = try backup(repo, [src])
        #expect(m.warnings.isEmpty, "\(m.warnings)")

        let entries = try SnapshotReader(repository: repo, manifest: m).entries()
        let prefix = Array("src/".utf8)
        let expected: [[UInt8]] = [Array("src".utf8)] + [
            badFile, badDir, badDir + Array("/inner".utf8), badDir + [0x2F] + badFile, latin1, nfc, nfd, badLink, badHard,
        ].map { prefix + $0 }
        #expect(Set(entries.map(\.rawPath)) == Set(expected))
        #expect(entries.count == expected.count, "the NFC and NFD spellings are two entries")
        // Walk order: each directory's children sorted bytewise.
        let top = entries.map(\.rawPath).filter { $0.starts(with: prefix) && !$0.dropFirst(prefix.count).contains(0x2F) }
        #expect(top == top.sorted { $0.lexicographicallyPrecedes($1) })
        let byPath = Dictionary(entries.map { ($0.rawPath, $0) }, uniquingKeysWith: { a, _ in a })
        #expect(byPath[prefix + badFile]?.sha256 == SHA256Hasher.digest(Array("bad\n".utf8)))
        #expect(byPath[prefix + nfd]?.sha256 == SHA256Hasher.digest(Array("NFD\n".utf8)))
        #expect(byPath[prefix + nfc]?.sha256 == SHA256Hasher.digest(Array("NFC\n".utf8)))
        #expect(byPath[prefix + badLink]?.type == .symlink)
        #expect(byPath[prefix + badLink]?.rawLinkTarget == badFile)
        #expect(byPath[prefix + badHard]?.type == .hardlink)
        #expect(byPath[prefix + badHard]?.rawLinkTarget == prefix + badFile)

        // The real GNU tar lists the exact bytes (literal quoting) ...
        let payload = payloadPath(repo, m)
        for locale in ["C", "C.UTF-8"] {
            let list = try shell("\(payload) | zstd -dc | LC_ALL=\(locale) tar --quoting-style=literal -tf -")
            #expect(list.status == 0, "\(list.stderr)")
            let lines = Set(list.stdout.split(separator: 0x0A).map { Array($0) }.map { $0.last == 0x2F ? Array($0.dropLast()) : $0 })
            #expect(lines == Set(expected), "tar -tf in \(locale)")
        }
        // ... and extracts them, in either locale.
        for locale in ["C", "C.UTF-8"] {
            let out = dir.sub("out-" + locale)
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            let x = try shell("\(payload) | zstd -dc | LC_ALL=\(locale) tar -xf - -C '\(out)'")
            #expect(x.status == 0, "\(x.stderr)")
            for path in expected {
                #expect(lstatBytes(join(out, path)) != nil, "tar -x in \(locale) restored \(EntryRecord.escaped(path))")
            }
            let diff = try shell("diff -r --no-dereference '\(src)' '\(out)/src'")
            #expect(diff.status == 0, "\(diff.stdoutText)\(diff.stderr)")
            var target = [UInt8](repeating: 0, count: 64)
            let n = withCPath(join(out, prefix + badLink)) { p in target.withUnsafeMutableBufferPointer { b in
                b.withMemoryRebound(to: CChar.self) { readlink(p, $0.baseAddress!, $0.count) } } }
            #expect(n >= 0 && Array(target.prefix(max(n, 0))) == badFile, "symlink target bytes")
            #expect(lstatBytes(join(out, prefix + badHard))?.st_ino == lstatBytes(join(out, prefix + badFile))?.st_ino)
        }
    }

    /// Proves: the entry list's JSON holds names that are not UTF-8 losslessly, and a list written
    /// before names were bytes still decodes.
    @Test func entryListJSONIsLossless() throws {
        let record = EntryRecord(rawPath: Array("src/".utf8) + badFile, type: .symlink, mode: 0o777, uid: 1, gid: 2,
                                 mtime: Date(timeIntervalSince1970: 0), size: 0, sha256: nil,
                                 rawLinkTarget: badDir, offset: 0, length: 512)
        let data = try Timestamp.jsonEncoder(pretty: false).encode(record)
        let back = try Timestamp.jsonDecoder().decode(EntryRecord.self, from: data)
        #expect(back == record)
        #expect(back.rawPath == Array("src/".utf8) + badFile && back.rawLinkTarget == badDir)
        let old = #"{"gid":0,"length":1024,"mode":420,"mtime":"2020-09-13T12:26:40.000Z","offset":0,"path":"a/b","size":3,"type":"file","uid":0}"#
        let decoded = try Timestamp.jsonDecoder().decode(EntryRecord.self, from: Data(old.utf8))
        #expect(decoded.rawPath == Array("a/b".utf8))
        #expect(decoded.modificationTime == FileTime(seconds: 1_600_000_000, nanoseconds: 0))
    }

    /// Proves: file times print with nine digits and parse back exactly, before 1970 too, and
    /// the forms of older entry lists (milliseconds) and other offsets read as the same instant.
    @Test(arguments: [
        (FileTime(seconds: 1_700_000_000, nanoseconds: 987_654_321), "2023-11-14T22:13:20.987654321Z"),
        (FileTime(seconds: 0, nanoseconds: 1), "1970-01-01T00:00:00.000000001Z"),
        (FileTime(seconds: -1, nanoseconds: 999_999_999), "1969-12-31T23:59:59.999999999Z"),
        (FileTime(seconds: -14_182_940, nanoseconds: 500_000_000), "1969-07-20T20:17:40.500000000Z"),
        (FileTime(seconds: 253_402_300_799, nanoseconds: 0), "9999-12-31T23:59:59.000000000Z"),
    ])
    func fileTimesRoundTripExactly(time: FileTime, text: String) throws {
        #expect(time.description == text)
        #expect(FileTime(rfc3339: text) == time)
    }

    @Test func fileTimesParseOtherForms() throws {
        #expect(FileTime(rfc3339: "2020-09-13T12:26:40.123Z") == FileTime(seconds: 1_600_000_000, nanoseconds: 123_000_000))
        #expect(FileTime(rfc3339: "2020-09-13T14:26:40+02:00") == FileTime(seconds: 1_600_000_000, nanoseconds: 0))
        #expect(FileTime(rfc3339: "2020-09-13T12:26:40.1234567891Z") == nil, "more than nine digits are refused, not rounded")
        for bad in ["", "2020-09-13", "2020-13-01T00:00:00Z", "2020-09-13T12:26:40", "2020-09-13T12:26:40.Z", "x2020-09-13T12:26:40Z"] {
            #expect(FileTime(rfc3339: bad) == nil, "\(bad)")
        }
    }

    /// Proves: escaped names are unambiguous and on one line: invalid bytes (also the parts of a
    /// truncated or overlong sequence) as \\xNN, backslash doubled, controls escaped, valid
    /// UTF-8 (NFC or NFD) as is.
    static let escapeCases: [([UInt8], String)] = {
        var cases: [([UInt8], String)] = []
        cases.append((Array("plain/name.txt".utf8), "plain/name.txt"))
        cases.append((Array("bad".utf8) + [0xFF], #"bad\xff"#))
        cases.append((Array("a\\xff".utf8), #"a\\xff"#))
        cases.append((Array("line\nbreak\ttab".utf8) + [0x01, 0x7F], #"line\nbreak\ttab\x01\x7f"#))
        cases.append(([0xC3], #"\xc3"#))
        cases.append(([0xC0, 0xAF], #"\xc0\xaf"#))
        cases.append(([0xE2, 0x82, 0x41], #"\xe2\x82A"#))
        cases.append((Array("cafe".utf8) + [0xCC, 0x81], "cafe\u{301}"))
        cases.append((Array("caf".utf8) + [0xC3, 0xA9, 0xF0, 0x9F, 0x98, 0x80], "caf\u{E9}\u{1F600}"))
        return cases
    }()

    @Test(arguments: escapeCases)
    func namesAreEscapedForPeople(bytes: [UInt8], shown: String) {
        #expect(EntryRecord.escaped(bytes) == shown)
        #expect(Array(EntryRecord.escaped(bytes).utf8) == Array(shown.utf8))
    }

    /// Proves: `diff` tells apart names that are equal as Swift strings (NFC and NFD) or in their
    /// display form (two different invalid bytes), instead of merging them.
    @Test func diffComparesNamesAsBytes() throws {
        let dir = TemporaryDirectory()
        let src = dir.sub("src")
        try FileManager.default.createDirectory(atPath: src, withIntermediateDirectories: true)
        try create(join(src, nfc), Array("NFC\n".utf8))
        try create(join(src, Array("x".utf8) + [0xFF]), Array("ff\n".utf8))
        let repo = try makeRepository(dir)
        let a = try backup(repo, [src])
        try create(join(src, nfd), Array("NFD\n".utf8))
        try create(join(src, Array("x".utf8) + [0xFE]), Array("fe\n".utf8))
        let b = try backup(repo, [src])
        let diff = try SnapshotDiff.compute(repo, from: a.id, to: b.id)
        #expect(diff.added == ["src/cafe\u{301}", "src/x\\xfe"].sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) },
                "\(diff.added)")
        #expect(Set(diff.added.map { Array($0.utf8) }).contains(Array("src/".utf8) + nfd), "the NFD name keeps its bytes")
        #expect(diff.removed.isEmpty && diff.changed.isEmpty)
        #expect(diff.unchanged == 3)
    }

    // MARK: item 7: nanosecond mtimes; atime and ctime stay out of the stream

    /// Proves: mtimes keep their nanoseconds for files, directories and symlinks without xattrs:
    /// in the entry list (exactly, 9 digits in its JSON), in the pax headers (`tar --full-time`),
    /// and after `tar -x`.
    @Test func mtimesKeepNanoseconds() throws {
        let dir = TemporaryDirectory()
        let src = dir.sub("src")
        try writeFile(src + "/sub/f", Array("f\n".utf8))
        symlink("sub/f", src + "/l")
        let fileTime = timespec(tv_sec: 1_700_000_000, tv_nsec: 987_654_321)
        setTimes(src + "/sub/f", mtime: fileTime)
        setTimes(src + "/l", mtime: timespec(tv_sec: 1_700_000_001, tv_nsec: 1))
        setTimes(src + "/sub", mtime: timespec(tv_sec: 1_700_000_002, tv_nsec: 500_000_000))
        setTimes(src, mtime: timespec(tv_sec: 1_600_000_000, tv_nsec: 0))
        let repo = try makeRepository(dir)
        let m = try backup(repo, [src])
        #expect(m.warnings.isEmpty)

        let entries = Dictionary(uniqueKeysWithValues: try SnapshotReader(repository: repo, manifest: m).entries().map { ($0.path, $0) })
        #expect(entries["src/sub/f"]?.modificationTime == FileTime(seconds: 1_700_000_000, nanoseconds: 987_654_321))
        #expect(entries["src/l"]?.modificationTime == FileTime(seconds: 1_700_000_001, nanoseconds: 1))
        #expect(entries["src/sub"]?.modificationTime == FileTime(seconds: 1_700_000_002, nanoseconds: 500_000_000))
        #expect(entries["src"]?.modificationTime == FileTime(seconds: 1_600_000_000, nanoseconds: 0))
        let json = try shell("zstd -dc '\(repo.snapshotDirectory(m.id))/entries.jsonl.zst'")
        #expect(json.stdoutText.contains(#""mtime":"2023-11-14T22:13:20.987654321Z""#), "\(json.stdoutText)")

        let payload = payloadPath(repo, m)
        let listing = try shell("\(payload) | zstd -dc | TZ=UTC tar --full-time -tvf -")
        #expect(listing.stdoutText.contains("2023-11-14 22:13:20.987654321 src/sub/f"), "\(listing.stdoutText)")
        let out = dir.sub("out")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let x = try shell("\(payload) | zstd -dc | tar -xf - -C '\(out)'")
        #expect(x.status == 0, "\(x.stderr)")
        for (path, want) in [("src/sub/f", fileTime), ("src/l", timespec(tv_sec: 1_700_000_001, tv_nsec: 1)),
                             ("src/sub", timespec(tv_sec: 1_700_000_002, tv_nsec: 500_000_000))] {
            var st = stat()
            lstat(out + "/" + path, &st)
            #expect(st.st_mtim.tv_sec == want.tv_sec && st.st_mtim.tv_nsec == want.tv_nsec, "mtime of \(path) after tar -x")
        }
    }

    /// Proves: an unchanged tree backed up twice gives a byte-identical tar stream although its
    /// files were read (atime) and chmod'ed and back (ctime) in between, so atime and ctime never
    /// reach the stored bytes (deduplication depends on it).
    @Test func unchangedTreeGivesAnIdenticalStream() throws {
        let dir = TemporaryDirectory()
        let src = dir.sub("src")
        var gen = SeededBytes(seed: 7)
        try writeFile(src + "/a", gen.bytes(10_000))
        try writeFile(src + "/sub/b", gen.text(5_000))
        try writeFile(src + "/sub/c", [])
        symlink("a", src + "/l")
        let xattr = try shell("setfattr -n user.k -v v '\(src)/sub/b'")
        #expect(xattr.status == 0, "\(xattr.stderr)")
        for (i, p) in ["a", "sub/b", "sub/c", "l", "sub", ""].enumerated() {
            setTimes(src + "/" + p, mtime: timespec(tv_sec: 1_700_000_000 + i, tv_nsec: 123_456_789 * (i % 2)),
                     atime: timespec(tv_sec: 1_000_000_000, tv_nsec: 5))
        }
        let repo = try makeRepository(dir)
        let first = try backup(repo, [src])

        var before = stat()
        stat(src + "/a", &before)
        for p in ["a", "sub/b", "sub", ""] {
            var st = stat()
            stat(src + "/" + p, &st)
            setTimes(src + "/" + p, mtime: st.st_mtim, atime: timespec(tv_sec: 1_800_000_000, tv_nsec: 77))
            chmod(src + "/" + p, 0o600)
            chmod(src + "/" + p, st.st_mode & 0o7777)
        }
        _ = try readFile(src + "/a")
        var after = stat()
        stat(src + "/a", &after)
        #expect(after.st_atim.tv_sec != before.st_atim.tv_sec, "the test changed the atime")
        #expect(after.st_ctim.tv_sec != before.st_ctim.tv_sec || after.st_ctim.tv_nsec != before.st_ctim.tv_nsec, "the test changed the ctime")
        #expect(after.st_mtim.tv_sec == before.st_mtim.tv_sec && after.st_mtim.tv_nsec == before.st_mtim.tv_nsec)

        let second = try backup(repo, [src])
        let a = try streamBytes(repo, first), b = try streamBytes(repo, second)
        #expect(a.count == b.count)
        #expect(a == b, "identical tar streams")
        #expect(first.sha256 == second.sha256)
    }

    // MARK: item 8: sparse files keep their holes

    /// Proves: sparse files are stored with their holes (GNU sparse 1.0 map, only the data
    /// segments in the stream), their digest covers the logical content (holes as zeros), and
    /// GNU tar extracts them sparse and identical, for data islands in the middle, a file that
    /// starts with data, one that ends with a hole, and one that is all hole.
    @Test func sparseFilesKeepTheirHoles() throws {
        let dir = TemporaryDirectory()
        let src = dir.sub("src")
        try FileManager.default.createDirectory(atPath: src, withIntermediateDirectories: true)
        let mib: Int64 = 1 << 20
        var gen = SeededBytes(seed: 9)
        // name, logical size, data islands (offset, bytes)
        let files: [(String, Int64, [(Int64, [UInt8])])] = [
            ("islands", 128 * mib, [(10 * mib, gen.bytes(4096)), (100 * mib + 4096, gen.bytes(8192)), (128 * mib - 4096, gen.bytes(4096))]),
            ("head", 64 * mib, [(0, gen.bytes(12_288))]),
            ("allhole", 32 * mib, []),
        ]
        for (name, size, islands) in files {
            let fd = open(src + "/" + name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            #expect(fd >= 0)
            #expect(ftruncate(fd, off_t(size)) == 0)
            for (offset, bytes) in islands {
                #expect(bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(offset)) } == bytes.count)
            }
            close(fd)
            var st = stat()
            stat(src + "/" + name, &st)
            try #require(Int64(st.st_blocks) * 512 < mib, "\(name) is sparse on the test filesystem (\(st.st_blocks) blocks)")
        }
        try writeFile(src + "/dense", gen.bytes(100_000))
        let repo = try makeRepository(dir)
        let m = try backup(repo, [src])
        #expect(m.warnings.isEmpty)
        #expect(m.bytesIn < 2 * mib, "the stream holds the data segments only: \(m.bytesIn) bytes")

        let entries = Dictionary(uniqueKeysWithValues: try SnapshotReader(repository: repo, manifest: m).entries().map { ($0.path, $0) })
        for (name, size, islands) in files {
            #expect(entries["src/" + name]?.size == size)
            // The digest is over the logical content, holes as zeros.
            let hasher = SHA256Hasher()
            var position: Int64 = 0
            let zeros = [UInt8](repeating: 0, count: Int(mib))
            func zeroFill(to end: Int64) {
                while position < end {
                    let n = Int(min(mib, end - position))
                    zeros.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                    position += Int64(n)
                }
            }
            for (offset, bytes) in islands {
                zeroFill(to: offset)
                bytes.withUnsafeBytes { hasher.update($0) }
                position += Int64(bytes.count)
            }
            zeroFill(to: size)
            #expect(entries["src/" + name]?.sha256 == hasher.finalize(), "digest of \(name)")
        }

        let out = dir.sub("out")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let x = try shell("\(payloadPath(repo, m)) | zstd -dc | tar -xf - -C '\(out)'")
        #expect(x.status == 0, "\(x.stderr)")
        for name in files.map(\.0) + ["dense"] {
            let cmp = try shell("cmp '\(src)/\(name)' '\(out)/src/\(name)'")
            #expect(cmp.status == 0, "\(name) restored identical: \(cmp.stdoutText)\(cmp.stderr)")
        }
        for (name, _, _) in files {
            var st = stat()
            stat(out + "/src/" + name, &st)
            #expect(Int64(st.st_blocks) * 512 < mib, "\(name) restored sparse by tar -x: \(st.st_blocks) blocks")
        }
        let du = try shell("du -k '\(out)/src/islands'")
        #expect((Int(du.stdoutText.split(separator: "\t").first ?? "") ?? .max) < 1024, "du: \(du.stdoutText)")
    }

    /// Proves: a snapshot with sparse files verifies, and `backstop restore` gives their content
    /// back (holes read as zeros), so the digests over the logical content hold end to end.
    @Test func sparseFilesVerifyAndRestore() throws {
        let dir = TemporaryDirectory()
        let src = dir.sub("src")
        try FileManager.default.createDirectory(atPath: src, withIntermediateDirectories: true)
        var gen = SeededBytes(seed: 5)
        for (name, size, island) in [("mid", 8 << 20, 3 << 20), ("tail", 4 << 20, 0), ("none", 2 << 20, -1)] {
            let fd = open(src + "/" + name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            #expect(ftruncate(fd, off_t(size)) == 0)
            if island >= 0 {
                let bytes = gen.bytes(8192)
                #expect(bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(island)) } == bytes.count)
            }
            close(fd)
        }
        let repo = try makeRepository(dir)
        let m = try backup(repo, [src])
        #expect(m.bytesIn < 1 << 20, "stored sparse: \(m.bytesIn)")
        let result = Verifier(repository: repo, id: m.id).verify(mode: .full)
        #expect(result.passed, "\(result.problems)")
        _ = try FilesystemRestore(repository: repo, manifest: m).run(to: dir.sub("restored"))
        for name in ["mid", "tail", "none"] {
            let cmp = try shell("cmp '\(src)/\(name)' '\(dir.sub("restored"))/src/\(name)'")
            #expect(cmp.status == 0, "\(name): \(cmp.stdoutText)\(cmp.stderr)")
        }
    }
}
