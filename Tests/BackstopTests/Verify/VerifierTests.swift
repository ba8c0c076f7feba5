import Foundation
import Testing
@testable import Backstop

/// The corruption matrix: real snapshots of both kinds (the logical one of the real pg_dumpall
/// fixture, grown to several frames), damaged one way each, must fail
/// verification (exit 65 in the CLI) with a report naming the damaged file, while a clean
/// snapshot beside them still passes.
@Suite struct VerifierTests {
    enum Kind: String, CaseIterable { case filesystem, logical }

    /// A repository holding one clean snapshot of `kind` and the snapshot to damage. Format 2
    /// stores a frame once for every snapshot that has it, so the victim's content differs from
    /// the clean one's (most of its frames are its own); damage to a frame object goes into one
    /// of `victimFrames`.
    func makeSnapshots(_ kind: Kind, _ dir: TemporaryDirectory) throws -> (Repository, clean: Manifest, victim: Manifest) {
        let repo = try makeRepository(dir)
        switch kind {
        case .filesystem:
            let write = { (seed: UInt64) throws -> Manifest in
                var gen = SeededBytes(seed: seed)
                for i in 0..<8 { try writeFile(dir.sub("src/f\(i).dat"), i % 2 == 0 ? gen.bytes(700_000) : gen.text(900_000)) }
                try writeFile(dir.sub("src/sub/small.txt"), Array("small \(seed)\n".utf8))
                return try FilesystemSnapshotWriter(paths: [dir.sub("src")], options: BackupOptions(source: "fs")).write(to: repo)
            }
            return (repo, try write(5), try write(6))
        case .logical:
            let write = { (dump: [UInt8]) throws -> Manifest in
                try writeFile(dir.sub("dump.sql"), dump)
                let fd = open(dir.sub("dump.sql"), O_RDONLY)
                defer { close(fd) }
                return try LogicalSnapshotWriter(input: .fileDescriptor(fd), options: BackupOptions(source: "pg")).write(to: repo)
            }
            return (repo, try write(try Self.pgDump.get()), try write(try Self.pgDumpVictim.get()))
        }
    }

    /// The real pg_dumpall fixture grown to a few MiB (several frames), made once per test process.
    static let pgDump = Result { try Fixtures.bigPgDumpall() }
    /// The same with other generated rows.
    static let pgDumpVictim = Result { try Fixtures.bigPgDumpall(seed: 2000) }

    /// Indices of the victim's frames that the clean snapshot does not use.
    func victimFrames(_ repo: Repository, _ clean: Manifest, _ victim: Manifest) throws -> [Int] {
        let shared = Set(try repo.frameRefs(clean).map(\.id))
        let own = try repo.frameRefs(victim).enumerated().filter { !shared.contains($0.element.id) }.map(\.offset)
        #expect(own.count >= 2, "the victim has frames of its own")
        return own
    }

    func verify(_ repo: Repository, _ m: Manifest, _ mode: VerificationMode = .full) -> VerificationResult {
        Verifier(repository: repo, id: m.id).verify(mode: mode)
    }

    func names(_ r: VerificationResult, _ file: String) -> Bool {
        r.problems.contains { $0.file == file || $0.message.contains(file) }
    }

    /// Rewrites the manifest's record of `file` and SHA256SUMS so only deeper checks can notice.
    func resign(_ repo: Repository, _ m: inout Manifest, changing file: String? = nil) throws {
        let folder = repo.snapshotDirectory(m.id)
        if let file, let i = m.files.firstIndex(where: { $0.name == file }) {
            let bytes = try readFile(folder + "/" + file)
            m.files[i].size = Int64(bytes.count)
            m.files[i].sha256 = SHA256Hasher.digest(bytes)
        }
        let manifestBytes = Array(try Timestamp.jsonEncoder().encode(m)) + [0x0A]
        try writeFile(folder + "/manifest.json", manifestBytes)
        let sums = try shell("sha256sum $(ls | grep -v SHA256SUMS)", directory: folder)
        try writeFile(folder + "/SHA256SUMS", Array(sums.stdoutText.utf8))
    }

