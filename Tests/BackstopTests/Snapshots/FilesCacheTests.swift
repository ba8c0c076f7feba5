import Foundation
import Testing
@testable import Backstop

/// The files cache (issue #12): unchanged files reuse the parent's frames without being read;
/// what may have changed is read. Reads are counted by the walker (`FilesystemWalkCounters`):
/// tests run as root, so making a file unreadable would prove nothing.
///
/// Parents are recorded in the future (`BackupOptions.time`) where a test needs files changed
/// now to be outside the racy window (2 s before the parent's start), and the child later still
/// (the parent is the source's newest snapshot).
@Suite struct FilesCacheTests {
    static let old = 1_600_000_000   // 2020-09-13: far from any parent's start
    /// About 5 MB of small files in 7 folders: several groups of about 1 MiB.
    static let smallFiles = 1500

    /// A tree of small files (several groups), a large file (3 frames), a directory, a symlink
    /// and an empty file, all with old mtimes. Returns the tree's path and its file contents' size.
    func tree(_ dir: TemporaryDirectory) throws -> (path: String, bytes: Int64) {
        let src = dir.sub("src")
        var rng = SeededBytes(seed: 12)
        var total: Int64 = 0
        for i in 0..<Self.smallFiles {
            let data = rng.bytes(500 + Int(rng.next() % 3000))
            try writeFile(src + "/small/d\(i % 7)/f\(i)", data)
            total += Int64(data.count)
        }
        let large = rng.bytes(2_600_000)
        try writeFile(src + "/large.bin", large)
        total += Int64(large.count)
        try writeFile(src + "/empty", [])
        symlink("large.bin", src + "/link")
        // Hard links: a small file in d2 linked from d5, a second large file linked from the top.
        link(src + "/small/d2/f2", src + "/small/d5/hard")
        let large2 = rng.bytes(1_200_000)
        try writeFile(src + "/large2.bin", large2)
        total += Int64(large2.count)
        link(src + "/large2.bin", src + "/z-large.hard")
        try shell("find '\(src)' -exec touch -h -d @\(Self.old) {} +")
        return (src, total)
    }

    func backup(_ repo: Repository, _ src: String, at time: Date? = nil, cache: Bool = true,
                counters: FilesystemWalkCounters) throws -> Manifest {
        var options = BackupOptions(source: "tree", time: time)
        options.filesCache = cache
        return try FilesystemSnapshotWriter(paths: [src], options: options, counters: counters).write(to: repo)
    }

    func frames(_ repo: Repository, _ m: Manifest) throws -> [FrameRef] {
        try SnapshotReader(repository: repo, manifest: m).frameList()
    }

    func restoresAndVerifies(_ repo: Repository, _ m: Manifest, _ src: String, _ dir: TemporaryDirectory) throws {
        let target = dir.sub("restored-\(m.id.suffix)")
        _ = try FilesystemRestore(repository: repo, manifest: m).run(to: target)
        let diff = try shell("diff -r --no-dereference '\(src)' '\(target)/src'")
        #expect(diff.status == 0, "\(diff.stdoutText)\(diff.stderr)")
        let result = Verifier(repository: repo, id: m.id).verify(mode: .full)
        #expect(result.passed, "\(result.problems)")
        // With the standard tools: the frames concatenated are one zstd stream of one tar, its
        // end-of-archive where it belongs (the tar writer's offset skipped the reused bytes).
        let list = dir.sub("frames-\(m.id.suffix).txt")
        let paths = try frames(repo, m).map { repo.path + "/frames/" + String($0.id.hex.prefix(2)) + "/" + $0.id.hex + "\n" }
        try writeFile(list, Array(paths.joined().utf8))
        let plain = dir.sub("tar-\(m.id.suffix)")
        let tar = try shell("mkdir '\(plain)' && xargs cat < '\(list)' | zstd -dc | tar -xf - -C '\(plain)' && diff -r --no-dereference '\(src)' '\(plain)/src'")
        #expect(tar.status == 0 && tar.stderr.isEmpty, "\(tar.stdoutText)\(tar.stderr)")
    }

