import Foundation
import Testing
@testable import Backstop

/// Format 2's promise, counted (never timed): unchanged data yields identical frames, stored once,
/// and a change costs the frames that hold it. Counts come from the manifest (`framesNew`,
/// `frameCount`, `bytesNew`) and are checked against the objects actually under `frames/`.
@Suite struct FrameDedupTests {
    func backup(_ repo: Repository, _ path: String) throws -> Manifest {
        try FilesystemSnapshotWriter(paths: [path], options: BackupOptions(source: "tree")).write(to: repo)
    }

    func dump(_ repo: Repository, _ bytes: [UInt8], _ dir: TemporaryDirectory) throws -> Manifest {
        try writeFile(dir.sub("dump.sql"), bytes)
        let fd = open(dir.sub("dump.sql"), O_RDONLY)
        defer { close(fd) }
        return try LogicalSnapshotWriter(input: .fileDescriptor(fd), options: BackupOptions(source: "dump")).write(to: repo)
    }

    /// A tree of many small files (in a few directories) and one large file.
    func tree(_ dir: TemporaryDirectory) throws -> String {
        var gen = SeededBytes(seed: 12)
        let src = dir.sub("tree")
        for d in 0..<8 {
            for f in 0..<250 {
                try writeFile(src + "/db\(d)/t\(f).frm", gen.text(1_000 + Int(gen.next() % 6_000)))
            }
        }
        try writeFile(src + "/ibdata1", gen.bytes(3_000_000))
        return src
    }

    /// The frames of `m` that `before` does not have, by index.
    func newFrames(_ repo: Repository, _ m: Manifest, since before: [Manifest]) throws -> [Int] {
        var old = Set<SHA256Digest>()
        for b in before { old.formUnion(try repo.frameRefs(b).map(\.id)) }
        return try repo.frameRefs(m).enumerated().filter { !old.contains($0.element.id) }.map(\.offset)
    }

    @Test func aSecondIdenticalBackupStoresNoNewFrame() throws {
        let dir = TemporaryDirectory()
        let src = try tree(dir)
        let repo = try makeRepository(dir)
        let first = try backup(repo, src)
        let keys = try repo.storedFrameKeys()
        #expect(first.framesNew == first.frameCount && (first.frameCount ?? 0) >= 10, "\(String(describing: first.frameCount)) frames")
        #expect(keys.count == Set(try repo.frameRefs(first).map(\.id)).count)

        let second = try backup(repo, src)
        #expect(second.framesNew == 0)
        #expect(second.bytesNew == 0)
        #expect(second.frameCount == first.frameCount)
        #expect(try repo.frameRefs(second) == repo.frameRefs(first))
        #expect(try repo.storedFrameKeys() == keys, "no new object under frames/")
        // Same for a logical snapshot of the same dump.
        let dumpBytes = try Fixtures.bigMariaDBShop()
        let d1 = try dump(repo, dumpBytes, dir)
        let before = try repo.storedFrameKeys()
        let d2 = try dump(repo, dumpBytes, dir)
        #expect((d1.framesNew ?? 0) > 0 && d2.framesNew == 0 && d2.bytesNew == 0)
        #expect(try repo.storedFrameKeys() == before)
    }

    @Test func oneChangedSmallFileChangesAboutOneFrame() throws {
        let dir = TemporaryDirectory()
        let src = try tree(dir)
        let repo = try makeRepository(dir)
        let first = try backup(repo, src)
        let keys = try repo.storedFrameKeys()
        // Rewrite one small file in place, with other content of another length (it grows by
        // tens of KiB: frames cut at fixed stream offsets would all shift after it).
        let path = src + "/db3/t100.frm"
        let fd = open(path, O_WRONLY | O_TRUNC)
        var more = SeededBytes(seed: 14)
        let text = more.text(40_000)
        #expect(write(fd, text, text.count) == text.count)
        close(fd)

        let second = try backup(repo, src)
        let total = try #require(second.frameCount)
        let changed = try newFrames(repo, second, since: [first])
        #expect(total >= 10, "a tree of many frames: \(total)")
        #expect(second.framesNew == changed.count)
        #expect((1...2).contains(changed.count), "\(changed.count) of \(total) frames changed")
        #expect(try repo.storedFrameKeys().subtracting(keys).count == changed.count)
        // The new frame holds the changed file.
        let entry = try #require(try SnapshotReader(repository: repo, manifest: second).entries().first { $0.path == "tree/db3/t100.frm" })
        let frames = try repo.payloadFrames(second)
        #expect(changed.contains { frames[$0].uncompressedOffset <= entry.offset && entry.offset < frames[$0].uncompressedEnd })
    }

