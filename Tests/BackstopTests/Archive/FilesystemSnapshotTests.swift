import Foundation
import Testing
@testable import Backstop

@Suite struct FilesystemSnapshotTests {
    /// A tree with every kind of entry Backstop stores.
    func makeTree(_ root: String) throws {
        var gen = SeededBytes(seed: 3)
        try writeFile(root + "/ibdata1", gen.bytes(3_000_000), mode: 0o640)
        try writeFile(root + "/empty", [], mode: 0o600)
        try writeFile(root + "/conf/my.cnf", Array("[mysqld]\ndatadir=/var/lib/mysql\n".utf8), mode: 0o644)
        try writeFile(root + "/conf/run.sh", Array("#!/bin/sh\necho hi\n".utf8), mode: 0o755)
        try writeFile(root + "/db/app1/t.ibd", gen.text(500_000))
        try writeFile(root + "/db/app1/skip.pid", Array("1234\n".utf8))
        try writeFile(root + "/name with spaces and ünïcode.txt", Array("x".utf8))
        try writeFile(root + "/" + String(repeating: "long", count: 30) + "/" + String(repeating: "n", count: 120), Array("deep".utf8))
        symlink("conf/my.cnf", root + "/my.cnf")
        symlink("/nonexistent/target", root + "/dangling")
        link(root + "/conf/my.cnf", root + "/conf/my.cnf.hardlink")
        try FileManager.default.createDirectory(atPath: root + "/emptydir", withIntermediateDirectories: true)
        chmod(root + "/emptydir", 0o700)
        let xattr = try shell("setfattr -n user.backstop -v hello '\(root)/conf/my.cnf'")
        #expect(xattr.status == 0, "setfattr (Debian package attr, installed by scripts/test.sh): \(xattr.stderr)")
        var t = 1_600_000_000
        for p in try FileManager.default.subpathsOfDirectory(atPath: root).sorted() {
            setMTime(root + "/" + p, t)
            t += 3600
        }
        setMTime(root, 1_500_000_000)
    }

    func backup(_ repo: Repository, _ paths: [String], excludes: [String] = []) throws -> Manifest {
        try FilesystemSnapshotWriter(paths: paths, excludes: excludes, options: BackupOptions(source: "datadir")).write(to: repo)
    }