    @Test func anUnchangedRerunReadsNoFileAndStoresNoFrame() throws {
        let dir = TemporaryDirectory()
        let (src, total) = try tree(dir)
        let repo = try makeRepository(dir)
        let now = Date()
        let first = FilesystemWalkCounters()
        let parent = try backup(repo, src, at: now.addingTimeInterval(3600), counters: first)
        #expect(first.bytesRead == total)
        #expect(parent.filesReused == nil, "no parent, no cache")

        let second = FilesystemWalkCounters()
        let child = try backup(repo, src, at: now.addingTimeInterval(7200), counters: second)
        #expect(second.bytesRead == 0)
        #expect(second.filesRead == 0)
        #expect(child.framesNew == 0)
        #expect(child.filesReused == Self.smallFiles + 3, "the small files, the large ones and the empty one")
        #expect(child.sha256 == nil, "frames reused unread: no stream digest")
        // The same stream, frame for frame.
        #expect(try frames(repo, child) == frames(repo, parent))
        let parentEntries = try SnapshotReader(repository: repo, manifest: parent).entries()
        #expect(try SnapshotReader(repository: repo, manifest: child).entries() == parentEntries)
        #expect(parentEntries.filter { $0.type == .hardlink }.map(\.path) == ["src/small/d5/hard", "src/z-large.hard"])
        try restoresAndVerifies(repo, child, src, dir)
        // Hard links come back as links.
        var a = stat(), b = stat()
        lstat(dir.sub("restored-\(child.id.suffix)/src/small/d2/f2"), &a)
        lstat(dir.sub("restored-\(child.id.suffix)/src/small/d5/hard"), &b)
        #expect(a.st_ino == b.st_ino && a.st_nlink == 2)
    }

    @Test func entriesRecordInodeDeviceAndCTime() throws {
        let dir = TemporaryDirectory()
        let (src, _) = try tree(dir)
        let repo = try makeRepository(dir)
        let m = try backup(repo, src, counters: FilesystemWalkCounters())
        let entries = try SnapshotReader(repository: repo, manifest: m).entries()
        #expect(entries.count == m.entryCount)
        for e in entries {
            #expect(e.inode != nil && e.device != nil && e.changeTime != nil, "\(e.path)")
        }
        var st = stat()
        lstat(src + "/large.bin", &st)
        let large = try #require(entries.first { $0.path == "src/large.bin" })
        #expect(large.inode == UInt64(st.st_ino) && large.device == UInt64(st.st_dev))
        #expect(large.changeTime == FileTime(st.st_ctim))
        // Older entry lists, without them, still decode.
        let line = #"{"path":"a","type":"file","mode":420,"uid":0,"gid":0,"mtime":"2020-01-01T00:00:00.000000000Z","size":0,"offset":0,"length":512}"#
        let old = try Timestamp.jsonDecoder().decode(EntryRecord.self, from: Data(line.utf8))
        #expect(old.inode == nil && old.changeTime == nil)
    }

