import Foundation
import Testing
@testable import Backstop

/// Filesystem restores from a repository on every backend (the target is always a local folder).
@Suite struct FilesystemRestoreTests {
    func tree(_ dir: TemporaryDirectory) throws -> String {
        let src = dir.sub("datadir")
        var gen = SeededBytes(seed: 21)
        try writeFile(src + "/ibdata1", gen.bytes(2_500_000), mode: 0o660)
        try writeFile(src + "/app1/t.ibd", gen.text(800_000))
        try writeFile(src + "/app1/t.frm", Array("frm".utf8), mode: 0o600)
        try writeFile(src + "/my.cnf", Array("[mysqld]\n".utf8))
        symlink("my.cnf", src + "/link.cnf")
        link(src + "/my.cnf", src + "/hard.cnf")
        for p in try FileManager.default.subpathsOfDirectory(atPath: src) { setMTime(src + "/" + p, 1_650_000_000) }
        return src
    }

    func backup(_ repo: Repository, _ path: String) throws -> Manifest {
        try FilesystemSnapshotWriter(paths: [path], options: BackupOptions(source: "datadir")).write(to: repo)
    }

    @Test(arguments: Backends.allCases)
    func aWholeRestoreReproducesTheTree(backend: Backends) throws {
        let dir = TemporaryDirectory()
        let src = try tree(dir)
        let t = try backend.makeRepository(dir)
        let repo = t.repo
        let m = try backup(repo, src)
        let report = try FilesystemRestore(repository: repo, manifest: m).run(to: dir.sub("restored"))
        #expect(report.entries == m.entryCount)
        #expect(report.framesRead == (try repo.payloadFrames(m)).count)
        #expect(try shell("diff -r --no-dereference '\(src)' '\(dir.sub("restored/datadir"))'").status == 0)
        var a = stat(), b = stat()
        lstat(src + "/app1/t.frm", &a)
        lstat(dir.sub("restored/datadir/app1/t.frm"), &b)
        #expect(a.st_mode == b.st_mode && a.st_mtim.tv_sec == b.st_mtim.tv_sec)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: dir.sub("restored/datadir/link.cnf")) == "my.cnf")
        stat(dir.sub("restored/datadir/my.cnf"), &a)
        stat(dir.sub("restored/datadir/hard.cnf"), &b)
        #expect(a.st_ino == b.st_ino)
        #expect(try FileSystem.list(dir.path).allSatisfy { !$0.hasPrefix(".backstop-restore") })
    }

    @Test(arguments: Backends.allCases)
    func aNonEmptyTargetIsRefusedAndForceMovesItAside(backend: Backends) throws {
        let dir = TemporaryDirectory()
        let src = try tree(dir)
        let t = try backend.makeRepository(dir)
        let repo = t.repo
        let m = try backup(repo, src)
        try writeFile(dir.sub("target/keep.txt"), Array("mine".utf8))
        do {
            _ = try FilesystemRestore(repository: repo, manifest: m).run(to: dir.sub("target"))
            Issue.record("restored over a non-empty target")
        } catch let error as RestoreError {
            #expect(error.exitStatus == .targetNotEmpty)
        }
        #expect(try readFile(dir.sub("target/keep.txt")) == Array("mine".utf8))
        let report = try FilesystemRestore(repository: repo, manifest: m, force: true).run(to: dir.sub("target"))
        let aside = try #require(report.movedAside)
        #expect(try readFile(aside + "/keep.txt") == Array("mine".utf8))
        #expect(FileSystem.exists(dir.sub("target/datadir/ibdata1")))
        // An empty directory is fine without --force.
        try FileManager.default.createDirectory(atPath: dir.sub("empty"), withIntermediateDirectories: true)
        _ = try FilesystemRestore(repository: repo, manifest: m).run(to: dir.sub("empty"))
    }

