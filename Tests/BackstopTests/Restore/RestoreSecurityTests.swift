import Foundation
import Testing
@testable import Backstop

/// Runs `body` on another thread and waits for it at most `seconds` (a watchdog, not a timing
/// assertion): a restore that never ends fails the test instead of hanging the suite.
func finishing<T: Sendable>(within seconds: Int = 300, _ what: String, _ body: @escaping () throws -> T) -> Result<T, Error>? {
    let result = Locked<Result<T, Error>?>(nil)
    let done = DispatchSemaphore(value: 0)
    let call = Locked(body)
    Thread.detachNewThread {
        result.set(Result { try call.get()() })
        done.signal()
    }
    if done.wait(timeout: .now() + .seconds(seconds)) == .timedOut {
        Issue.record("\(what) did not end within \(seconds) s")
        return nil
    }
    return result.get()
}

func lstatOf(_ path: String) -> stat {
    var st = stat()
    lstat(path, &st)
    return st
}

/// The repository is untrusted input to a restore (issue #9): entries that would touch what is
/// not theirs are refused with 65 and nothing outside the target changes; names are bytes.
@Suite struct RestoreSecurityTests {
    struct Variant: CustomTestStringConvertible, Sendable {
        var name: String
        var members: @Sendable (_ victim: String) -> [TarBuilder.Member]
        var testDescription: String { name }
    }

    static func spec(_ path: String, _ type: EntryType, mode: UInt32, data: String = "", link: String? = nil, uid: Int64 = 0) -> TarBuilder.Member {
        var s = TarBuilder.Spec(path, type: type, mode: mode, data: data, link: link)
        s.uid = uid
        s.gid = uid
        return .entry(s)
    }

    /// Directory `p`, file `p/t`, symlink `p/s` to the victim, then a fourth entry at `p/s`.
    static func overSymlink(_ name: String, _ fourth: @escaping @Sendable () -> TarBuilder.Member) -> Variant {
        Variant(name: name) { victim in
            [.directory("p"), .file("p/t", "mine"), .symlink("p/s", to: victim), fourth()]
        }
    }

    static let variants: [Variant] = [
        overSymlink("hard link 04777 over a symlink") { spec("p/s", .hardlink, mode: 0o4777, link: "p/t") },
        overSymlink("fifo 0666 over a symlink") { spec("p/s", .fifo, mode: 0o666) },
        overSymlink("character device over a symlink") { spec("p/s", .characterDevice, mode: 0o666) },
        overSymlink("directory 0777 owned by 4242 over a symlink") { spec("p/s", .directory, mode: 0o777, uid: 4242) },
        overSymlink("symlink 0777 owned by 4242 over a symlink") { spec("p/s", .symlink, mode: 0o777, link: "elsewhere", uid: 4242) },
        overSymlink("file over a symlink") { spec("p/s", .file, mode: 0o4777, data: "pwned") },
        Variant(name: "directory over a file") { _ in [.file("f", "mine"), spec("f", .directory, mode: 0o777, uid: 4242)] },
        Variant(name: "file declared twice") { _ in [.file("f", "first"), .file("f", "second")] },
        Variant(name: "file over a directory") { _ in [.directory("d"), .file("d", "second")] },
        Variant(name: "hard link to a symlink") { victim in [.symlink("s", to: victim), .hardlink("h", to: "s")] },
        Variant(name: "hard link to a directory") { _ in [.directory("d"), .hardlink("h", to: "d")] },
    ]