    @Test func aPageRewrittenInPlaceInALargeFileChangesOneFrame() throws {
        let dir = TemporaryDirectory()
        var gen = SeededBytes(seed: 13)
        let src = dir.sub("tree")
        try writeFile(src + "/ibdata1", gen.bytes(8 << 20))
        try writeFile(src + "/my.cnf", Array("[mysqld]\n".utf8))
        let repo = try makeRepository(dir)
        let first = try backup(repo, src)
        #expect((first.frameCount ?? 0) >= 8)

        // One 16 KiB page at 5 MiB + 48 KiB, rewritten in place; the mtime put back, as a
        // database that rewrites a page within the same second might leave it.
        var st = stat()
        lstat(src + "/ibdata1", &st)
        let fd = open(src + "/ibdata1", O_WRONLY)
        let page = gen.bytes(16 << 10)
        let at = (5 << 20) + (48 << 10)
        #expect(pwrite(fd, page, page.count, off_t(at)) == page.count)
        close(fd)
        var times = [st.st_atim, st.st_mtim]
        utimensat(AT_FDCWD, src + "/ibdata1", &times, 0)

        let second = try backup(repo, src)
        let changed = try newFrames(repo, second, since: [first])
        #expect(second.framesNew == 1 && changed.count == 1, "\(changed) of \(String(describing: second.frameCount)) frames changed")
        #expect(second.frameCount == first.frameCount)
        let entry = try #require(try SnapshotReader(repository: repo, manifest: second).entries().first { $0.path == "tree/ibdata1" })
        let frames = try repo.payloadFrames(second)
        let frame = try #require(changed.first.map { frames[$0] })
        // The page lies in the changed frame (the entry's data starts after its tar header).
        let pageInStream = entry.offset + 512
        #expect(frame.uncompressedOffset < pageInStream + Int64(at) + Int64(page.count) && pageInStream + Int64(at) < frame.uncompressedEnd)
        #expect(second.bytesNew ?? 0 < Int64(2 << 20), "new bytes: \(String(describing: second.bytesNew))")
    }

    @Test func rowsInsertedIntoOneTableChangeOnlyThatRegionsFrames() throws {
        let dir = TemporaryDirectory()
        let repo = try makeRepository(dir)
        let original = try Fixtures.bigMariaDBShop(megabytes: 12)
        let first = try dump(repo, original, dir)
        let total = try #require(first.frameCount)
        #expect(total >= 8, "a dump of many frames: \(total)")

        // A few rows inserted in the middle of `orders` (the `shop` database).
        var lines = String(decoding: original, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let inserts = lines.indices.filter { lines[$0].hasPrefix("INSERT INTO `orders` VALUES") }
        #expect(inserts.count >= 20)
        lines.insert("INSERT INTO `orders` VALUES (9000001,'inserted row one'),(9000002,'inserted row two');", at: inserts[inserts.count / 2])
        let changedDump = Array(lines.joined(separator: "\n").utf8)
        let second = try dump(repo, changedDump, dir)

        let changed = try newFrames(repo, second, since: [first])
        #expect(second.framesNew == changed.count)
        #expect((1...3).contains(changed.count), "\(changed.count) of \(String(describing: second.frameCount)) frames changed")
        #expect((second.bytesNew ?? 0) * 3 < first.bytesNew ?? 0, "new bytes \(String(describing: second.bytesNew)) of \(String(describing: first.bytesNew))")
        // Every new frame lies in the `shop` section.
        let shop = try #require(second.sections.first { $0.name == "shop" })
        let frames = try repo.payloadFrames(second)
        for i in changed {
            #expect(frames[i].uncompressedOffset >= shop.offset && frames[i].uncompressedEnd <= shop.offset + shop.length,
                    "frame \(i) lies outside the shop section")
        }
    }
}