    /// Content changed in place, same size, mtime set back to the exact nanosecond: the ctime
    /// changed, so the file is read (small and large alike) and its new content is restored.
    @Test func aFileRewrittenWithItsMTimeRestoredIsReadAgain() throws {
        let dir = TemporaryDirectory()
        let (src, total) = try tree(dir)
        let repo = try makeRepository(dir)
        let now = Date()
        let parent = try backup(repo, src, at: now.addingTimeInterval(3600), counters: FilesystemWalkCounters())
        var before = stat()
        lstat(src + "/small/d3/f10", &before)
        for path in [src + "/small/d3/f10", src + "/large.bin"] {
            var st = stat()
            lstat(path, &st)
            let fd = open(path, O_WRONLY)
            let patch: [UInt8] = Array("changed!".utf8)
            _ = patch.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 100) }
            close(fd)
            var times = [st.st_atim, st.st_mtim]
            utimensat(AT_FDCWD, path, &times, 0)
            var after = stat()
            lstat(path, &after)
            #expect(after.st_mtim.tv_sec == st.st_mtim.tv_sec && after.st_mtim.tv_nsec == st.st_mtim.tv_nsec && after.st_size == st.st_size)
        }
        let counters = FilesystemWalkCounters()
        let child = try backup(repo, src, at: now.addingTimeInterval(7200), counters: counters)
        // Both changed files are read, and the rest of the small file's group (at most 2 MiB)
        // with it; the groups after it are reused again. Two frames are new: the large file's
        // first and the small file's group.
        #expect(counters.filesRead >= 2)
        #expect(counters.bytesRead >= Int64(before.st_size) + 2_600_000)
        #expect(counters.bytesRead <= 2_600_000 + Int64(FrameCuts.groupMaximum))
        #expect(counters.bytesRead < total)
        #expect(child.filesReused.map { $0 > 0 } == true)
        #expect(child.framesNew == 2)
        let parentFrames = try frames(repo, parent), childFrames = try frames(repo, child)
        #expect(childFrames.count == parentFrames.count)
        #expect(zip(childFrames, parentFrames).filter { $0 != $1 }.count == 2)
        try restoresAndVerifies(repo, child, src, dir)
    }

    /// A file whose mtime is within 2 s of the parent's start may have changed after the parent
    /// read it without its times moving: it is read again, and only it.
    @Test func aRacyMTimeIsReadAgain() throws {
        let dir = TemporaryDirectory()
        let (src, _) = try tree(dir)
        let repo = try makeRepository(dir)
        let start = Date().addingTimeInterval(3600)
        let racy = src + "/large.bin"
        try shell("touch -d @\(Int(start.timeIntervalSince1970) - 1) '\(racy)'")
        _ = try backup(repo, src, at: start, counters: FilesystemWalkCounters())
        let counters = FilesystemWalkCounters()
        let child = try backup(repo, src, at: start.addingTimeInterval(3600), counters: counters)
        #expect(counters.filesRead == 1)
        #expect(counters.bytesRead == 2_600_000)
        #expect(child.filesReused == Self.smallFiles + 2)
        #expect(child.framesNew == 0)
    }

    /// Files changed (ctime) within 2 s of the parent's start are racy too: here, every file
    /// (the tree was just written), so all are read again.
    @Test func aRacyCTimeIsReadAgain() throws {
        let dir = TemporaryDirectory()
        let written = Date()
        let (src, total) = try tree(dir)
        let repo = try makeRepository(dir)
        let start = written.addingTimeInterval(1)   // every ctime is within 2 s before it
        _ = try backup(repo, src, at: start, counters: FilesystemWalkCounters())
        let counters = FilesystemWalkCounters()
        let child = try backup(repo, src, at: start.addingTimeInterval(3600), counters: counters)
        #expect(counters.bytesRead == total)
        #expect(child.filesReused == 0)
        #expect(child.framesNew == 0)
    }

    @Test func filesCacheOffReadsEverythingAndStoresNothingNew() throws {
        let dir = TemporaryDirectory()
        let (src, total) = try tree(dir)
        let repo = try makeRepository(dir)
        let now = Date()
        let parent = try backup(repo, src, at: now.addingTimeInterval(3600), counters: FilesystemWalkCounters())
        let counters = FilesystemWalkCounters()
        let child = try backup(repo, src, at: now.addingTimeInterval(7200), cache: false, counters: counters)
        #expect(counters.bytesRead == total)
        #expect(child.filesReused == nil)
        #expect(child.framesNew == 0)
        #expect(try frames(repo, child) == frames(repo, parent))
    }

    /// Files added, removed and renamed between runs: the walk and the parent's entry list stay
    /// in step (walk order: `d/x` before `d.txt`), and the result restores exactly.
    @Test func addedAndRemovedFilesKeepTheWalkInStep() throws {
        let dir = TemporaryDirectory()
        let (src, _) = try tree(dir)
        let repo = try makeRepository(dir)
        let now = Date()
        _ = try backup(repo, src, at: now.addingTimeInterval(3600), counters: FilesystemWalkCounters())
        // Changes in and around small/d1 only: the groups of d3 to d6 (3/7 of the files) are
        // reused after them.
        try FileManager.default.removeItem(atPath: src + "/small/d1/f1")
        try writeFile(src + "/small/d1.txt", Array("new beside d1/".utf8))
        try writeFile(src + "/small/d1/f1a", Array("new in d1".utf8))
        try FileManager.default.moveItem(atPath: src + "/small/d1/f8", toPath: src + "/small/d1/g8")
        let counters = FilesystemWalkCounters()
        let child = try backup(repo, src, at: now.addingTimeInterval(7200), counters: counters)
        #expect(child.filesReused.map { $0 >= Self.smallFiles * 3 / 7 } == true, "\(String(describing: child.filesReused))")
        try restoresAndVerifies(repo, child, src, dir)
    }

    /// A parent whose last verification failed is no parent: nothing is reused from it.
    @Test func aKnownBadSnapshotIsNoParent() throws {
        let dir = TemporaryDirectory()
        let (src, total) = try tree(dir)
        let repo = try makeRepository(dir)
        let now = Date()
        let bad = try backup(repo, src, at: now.addingTimeInterval(3600), counters: FilesystemWalkCounters())
        try repo.catalog.record(VerificationResult(snapshot: bad.id, source: "tree", kind: .filesystem, mode: .full, startedAt: now,
                                                   duration: 1, bytesRead: 0, problems: [VerificationProblem(file: "frames.tsv", message: "test")]))
        let counters = FilesystemWalkCounters()
        let child = try backup(repo, src, at: now.addingTimeInterval(7200), counters: counters)
        #expect(child.filesReused == nil)
        #expect(counters.bytesRead == total)
    }

    /// The parent is the same source's from this host: another host's snapshot of the same
    /// source (a shared repository) is never one, nor another source's.
    @Test func theParentIsTheSourcesFromThisHost() throws {
        let dir = TemporaryDirectory()
        let (src, total) = try tree(dir)
        let repo = try makeRepository(dir)
        let now = Date()
        _ = try FilesystemSnapshotWriter(paths: [src], options: BackupOptions(source: "tree", time: now.addingTimeInterval(3600), host: "elsewhere"))
            .write(to: repo)
        _ = try FilesystemSnapshotWriter(paths: [src], options: BackupOptions(source: "other", time: now.addingTimeInterval(3600)))
            .write(to: repo)
        let counters = FilesystemWalkCounters()
        let child = try backup(repo, src, at: now.addingTimeInterval(7200), counters: counters)
        #expect(child.filesReused == nil)
        #expect(counters.bytesRead == total)
    }

    /// The entry-line scanner reads what the JSON decoder reads, for hard names and times; a
    /// reused line is the parent's, byte for byte, apart from its offset.
    @Test func theLineScannerAgreesWithTheDecoder() throws {
        let encoder = Timestamp.jsonEncoder(pretty: false)
        let names: [[UInt8]] = [Array("plain/name.txt".utf8), Array("quote\"back\\slash".utf8), [0x6E, 0x0A, 0x09, 0x01, 0x7F],
                                Array("café/日本/😀".utf8), [0x62, 0x61, 0x64, 0xFF, 0xFE], Array("/slash//".utf8)]
        let times = [FileTime(seconds: 0, nanoseconds: 0), FileTime(seconds: -1, nanoseconds: 999_999_999),
                     FileTime(seconds: 1_700_000_000, nanoseconds: 987_654_321), FileTime(seconds: 951_782_400, nanoseconds: 1),
                     FileTime(seconds: -2_208_988_800, nanoseconds: 5), FileTime(seconds: 253_402_300_799, nanoseconds: 0)]
        for (k, name) in names.enumerated() {
            for (j, t) in times.enumerated() {
                var r = EntryRecord(rawPath: name, type: k % 2 == 0 ? .file : .symlink, mode: 0o644, uid: -2, gid: 7, modificationTime: t,
                                    size: Int64(k * 1000), sha256: k % 2 == 0 ? SHA256Hasher.digest(name) : nil,
                                    rawLinkTarget: k % 2 == 0 ? nil : names[(k + 1) % names.count], offset: Int64(j * 512), length: 1536)
                r.inode = UInt64.max - UInt64(j)
                r.device = UInt64(k)
                r.changeTime = times[(j + 1) % times.count]
                let line = Array(try encoder.encode(r))
                let scanned = try #require(CachedEntry(line: line[...]), "\(String(decoding: line, as: UTF8.self))")
                #expect(scanned.record == nil)
                #expect(scanned.rawPath == r.rawPath && scanned.type == r.type && scanned.size == r.size)
                #expect(scanned.mtime == r.modificationTime && scanned.ctime == r.changeTime)
                #expect(scanned.inode == r.inode && scanned.device == r.device)
                #expect(scanned.offset == r.offset && scanned.length == r.length && scanned.rawLinkTarget == r.rawLinkTarget)
                var moved = r
                moved.offset = 123_456_789
                #expect(try scanned.line(at: 123_456_789, encoder: encoder) == Array(try encoder.encode(moved)))
                #expect(try scanned.line(at: r.offset, encoder: encoder) == line)
            }
        }
        // Forms the scanner leaves to the decoder: milliseconds, an offset, nested values.
        #expect(CachedEntry.fileTime(Array("2020-01-01T00:00:00.123Z".utf8)) == FileTime(rfc3339: "2020-01-01T00:00:00.123Z"))
        #expect(CachedEntry.fileTime(Array("2020-01-01T01:00:00.000000000+01:00".utf8)) == FileTime(seconds: 1_577_836_800, nanoseconds: 0))
        #expect(CachedEntry(line: Array(#"{"path":"a","type":"file","x":{"y":1}}"#.utf8)[...]) == nil)
    }

    @Test func walkOrderPutsAFoldersContentsBeforeLongerNames() {
        let order = ["a", "a/b", "a/b/c", "a.txt", "a0", "b"].map { Array($0.utf8) }
        for (x, y) in zip(order, order.dropFirst()) {
            #expect(FilesCacheParent.walkOrderPrecedes(x, y))
            #expect(!FilesCacheParent.walkOrderPrecedes(y, x))
        }
    }

    @Test func thePolicyKeyTurnsItOff() throws {
        let yaml = """
        repository: /srv/backups
        jobs:
          - source: data
            kind: filesystem
            paths: [/srv/data]
            files-cache: off
          - source: other
            kind: filesystem
            paths: [/srv/other]
        """
        let p = try PolicyParser.parse(yaml, file: "p.yaml")
        #expect(p.jobs.map(\.filesCache) == [false, true])
        do {
            _ = try PolicyParser.parse(yaml.replacingOccurrences(of: "files-cache: off", with: "files-cache: sometimes"), file: "p.yaml")
            Issue.record("accepted files-cache: sometimes")
        } catch let PolicyError.invalid(_, issues) {
            #expect(issues.contains { $0.message.contains("files-cache must be on or off") && $0.line == 6 }, "\(issues)")
        }
    }
}