    /// Proves: the README's standard-tool recipe (`sha256sum -c SHA256SUMS`, then the frame
    /// objects of `frames.tsv` concatenated with `cut | sed | xargs cat`, `zstd -d`, `tar -x`)
    /// restores the tree byte for byte with modes, symlinks, hard links and mtimes.
    /// About the files on the local disk (read by the standard tools), so local only.
    @Test func standardToolsRestoreTheTreeExactly() throws {
        let dir = TemporaryDirectory()
        let src = dir.sub("mysql")
        try makeTree(src)
        let repo = try makeRepository(dir)
        let m = try backup(repo, [src])
        #expect(m.warnings.isEmpty)
        let folder = repo.snapshotDirectory(m.id)

        let sums = try shell("sha256sum -c SHA256SUMS", directory: folder)
        #expect(sums.status == 0, "\(sums.stdoutText)\(sums.stderr)")
        #expect(sums.stdoutText.contains("frames.tsv: OK") && sums.stdoutText.contains("manifest.json: OK"))

        let out = dir.sub("out")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let x = try shell(#"cut -f1 frames.tsv | sed 's|^\(..\)|../../frames/\1/\1|' | xargs cat | zstd -d | tar --xattrs --xattrs-include='*' -xpf - -C "# + "'\(out)'",
                          directory: folder)
        #expect(x.status == 0, "\(x.stderr)")
        let diff = try shell("diff -r --no-dereference '\(src)' '\(out)/mysql'")
        #expect(diff.status == 0, "\(diff.stdoutText)")

        for p in try FileManager.default.subpathsOfDirectory(atPath: src) {
            var a = stat(), b = stat()
            lstat(src + "/" + p, &a)
            lstat(out + "/mysql/" + p, &b)
            #expect(a.st_mode == b.st_mode, "mode of \(p)")
            #expect(a.st_mtim.tv_sec == b.st_mtim.tv_sec, "mtime of \(p)")
            #expect(a.st_size == b.st_size, "size of \(p)")
            if (a.st_mode & S_IFMT) == S_IFLNK {
                #expect(try FileManager.default.destinationOfSymbolicLink(atPath: src + "/" + p)
                        == FileManager.default.destinationOfSymbolicLink(atPath: out + "/mysql/" + p))
            }
        }
        var h1 = stat(), h2 = stat()
        stat(out + "/mysql/conf/my.cnf", &h1)
        stat(out + "/mysql/conf/my.cnf.hardlink", &h2)
        #expect(h1.st_ino == h2.st_ino, "hard link restored as a hard link")
        let xattr = try shell("getfattr --only-values -n user.backstop '\(out)/mysql/conf/my.cnf'")
        #expect(xattr.stdoutText == "hello", "extended attribute restored: \(xattr.stderr)")
    }

    @Test(arguments: Backends.allCases)
    func entryListRecordsDigestsAndTarOffsets(backend: Backends) throws {
        let dir = TemporaryDirectory()
        let src = dir.sub("mysql")
        try makeTree(src)
        let repo = try backend.makeRepository(dir).repo
        let m = try backup(repo, [src])
        let reader = SnapshotReader(repository: repo, manifest: m)
        let entries = try reader.entries()
        #expect(entries.count == m.entryCount)
        #expect(entries.first?.path == "mysql")
        // Walk order: depth first, each directory's children right after it, names sorted bytewise.
        func walk(_ rel: String) -> [String] {
            var isDir: ObjCBool = false
            var st = stat()
            lstat(dir.path + "/" + rel, &st)
            guard (st.st_mode & S_IFMT) == S_IFDIR, FileManager.default.fileExists(atPath: dir.path + "/" + rel, isDirectory: &isDir) else { return [rel] }
            let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path + "/" + rel)) ?? []
            return [rel] + names.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }.flatMap { walk(rel + "/" + $0) }
        }
        #expect(entries.map(\.path) == walk("mysql"))
        let payload = MemorySink()
        let seekable = try reader.payload()
        try seekable.readAll(into: payload)
        #expect(Int64(payload.bytes.count) == m.bytesIn)
        // The stream is its frames: each decodes to the bytes its ID names.
        let refs = try reader.frameList()
        for (i, f) in seekable.frames.enumerated() {
            let bytes = Array(payload.bytes[Int(f.uncompressedOffset)..<Int(f.uncompressedEnd)])
            #expect(SHA256Hasher.digest(bytes) == refs[i].id, "frame \(i)")
        }
        var expectedOffset: Int64 = 0
        for e in entries {
            #expect(e.offset == expectedOffset, "\(e.path) starts where the previous entry ended")
            expectedOffset = e.offset + e.length
            // Every entry starts with a tar header block: "ustar" magic at byte 257.
            let magic = Array(payload.bytes[Int(e.offset) + 257..<Int(e.offset) + 262])
            #expect(magic == Array("ustar".utf8), "\(e.path) offset points at a tar header")
            if e.type == .file {
                let onDisk = try readFile(dir.path + "/" + e.path)
                #expect(e.sha256 == SHA256Hasher.digest(onDisk), "\(e.path) digest")
                #expect(e.size == Int64(onDisk.count))
            }
        }
        let byPath = Dictionary(uniqueKeysWithValues: entries.map { ($0.path, $0) })
        #expect(byPath["mysql/my.cnf"]?.type == .symlink)
        #expect(byPath["mysql/my.cnf"]?.linkTarget == "conf/my.cnf")
        #expect(byPath["mysql/conf/my.cnf.hardlink"]?.type == .hardlink)
        #expect(byPath["mysql/conf/my.cnf.hardlink"]?.linkTarget == "mysql/conf/my.cnf")
        #expect(byPath["mysql/conf/run.sh"]?.mode == 0o755)
        #expect(byPath["mysql/emptydir"]?.type == .directory)
        // 2 final zero blocks end the archive.
        #expect(Int64(payload.bytes.count) == expectedOffset + 1024)
    }

    @Test(arguments: Backends.allCases)
    func excludesMatchBaseNamesAndPaths(backend: Backends) throws {
        let dir = TemporaryDirectory()
        let src = dir.sub("mysql")
        try makeTree(src)
        let repo = try backend.makeRepository(dir).repo
        let m = try backup(repo, [src], excludes: ["*.pid", "mysql/conf"])
        let paths = try SnapshotReader(repository: repo, manifest: m).entries().map(\.path)
        #expect(!paths.contains("mysql/db/app1/skip.pid"))
        #expect(!paths.contains { $0.hasPrefix("mysql/conf") })
        #expect(paths.contains("mysql/db/app1/t.ibd"))
    }

    @Test(arguments: Backends.allCases)
    func aMissingPathCommitsNothing(backend: Backends) throws {
        let dir = TemporaryDirectory()
        let repo = try backend.makeRepository(dir).repo
        #expect(throws: BackupError.self) { try backup(repo, [dir.sub("nope")]) }
        #expect(try repo.snapshotIDs().isEmpty)
        #expect(try repo.storage.list(under: RepositoryLayout.snapshots).isEmpty)
        if backend == .local { #expect(try FileSystem.list(repo.tmpDirectory).isEmpty) }
    }

    @Test(arguments: Backends.allCases)
    func twoPathsWithOneBaseNameAreRefused(backend: Backends) throws {
        let dir = TemporaryDirectory()
        try writeFile(dir.sub("a/data/x"), [1])
        try writeFile(dir.sub("b/data/y"), [2])
        let repo = try backend.makeRepository(dir).repo
        do {
            _ = try backup(repo, [dir.sub("a/data"), dir.sub("b/data")])
            Issue.record("expected a refusal")
        } catch let error as BackupError {
            #expect(error.exitStatus == .usage)
            #expect(String(describing: error).contains("data/"))
        }
    }

    @Test(arguments: Backends.allCases)
    func severalPathsAreStoredUnderTheirBaseNames(backend: Backends) throws {
        let dir = TemporaryDirectory()
        try writeFile(dir.sub("etc/mysql-conf/my.cnf"), Array("a".utf8))
        try writeFile(dir.sub("var/lib/mysql/ibdata1"), Array("b".utf8))
        let repo = try backend.makeRepository(dir).repo
        let m = try backup(repo, [dir.sub("etc/mysql-conf"), dir.sub("var/lib/mysql")])
        let paths = try SnapshotReader(repository: repo, manifest: m).entries().map(\.path)
        #expect(paths == ["mysql", "mysql/ibdata1", "mysql-conf", "mysql-conf/my.cnf"])
        #expect(m.paths == [dir.sub("etc/mysql-conf"), dir.sub("var/lib/mysql")])
    }

    @Test(arguments: Backends.allCases)
    func bigFilesAreCutIntoFramesAtEntryBoundaries(backend: Backends) throws {
        let dir = TemporaryDirectory()
        var gen = SeededBytes(seed: 11)
        for i in 0..<6 { try writeFile(dir.sub("src/f\(i)"), gen.bytes(1_500_000)) }
        let repo = try backend.makeRepository(dir).repo
        let m = try backup(repo, [dir.sub("src")])
        let entries = try SnapshotReader(repository: repo, manifest: m).entries()
        let frameStarts = Set(try repo.payloadFrames(m).map(\.uncompressedOffset))
        // Files are 1.5 MB, above the 1 MiB minimum: every file after the first starts a frame.
        for e in entries where e.type == .file && e.path != "src/f0" {
            #expect(frameStarts.contains(e.offset), "\(e.path) starts a frame")
        }
    }
}