    @Test(arguments: Kind.allCases)
    func aCleanSnapshotPassesBothModes(kind: Kind) throws {
        let dir = TemporaryDirectory()
        let (repo, clean, victim) = try makeSnapshots(kind, dir)
        for m in [clean, victim] {
            for mode in VerificationMode.allCases {
                let r = verify(repo, m, mode)
                #expect(r.passed, "\(kind) \(mode): \(r.problems)")
                #expect(r.bytesRead > 0)
            }
        }
    }

    /// The snapshot's own files: a bit flip anywhere is caught by both modes (SHA256SUMS).
    @Test(arguments: Kind.allCases)
    func bitFlipsInEveryStoredFileAreCaught(kind: Kind) throws {
        var rng = SeededBytes(seed: 77)
        for file in ["frames.tsv", "entries.jsonl.zst", "manifest.json", "SHA256SUMS"] {
            if kind == .logical && file == "entries.jsonl.zst" { continue }
            for _ in 0..<3 {
                let dir = TemporaryDirectory()
                let (repo, clean, victim) = try makeSnapshots(kind, dir)
                let path = repo.snapshotDirectory(victim.id) + "/" + file
                var bytes = try readFile(path)
                let position = Int(rng.next() % UInt64(bytes.count))
                bytes[position] ^= UInt8(1 << (rng.next() % 8))
                try writeFile(path, bytes)
                for mode in VerificationMode.allCases {
                    let r = verify(repo, victim, mode)
                    #expect(!r.passed, "\(kind) \(file) byte \(position) \(mode): undetected")
                    #expect(names(r, file), "\(kind) \(file) byte \(position) \(mode): \(r.problems)")
                }
                #expect(verify(repo, clean).passed)
            }
        }
    }