    /// Proves: one small file out of a large snapshot costs a small fraction of the payload
    /// (counted in bytes read, not timed).
    @Test(arguments: Backends.allCases)
    func aPartialRestoreReadsOnlyTheFramesItNeeds(backend: Backends) throws {
        let dir = TemporaryDirectory()
        var gen = SeededBytes(seed: 31)
        for i in 0..<24 { try writeFile(dir.sub("big/part\(String(format: "%02d", i)).bin"), gen.bytes(1_500_000)) }
        try writeFile(dir.sub("big/m/needle.txt"), Array("the one file we need\n".utf8))
        let t = try backend.makeRepository(dir)
        let repo = t.repo
        let m = try backup(repo, dir.sub("big"))
        let payloadSize = try repo.payloadFrames(m).reduce(Int64(0)) { $0 + Int64($1.compressedSize) }
        let report = try FilesystemRestore(repository: repo, manifest: m, includes: ["big/m/needle.txt"]).run(to: dir.sub("one"))
        #expect(try readFile(dir.sub("one/big/m/needle.txt")) == Array("the one file we need\n".utf8))
        #expect(report.entries == 1)
        #expect(report.framesRead == 1)
        #expect(report.bytesRead * 20 < payloadSize, "read \(report.bytesRead) of \(payloadSize) bytes")
        #expect(try FileSystem.list(dir.sub("one/big")) == ["m"])
        // A directory include brings its contents; a glob works on base names.
        let two = try FilesystemRestore(repository: repo, manifest: m, includes: ["part0[12].bin"]).run(to: dir.sub("two"))
        #expect(two.entries == 2)
        #expect(try FileSystem.list(dir.sub("two/big")) == ["part01.bin", "part02.bin"])
        #expect(throws: RestoreError.self) { try FilesystemRestore(repository: repo, manifest: m, includes: ["nothing*"]).run(to: dir.sub("three")) }
    }

    struct Hostile: CustomTestStringConvertible, Sendable {
        var name: String
        var members: @Sendable (String) -> [TarBuilder.Member]
        var testDescription: String { name }
    }

    static let hostile: [Hostile] = [
        Hostile(name: "dot-dot path") { _ in [.directory("d"), .file("../victim.txt", "pwned")] },
        Hostile(name: "deep dot-dot path") { _ in [.file("d/../../victim.txt", "pwned")] },
        Hostile(name: "absolute path") { root in [.file(root + "/victimdir/victim.txt", "pwned")] },
        Hostile(name: "file through a symlink") { root in [.symlink("escape", to: root + "/victimdir"), .file("escape/victim.txt", "pwned")] },
        Hostile(name: "file through a relative symlink") { _ in [.symlink("up", to: ".."), .file("up/victim.txt", "pwned")] },
        Hostile(name: "file through a hard link to a symlink") { root in
            [.symlink("s", to: root + "/victimdir"), .hardlink("h", to: "s"), .file("h/victim.txt", "pwned")] },
        Hostile(name: "hard link through a symlink") { root in [.symlink("s", to: root + "/victimdir"), .hardlink("h", to: "s/victim.txt")] },
        Hostile(name: "escaping hard link") { _ in [.hardlink("hl", to: "../victim.txt")] },
        Hostile(name: "absolute hard link") { root in [.hardlink("hl", to: root + "/victimdir/victim.txt")] },
    ]

    /// Proves: hostile entries (with correct digests) are refused with 65, and victim files
    /// outside the target are unchanged.
    @Test(arguments: hostile, Backends.allCases)
    func hostileArchivesAreRefused(h: Hostile, backend: Backends) throws {
        let dir = TemporaryDirectory()
        let t = try backend.makeRepository(dir)
        let repo = t.repo
        try FileManager.default.createDirectory(atPath: dir.sub("restores"), withIntermediateDirectories: true)
        let victims = [dir.sub("victim.txt"), dir.sub("restores/victim.txt"), dir.sub("victimdir/victim.txt")]
        for v in victims { try writeFile(v, Array("original".utf8)) }
        let m = try TarBuilder.commitSnapshot(TarBuilder.build(h.members(dir.path)), to: repo)
        do {
            _ = try FilesystemRestore(repository: repo, manifest: m).run(to: dir.sub("restores/out"))
            Issue.record("\(h.name): restored")
        } catch let error as RestoreError {
            #expect(error.exitStatus == .integrity, "\(h.name): \(error)")
            if case .hostileEntry = error {} else { Issue.record("\(h.name): \(error)") }
        }
        for v in victims {
            #expect(try readFile(v) == Array("original".utf8), "\(h.name): \(v) unchanged")
            var st = stat()
            stat(v, &st)
            #expect(st.st_nlink == 1, "\(h.name): no hard link to \(v)")
        }
        #expect(!FileSystem.exists(dir.sub("restores/out")))
        #expect(try FileSystem.list(dir.sub("restores")) == ["victim.txt"], "staging removed")
    }