    /// Proves: an entry whose path already exists, or a hard link to a non-file, is refused with
    /// 65; the victim outside the target keeps its mode, owner and content (before the fix the
    /// first variant made it 04777 and the file variants spun forever).
    @Test(arguments: variants)
    func anEntryOverAnExistingPathIsRefused(v: Variant) throws {
        let dir = TemporaryDirectory()
        let repo = try makeRepository(dir)
        let victim = dir.sub("victim.txt")
        try writeFile(victim, Array("original".utf8), mode: 0o640)
        let before = lstatOf(victim)
        let m = try TarBuilder.commitSnapshot(TarBuilder.build(v.members(victim)), to: repo)
        let out = dir.sub("restores/out")
        let result = finishing("restore of \(v.name)") { try FilesystemRestore(repository: repo, manifest: m).run(to: out) }
        switch result {
        case .success?: Issue.record("\(v.name): restored")
        case .failure(let error as RestoreError)?:
            #expect(error.exitStatus == .integrity, "\(v.name): \(error)")
            if case .hostileEntry = error {} else { Issue.record("\(v.name): \(error)") }
        case .failure(let error)?: Issue.record("\(v.name): \(error)")
        case nil: break
        }
        let after = lstatOf(victim)
        #expect(after.st_mode == before.st_mode && after.st_uid == before.st_uid && after.st_gid == before.st_gid, "\(v.name): victim's mode and owner unchanged")
        #expect(try readFile(victim) == Array("original".utf8))
        #expect(!FileSystem.exists(out))
        #expect(try FileSystem.list(dir.sub("restores")).isEmpty, "staging removed")
    }

    /// Proves: `verify` fails every snapshot a restore refuses (duplicate paths, hard links to
    /// non-files, paths through symlinks, escaping names) and an entry list that declares bytes
    /// beyond the stream, naming the entry; an honest snapshot with a re-declared directory
    /// passes. Before the fix all of these passed verification.
    @Test func verifyFlagsWhatARestoreWouldRefuse() throws {
        let dir = TemporaryDirectory()
        let repo = try makeRepository(dir)
        let victim = dir.sub("victim.txt")
        var hostile = Self.variants.map { ($0.name, TarBuilder.build($0.members(victim))) }
        hostile += FilesystemRestoreTests.hostile.map { ($0.name, TarBuilder.build($0.members(dir.path))) }
        for (name, tar) in hostile {
            let m = try TarBuilder.commitSnapshot(tar, to: repo)
            let result = Verifier(repository: repo, id: m.id).verify(mode: .full)
            #expect(!result.passed, "\(name): verify passed")
            #expect(result.problems.contains { $0.message.contains("hostile entry") }, "\(name): \(result.problems)")
        }
        let beyond = try TarBuilder.commitSnapshot(TarBuilder.build([.file("a", "x"), .file("b", "y")]), to: repo) { records in
            records[1].length += 1 << 30
        }
        let problems = Verifier(repository: repo, id: beyond.id).verify(mode: .full).problems
        #expect(problems.contains { $0.location == "entry b" && $0.message.contains("beyond the end of the stream") }, "\(problems)")
        let honest = try TarBuilder.commitSnapshot(TarBuilder.build([.directory("d"), .file("d/f", "x"), .directory("d")]), to: repo)
        #expect(Verifier(repository: repo, id: honest.id).verify(mode: .full).problems.isEmpty)
    }

    /// Proves: a directory re-declared as a directory is fine (its later metadata wins).
    @Test func aDirectoryDeclaredTwiceIsRestored() throws {
        let dir = TemporaryDirectory()
        let repo = try makeRepository(dir)
        let m = try TarBuilder.commitSnapshot(TarBuilder.build([
            .directory("d"), .file("d/f", "x"), Self.spec("d", .directory, mode: 0o700)]), to: repo)
        _ = try FilesystemRestore(repository: repo, manifest: m).run(to: dir.sub("out"))
        #expect(lstatOf(dir.sub("out/d")).st_mode & 0o7777 == 0o700)
        #expect(try readFile(dir.sub("out/d/f")) == Array("x".utf8))
    }

    static let cafeNFC: [UInt8] = Array("caf\u{E9}".utf8)
    static let cafeNFD: [UInt8] = Array("cafe".utf8) + [0xCC, 0x81]

    func names(_ dir: String) throws -> Set<[UInt8]> { try names(bytes: Array(dir.utf8)) }