    /// Format 2's payload is frame objects named by the SHA-256 of their decoded bytes: a bit
    /// flip anywhere in one is caught by full verification (which decodes every frame and checks
    /// its ID), naming the frame's key. Quick verification checks presence and size only (format
    /// 1's quick check hashed the one payload file; format 2 has none).
    @Test(arguments: Kind.allCases)
    func bitFlipsInFrameObjectsAreCaught(kind: Kind) throws {
        var rng = SeededBytes(seed: 78)
        for _ in 0..<4 {
            let dir = TemporaryDirectory()
            let (repo, clean, victim) = try makeSnapshots(kind, dir)
            let own = try victimFrames(repo, clean, victim)
            let index = own[Int(rng.next() % UInt64(own.count))]
            let size = try readFile(repo.framePath(victim, index)).count
            let position = Int(rng.next() % UInt64(size))
            try repo.flipFrameBit(victim, index, at: position, bit: Int(rng.next() % 8))
            let key = try repo.frameKey(victim, index)
            let r = verify(repo, victim, .full)
            #expect(!r.passed, "\(kind) frame \(index) byte \(position): undetected")
            #expect(r.problems.contains { $0.file == "frames.tsv" && $0.location == "frame \(index)" && $0.message.contains(key) },
                    "\(kind) frame \(index) byte \(position): \(r.problems)")
            #expect(verify(repo, clean).passed)
        }
    }

    /// Proves: a repeated full verification (frames only, the structure passed before; its
    /// frames read and decoded in parallel) reports every damaged frame, each by its key, and
    /// goes on past the first; the snapshot that shares none of them still passes.
    @Test(arguments: Kind.allCases)
    func aFramesOnlyVerificationReportsEveryDamagedFrame(kind: Kind) throws {
        let dir = TemporaryDirectory()
        let (repo, clean, victim) = try makeSnapshots(kind, dir)
        #expect(verify(repo, victim).passed)
        let own = try victimFrames(repo, clean, victim)
        let damaged = [own.first!, own.last!]
        for index in damaged { try repo.flipFrameBit(victim, index, at: 0, bit: 3) }
        let r = Verifier(repository: repo, id: victim.id).verify(mode: .full, structure: false)
        #expect(!r.passed)
        for index in damaged {
            let key = try repo.frameKey(victim, index)
            #expect(r.problems.contains { $0.file == "frames.tsv" && $0.location == "frame \(index)" && $0.message.contains(key) },
                    "\(kind) frame \(index): \(r.problems)")
        }
        #expect(r.problems.count == damaged.count, "\(r.problems)")
        #expect(Verifier(repository: repo, id: clean.id).verify(mode: .full, structure: false).passed)
    }

    @Test(arguments: Kind.allCases)
    func aTruncatedPayloadIsCaught(kind: Kind) throws {
        let dir = TemporaryDirectory()
        let (repo, clean, victim) = try makeSnapshots(kind, dir)
        let index = try victimFrames(repo, clean, victim)[0]
        let bytes = try readFile(repo.framePath(victim, index))
        try repo.replaceFrame(victim, index, with: Array(bytes.prefix(bytes.count * 2 / 3)))
        let key = try repo.frameKey(victim, index)
        for mode in VerificationMode.allCases {
            let r = verify(repo, victim, mode)
            #expect(!r.passed && names(r, key), "\(mode): \(r.problems)")
        }
        #expect(verify(repo, clean).passed)
    }

    @Test(arguments: Kind.allCases)
    func aRemovedFileIsCaught(kind: Kind) throws {
        let files = kind == .filesystem ? ["frames.tsv", "entries.jsonl.zst", "manifest.json", "SHA256SUMS", "frame"] : ["frames.tsv", "manifest.json", "SHA256SUMS", "frame"]
        for file in files {
            let dir = TemporaryDirectory()
            let (repo, clean, victim) = try makeSnapshots(kind, dir)
            var name = file
            if file == "frame" {
                let index = try victimFrames(repo, clean, victim)[0]
                name = try repo.frameKey(victim, index)
                unlink(try repo.framePath(victim, index))
            } else {
                unlink(repo.snapshotDirectory(victim.id) + "/" + file)
            }
            let r = verify(repo, victim)
            #expect(!r.passed && names(r, name), "\(name): \(r.problems)")
            #expect(verify(repo, clean).passed)
        }
    }

    /// Format 2's equivalent of a seek table that lies: `frames.tsv` (re-signed) moves one byte
    /// of decoded size from frame 0 to frame 1, so the totals still add up.
    @Test(arguments: Kind.allCases)
    func aSeekTableThatLiesAboutAFrameIsCaught(kind: Kind) throws {
        let dir = TemporaryDirectory()
        var (repo, clean, victim) = try makeSnapshots(kind, dir)
        var frames = try repo.frameRefs(victim)
        #expect(frames.count >= 2)
        frames[0].uncompressedSize -= 1
        frames[1].uncompressedSize += 1
        try writeFile(repo.snapshotDirectory(victim.id) + "/frames.tsv", FrameList.encode(frames))
        try resign(repo, &victim, changing: victim.payloadName)
        #expect(verify(repo, victim, .quick).passed, "quick mode trusts the re-signed digests")
        let r = verify(repo, victim)
        #expect(!r.passed)
        #expect(r.problems.contains { $0.file == victim.payloadName && $0.location == "frame 0" }, "\(r.problems)")
        #expect(verify(repo, clean).passed)
    }

    /// A file's content that does not match the entry list's digest is reported against the
    /// payload as this format names it (`frames.tsv`), not a file format 2 does not have.
    @Test func aContentDigestMismatchNamesThePayloadOfThisFormat() throws {
        let dir = TemporaryDirectory()
        var (repo, clean, victim) = try makeSnapshots(.filesystem, dir)
        let folder = repo.snapshotDirectory(victim.id)
        var lines = try shell("zstd -dc entries.jsonl.zst", directory: folder).stdoutText.split(separator: "\n").map(String.init)
        let index = lines.firstIndex { $0.contains("f3.dat") }!
        let forged = SHA256Hasher.digest(Array("forged".utf8)).hex
        lines[index] = lines[index].replacingOccurrences(of: #""sha256":"[0-9a-f]{64}""#, with: "\"sha256\":\"\(forged)\"", options: .regularExpression)
        #expect(lines[index].contains(forged))
        unlink(folder + "/entries.jsonl.zst")
        let writer = SeekableZstdWriter(downstream: try FileSink(path: folder + "/entries.jsonl.zst"))
        try writer.write(Array((lines.joined(separator: "\n") + "\n").utf8))
        try writer.finish()
        try resign(repo, &victim, changing: "entries.jsonl.zst")
        let r = verify(repo, victim)
        #expect(r.problems.contains { $0.file == victim.payloadName && $0.location == "entry src/f3.dat" }, "\(r.problems)")
        #expect(verify(repo, clean).passed)
    }

    @Test func anEntryListThatDisagreesWithTheTarIsCaught() throws {
        let dir = TemporaryDirectory()
        var (repo, clean, victim) = try makeSnapshots(.filesystem, dir)
        let folder = repo.snapshotDirectory(victim.id)
        var lines = try shell("zstd -dc entries.jsonl.zst", directory: folder).stdoutText.split(separator: "\n").map(String.init)
        let index = lines.firstIndex { $0.contains("f3.dat") }!
        lines[index] = lines[index].replacingOccurrences(of: "\"size\":900000", with: "\"size\":900001")
        unlink(folder + "/entries.jsonl.zst")
        let writer = SeekableZstdWriter(downstream: try FileSink(path: folder + "/entries.jsonl.zst"))
        try writer.write(Array((lines.joined(separator: "\n") + "\n").utf8))
        try writer.finish()
        try resign(repo, &victim, changing: "entries.jsonl.zst")
        let r = verify(repo, victim)
        #expect(!r.passed)
        #expect(r.problems.contains { $0.location == "entry src/f3.dat" }, "\(r.problems) \(lines[index])")
        #expect(verify(repo, clean).passed)
    }

    /// Review finding 6: a crafted entry list whose file time is year 999,999,999,999 (its
    /// seconds overflow Int64) is a corrupt entry list for verify and restore (65), not a crash.
    @Test(arguments: ["999999999999-01-01T00:00:00Z", "-999999999999-01-01T00:00:00Z", "292277026596-12-04T15:30:08Z"])
    func anEntryListWithAnOutOfRangeTimeIsCorrupt(time: String) throws {
        let dir = TemporaryDirectory()
        var (repo, clean, victim) = try makeSnapshots(.filesystem, dir)
        let folder = repo.snapshotDirectory(victim.id)
        var lines = try shell("zstd -dc entries.jsonl.zst", directory: folder).stdoutText.split(separator: "\n").map(String.init)
        let index = lines.firstIndex { $0.contains("f3.dat") }!
        let edited = try #require(lines[index].range(of: #""mtime":"[^"]*""#, options: .regularExpression))
        lines[index].replaceSubrange(edited, with: "\"mtime\":\"\(time)\"")
        unlink(folder + "/entries.jsonl.zst")
        let writer = SeekableZstdWriter(downstream: try FileSink(path: folder + "/entries.jsonl.zst"))
        try writer.write(Array((lines.joined(separator: "\n") + "\n").utf8))
        try writer.finish()
        try resign(repo, &victim, changing: "entries.jsonl.zst")
        let r = verify(repo, victim)
        #expect(!r.passed)
        #expect(r.problems.contains { $0.file == "entries.jsonl.zst" }, "\(r.problems)")
        #expect(FileTime(rfc3339: time) == nil)
        let target = dir.sub("out")
        #expect {
            _ = try FilesystemRestore(repository: repo, manifest: victim).run(to: target)
        } throws: { error in
            guard case let RestoreError.corrupt(_, file, _, _) = error else { return false }
            return file == "entries.jsonl.zst"
        }
        #expect(!FileSystem.exists(target))
        #expect(verify(repo, clean).passed)
    }

    @Test(arguments: Kind.allCases)
    func aManifestWhoseDigestWasEditedIsCaught(kind: Kind) throws {
        let dir = TemporaryDirectory()
        var (repo, clean, victim) = try makeSnapshots(kind, dir)
        victim.sha256 = SHA256Hasher.digest(Array("forged".utf8))
        try resign(repo, &victim)
        let r = verify(repo, victim)
        #expect(!r.passed)
        #expect(r.problems.contains { $0.file == "manifest.json" }, "\(r.problems)")
        #expect(verify(repo, clean).passed)
    }

    @Test func aSectionDigestThatLiesIsCaught() throws {
        let dir = TemporaryDirectory()
        var (repo, _, victim) = try makeSnapshots(.logical, dir)
        victim.sections[1].sha256 = SHA256Hasher.digest(Array("forged".utf8))
        try resign(repo, &victim)
        let r = verify(repo, victim)
        #expect(r.problems.contains { $0.location == "section \(victim.sections[1].name)" }, "\(r.problems)")
    }
    // History and sample rotation: VerificationRunTests, on both backends.
}