    @Test(arguments: Backends.allCases)
    func aCorruptSnapshotLeavesTheTargetUntouchedAndFallbackUsesTheOlderOne(backend: Backends) throws {
        let dir = TemporaryDirectory()
        let src = try tree(dir)
        let t = try backend.makeRepository(dir)
        let repo = t.repo
        let old = try backup(repo, src)
        try writeFile(src + "/my.cnf", Array("[mysqld]\nchanged\n".utf8))
        let new = try backup(repo, src)
        // Format 2: the frames old and new share are one object; damage one only new uses.
        let oldFrames = Set(try repo.frameRefs(old).map(\.id))
        let newFrames = try repo.frameRefs(new)
        let index = try #require(newFrames.firstIndex { !oldFrames.contains($0.id) }, "my.cnf's frame is new")
        let key = RepositoryLayout.frame(newFrames[index].id)
        var bytes = try t.stored(key)
        bytes[bytes.count / 3] ^= 0x01
        try t.damage(key, with: bytes)

        let request = RestoreRequest(target: dir.sub("out"))
        var notices: [RestoreNotice] = []
        do {
            _ = try repo.restore(candidates: [new.id, old.id], request: request, fallback: false) { notices.append($0) }
            Issue.record("restored a corrupt snapshot")
        } catch let error as RestoreError {
            #expect(error.exitStatus == .integrity)
            #expect(error.description.contains(new.id.rawValue) && error.description.contains("frames.tsv frame \(index)"))
        }
        #expect(!FileSystem.exists(dir.sub("out")))
        #expect(try repo.catalog.lastVerifications()[new.id]?.passed == false, "the failure is remembered")

        let report = try repo.restore(candidates: [new.id, old.id], request: request, fallback: true) { notices.append($0) }
        #expect(report.snapshot == old.id)
        #expect(notices.contains(.fallingBack(to: old.id)))
        #expect(notices.contains { if case .failed(new.id, _) = $0 { return true } else { return false } })
        #expect(try readFile(dir.sub("out/datadir/my.cnf")) == Array("[mysqld]\n".utf8))
    }

    @Test(arguments: Backends.allCases)
    func diffOfTwoFilesystemSnapshots(backend: Backends) throws {
        let dir = TemporaryDirectory()
        let src = try tree(dir)
        let t = try backend.makeRepository(dir)
        let repo = t.repo
        let a = try backup(repo, src)
        try writeFile(src + "/app1/new.ibd", Array("n".utf8))
        unlink(src + "/app1/t.frm")
        try writeFile(src + "/my.cnf", Array("[mysqld]\nx=1\n".utf8))
        chmod(src + "/ibdata1", 0o600)
        let b = try backup(repo, src)
        let d = try SnapshotDiff.compute(repo, from: a.id, to: b.id)
        #expect(d.added == ["datadir/app1/new.ibd"])
        #expect(d.removed == ["datadir/app1/t.frm"])
        // my.cnf was rewritten as a new file: it was the hard link to hard.cnf (first in walk order).
        #expect(d.changed.map(\.path) == ["datadir/ibdata1", "datadir/my.cnf"])
        #expect(d.changed.first { $0.path == "datadir/ibdata1" }?.what == ["mode"])
        #expect(d.changed.first { $0.path == "datadir/my.cnf" }?.what == ["type", "content", "link target"])
    }
}