    func names(bytes dir: [UInt8]) throws -> Set<[UInt8]> {
        guard let d = opendir(dir.map { CChar(bitPattern: $0) } + [0]) else { throw FileError.open(path: EntryRecord.display(dir), errno: errno) }
        defer { closedir(d) }
        var out = Set<[UInt8]>()
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { raw in Array(raw.prefix { $0 != 0 }) }
            if name != [0x2E] && name != [0x2E, 0x2E] { out.insert(name) }
        }
        return out
    }

    /// Proves: a real tree with `café` in NFC and in NFD (two files) backs up and restores as
    /// two files under their exact names (before the fix the restore never ended).
    @Test func namesDifferingOnlyInNormalisationRestoreAsTwoFiles() throws {
        let dir = TemporaryDirectory()
        let src = dir.sub("t")
        try FileManager.default.createDirectory(atPath: src, withIntermediateDirectories: true)
        for (name, content) in [(Self.cafeNFC, "NFC"), (Self.cafeNFD, "NFD")] {
            let fd = open((Array(src.utf8) + [0x2F] + name).map { CChar(bitPattern: $0) } + [0], O_WRONLY | O_CREAT | O_EXCL, 0o644)
            #expect(fd >= 0)
            _ = content.withCString { write(fd, $0, strlen($0)) }
            close(fd)
        }
        let repo = try makeRepository(dir)
        let m = try FilesystemSnapshotWriter(paths: [src], options: BackupOptions(source: "t")).write(to: repo)
        let out = dir.sub("out")
        guard case .success? = finishing("restore of café NFC + NFD", { try FilesystemRestore(repository: repo, manifest: m).run(to: out) }) else {
            Issue.record("restore failed")
            return
        }
        #expect(try names(out + "/t") == [Self.cafeNFC, Self.cafeNFD])
        let nfd = String(decoding: Array(out.utf8) + Array("/t/".utf8) + Self.cafeNFD, as: UTF8.self)
        #expect(try readFile(nfd) == Array("NFD".utf8))
    }

    /// Proves: NFD-only and non-UTF-8 names, and symlink targets, come back as their exact
    /// bytes (before the fix an NFD name came back in NFC).
    @Test func namesAreRestoredAsTheirExactBytes() throws {
        let dir = TemporaryDirectory()
        let repo = try makeRepository(dir)
        let bad: [UInt8] = Array("bad".utf8) + [0xFF]
        let m = try TarBuilder.commitSnapshot(TarBuilder.build([
            .entry(.init(bytes: Self.cafeNFD, data: Array("nfd".utf8))),
            .entry(.init(bytes: bad, type: .directory, mode: 0o755)),
            .entry(.init(bytes: bad + Array("/inner".utf8), data: Array("inner".utf8))),
            .entry(.init(bytes: Array("link".utf8), type: .symlink, mode: 0o777, link: Self.cafeNFD)),
        ]), to: repo)
        let out = dir.sub("out")
        guard case .success? = finishing("restore of byte names", { try FilesystemRestore(repository: repo, manifest: m).run(to: out) }) else {
            Issue.record("restore failed")
            return
        }
        #expect(try names(out) == [Self.cafeNFD, bad, Array("link".utf8)])
        var target = [CChar](repeating: 0, count: 256)
        let n = readlink(out + "/link", &target, target.count)
        #expect(Array(target.prefix(max(n, 0)).map { UInt8(bitPattern: $0) }) == Self.cafeNFD)
        #expect(try names(bytes: Array(out.utf8) + [0x2F] + bad) == [Array("inner".utf8)])
    }

    /// Proves: a sparse file's holes stay holes, its content and size are exact, and an mtime
    /// keeps its nanoseconds.
    @Test func sparseFilesAndNanosecondTimesAreRestoredExactly() throws {
        let dir = TemporaryDirectory()
        let repo = try makeRepository(dir)
        var data = [UInt8](repeating: 0, count: 12 << 20)
        var gen = SeededBytes(seed: 5)
        let islands: [(offset: Int64, length: Int64)] = [(0, 4096), (5 << 20, 8192), ((12 << 20) - 4096, 4096)]
        for i in islands { data.replaceSubrange(Int(i.offset)..<Int(i.offset + i.length), with: gen.bytes(Int(i.length))) }
        var sparse = TarBuilder.Spec(bytes: Array("sparse.ibd".utf8), data: data)
        sparse.sparse = islands
        sparse.mtime = (1_700_000_000, 987_654_321)
        var holeAtEnd = TarBuilder.Spec(bytes: Array("tail.ibd".utf8), data: Array(data[0..<4096]) + [UInt8](repeating: 0, count: 1 << 20))
        holeAtEnd.sparse = [(0, 4096), (Int64(4096 + (1 << 20)), 0)]
        let m = try TarBuilder.commitSnapshot(TarBuilder.build([.entry(sparse), .entry(holeAtEnd)]), to: repo)
        let out = dir.sub("out")
        _ = try FilesystemRestore(repository: repo, manifest: m).run(to: out)
        #expect(try readFile(out + "/sparse.ibd") == data)
        let st = lstatOf(out + "/sparse.ibd")
        #expect(st.st_size == Int64(data.count))
        #expect(Int(st.st_blocks) * 512 < 1 << 20, "holes stay holes: \(st.st_blocks * 512) bytes allocated")
        #expect(st.st_mtim.tv_sec == 1_700_000_000 && st.st_mtim.tv_nsec == 987_654_321)
        #expect(lstatOf(out + "/tail.ibd").st_size == Int64(4096 + (1 << 20)))
        #expect(try readFile(out + "/tail.ibd") == holeAtEnd.data)
    }

    /// Proves: a restore onto a full filesystem stops with an I/O error (74), removes its
    /// staging folder, leaves the target alone and records nothing against the snapshot
    /// (before the fix it wrote `ENOSPC` forever).
    @Test func aFullTargetFilesystemIsAnIOErrorNotAHang() throws {
        let dir = TemporaryDirectory()
        let src = dir.sub("big")
        var gen = SeededBytes(seed: 9)
        for i in 0..<4 { try writeFile(src + "/part\(i).bin", gen.bytes(3 << 20)) }
        let repo = try makeRepository(dir)
        let m = try FilesystemSnapshotWriter(paths: [src], options: BackupOptions(source: "big")).write(to: repo)
        let mount = dir.sub("small")
        try FileManager.default.createDirectory(atPath: mount, withIntermediateDirectories: true)
        let mounted = try shell("mount -t tmpfs -o size=4m tmpfs '\(mount)'")
        try #require(mounted.status == 0, "mount a 4 MiB tmpfs (the tests run as root): \(mounted.stderr)")
        defer { _ = try? shell("umount -l '\(mount)'") }
        let result = finishing("restore onto a full filesystem") { try FilesystemRestore(repository: repo, manifest: m).run(to: mount + "/out") }
        switch result {
        case .success?: Issue.record("restored 12 MiB into 4 MiB")
        case .failure(let error as ExitStatusProviding)?:
            #expect(error.exitStatus == .ioError, "\(error)")
            #expect("\(error)".contains("No space left on device"), "\(error)")
        case .failure(let error)?: Issue.record("\(error)")
        case nil: break
        }
        #expect(try FileSystem.list(mount).isEmpty, "staging removed, no target")
        let report = try repo.restore(candidates: [m.id], request: RestoreRequest(target: dir.sub("elsewhere")), fallback: false) { _ in }
        #expect(report.snapshot == m.id)
        #expect(try repo.catalog.lastVerifications()[m.id]?.passed != false, "nothing recorded against the snapshot")
    }

    /// Proves: `--include NAME` of a directory brings its contents (before: the empty directory),
    /// and a pattern without `/` matches base names anywhere.
    @Test func anIncludedDirectoryBringsItsContents() throws {
        let dir = TemporaryDirectory()
        let src = dir.sub("mysql-snapshot")
        try writeFile(src + "/app07/t.ibd", Array("t".utf8))
        try writeFile(src + "/app07/sub/u.ibd", Array("u".utf8))
        try writeFile(src + "/app08/t.ibd", Array("other".utf8))
        try writeFile(src + "/app07.cnf", Array("cnf".utf8))
        let repo = try makeRepository(dir)
        let m = try FilesystemSnapshotWriter(paths: [src], options: BackupOptions(source: "mysql")).write(to: repo)
        for (n, include) in ["app07", "mysql-snapshot/app07", "mysql-snapshot/app07/", "app0[7]"].enumerated() {
            let out = dir.sub("out\(n)")
            _ = try FilesystemRestore(repository: repo, manifest: m, includes: [include]).run(to: out)
            #expect(try readFile(out + "/mysql-snapshot/app07/t.ibd") == Array("t".utf8), "\(include)")
            #expect(try readFile(out + "/mysql-snapshot/app07/sub/u.ibd") == Array("u".utf8), "\(include)")
            #expect(try FileSystem.list(out + "/mysql-snapshot") == ["app07"], "\(include)")
        }
    }

    /// Proves: as root, owners and modes (setuid included) are restored exactly by default;
    /// `noSameOwner` keeps the restorer as owner and drops setuid; `noSamePermissions` drops
    /// setuid, setgid and sticky bits and applies the umask.
    @Test func ownersAndPermissionsFollowTheGNUTarFlags() throws {
        try #require(getuid() == 0, "the tests run as root (they also mount a tmpfs)")
        let dir = TemporaryDirectory()
        let repo = try makeRepository(dir)
        var file = TarBuilder.Spec("suid", mode: 0o4775, data: "x")
        file.uid = 4242
        file.gid = 4343
        var sticky = TarBuilder.Spec("tmp", type: .directory, mode: 0o1777)
        sticky.uid = 4242
        sticky.gid = 4343
        let m = try TarBuilder.commitSnapshot(TarBuilder.build([.entry(file), .entry(sticky)]), to: repo)

        _ = try FilesystemRestore(repository: repo, manifest: m).run(to: dir.sub("same"))
        var st = lstatOf(dir.sub("same/suid"))
        #expect(st.st_uid == 4242 && st.st_gid == 4343 && st.st_mode & 0o7777 == 0o4775)
        st = lstatOf(dir.sub("same/tmp"))
        #expect(st.st_uid == 4242 && st.st_mode & 0o7777 == 0o1777)

        _ = try FilesystemRestore(repository: repo, manifest: m, noSameOwner: true).run(to: dir.sub("owner"))
        st = lstatOf(dir.sub("owner/suid"))
        #expect(st.st_uid == 0 && st.st_gid == 0 && st.st_mode & 0o7777 == 0o0775, "setuid dropped: not the recorded owner")

        let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        let umaskLine = status.split(separator: "\n").first { $0.hasPrefix("Umask:") }!
        let mask = UInt32(umaskLine.dropFirst(6).trimmingCharacters(in: .whitespaces), radix: 8)!
        _ = try FilesystemRestore(repository: repo, manifest: m, noSamePermissions: true).run(to: dir.sub("perm"))
        st = lstatOf(dir.sub("perm/suid"))
        #expect(st.st_uid == 4242 && UInt32(st.st_mode & 0o7777) == 0o775 & ~mask)
        #expect(UInt32(lstatOf(dir.sub("perm/tmp")).st_mode & 0o7777) == 0o777 & ~mask)
    }

    /// Proves: extended attributes and POSIX ACLs come back (libarchive's reader turns them into
    /// pax records; the restore writer sets them on the open file).
    @Test func extendedAttributesAndACLsAreRestored() throws {
        let dir = TemporaryDirectory()
        let src = dir.sub("t")
        try writeFile(src + "/f", Array("x".utf8))
        #expect(try shell("setfattr -n user.backstop -v hello '\(src)/f'").status == 0)
        // A minimal access ACL with a named user (version 2 entries: tag, perm, id), set with
        // setfattr so the test needs no acl package.
        let acl = "0x02000000" + "01000600ffffffff" + "0200040039300000" + "04000400ffffffff" + "10000400ffffffff" + "20000400ffffffff"
        #expect(try shell("setfattr -n system.posix_acl_access -v \(acl) '\(src)/f'").status == 0)
        let repo = try makeRepository(dir)
        let m = try FilesystemSnapshotWriter(paths: [src], options: BackupOptions(source: "t")).write(to: repo)
        _ = try FilesystemRestore(repository: repo, manifest: m).run(to: dir.sub("out"))
        #expect(try shell("getfattr --only-values -n user.backstop '\(dir.sub("out/t/f"))'").stdoutText == "hello")
        let restored = try shell("getfattr -e hex --only-values -n system.posix_acl_access '\(dir.sub("out/t/f"))' | od -An -tx1 | tr -d ' \\n'")
        let original = try shell("getfattr -e hex --only-values -n system.posix_acl_access '\(src)/f' | od -An -tx1 | tr -d ' \\n'")
        #expect(!original.stdoutText.isEmpty && restored.stdoutText == original.stdoutText, "ACL restored: \(restored.stdoutText) vs \(original.stdoutText)")
    }
}
