import Foundation
import Testing
@testable import Backstop

/// An encrypted repository on every backend: what is stored is age ciphertext under keyed frame
/// IDs, what needs no key works without one, and what needs the identity refuses clearly
/// without it (77) or on tampered ciphertext (65).
@Suite struct EncryptedRepositoryTests {
    struct Setup {
        let dir: TemporaryDirectory
        let base: StorageBackend
        let catalogPath: String
        let identity: AgeIdentity
        let writerKey: String
        let repo: Repository

        func reopen(identities: [AgeIdentity], writerKey: String? = nil, catalog: String? = nil) throws -> Repository {
            try Repository.open(storage: base, catalogPath: catalog ?? catalogPath,
                                keys: RepositoryKeys(identities: identities, writerKeyPath: writerKey ?? dir.sub("absent-writer-key.json")))
        }
    }

    static func make(_ backend: Backends, _ dir: TemporaryDirectory) throws -> Setup {
        let identity = AgeIdentity.generate()
        let base = backend.makeStorage(dir)
        let catalogPath = base.defaultCatalogPath ?? dir.sub("catalog.sqlite")
        let writerKey = dir.sub("keys/writer.json")
        let repo = try Repository.create(storage: base, catalogPath: catalogPath, encryptTo: [identity.recipient!], writerKeyPath: writerKey)
        return Setup(dir: dir, base: base, catalogPath: catalogPath, identity: identity, writerKey: writerKey, repo: repo)
    }

    static let ageMagic = Array("age-encryption.org/v1\n".utf8)

    /// Proves: an archived log segment (binlog or WAL: every row written) is stored as an age
    /// file, read back with the identity, and refused without one (77); its record, like a
    /// manifest, stays readable.
    @Test(arguments: Backends.allCases)
    func logSegmentsAreEncrypted(backend: Backends) throws {
        let dir = TemporaryDirectory("enc-logs")
        let s = try Self.make(backend, dir)
        let wal = Array(String(repeating: "INSERT INTO secrets VALUES ('row');\n", count: 2000).utf8)
        let name = "000000010000000000000001"
        guard case let .archived(segment) = try s.repo.pushLog(bytes: wal, name: name, source: "pg-wal", kind: .pgWAL) else {
            Issue.record("the segment was not archived")
            return
        }
        let stored = try s.base.read(RepositoryLayout.logData("pg-wal", segment.objectName))
        #expect(Array(stored.prefix(Self.ageMagic.count)) == Self.ageMagic)
        #expect(!String(decoding: stored, as: UTF8.self).contains("secrets"))
        let record = try s.base.read(RepositoryLayout.logRecord("pg-wal", segment.objectName))
        #expect(String(decoding: record, as: UTF8.self).contains(name))
        #expect(try s.reopen(identities: [s.identity]).readLogSegment(segment) == wal)
        do {
            _ = try s.reopen(identities: []).readLogSegment(segment)
            Issue.record("a segment of an encrypted repository was read without an identity")
        } catch let error as ExitStatusProviding {
            #expect(error.exitStatus == .permissionDenied, "\(error)")
        }
    }

    /// Proves: frames, frames.tsv and the entry list are stored as age files (and decrypt with
    /// the identity to what the repository reads), frame names are not the SHA-256 of their
    /// content, and the writer key file is private.
    @Test(arguments: Backends.allCases)
    func privateObjectsAreAgeFilesUnderKeyedNames(backend: Backends) throws {
        let dir = TemporaryDirectory("enc")
        try writeSourceTree(dir, big: true)
        let s = try Self.make(backend, dir)
        let m = try backUp(dir, to: s.repo)
        var st = stat()
        #expect(stat(s.writerKey, &st) == 0 && st.st_mode & 0o777 == 0o600)
        let frameKeys = try s.base.list(under: RepositoryLayout.frames)
        #expect(!frameKeys.isEmpty)
        let reading = try s.reopen(identities: [s.identity])
        for key in frameKeys + [RepositoryLayout.snapshotFile(m.id, "frames.tsv"), RepositoryLayout.snapshotFile(m.id, "entries.jsonl.zst")] {
            let stored = try s.base.read(key)
            #expect(Array(stored.prefix(Self.ageMagic.count)) == Self.ageMagic, "\(key)")
            #expect(try Age.decrypt(stored, identities: [s.identity]) == reading.storage.read(key), "\(key)")
        }
        // The manifest's selection fields stay readable; frame names are keyed hashes.
        let manifest = try Timestamp.jsonDecoder().decode(Manifest.self, from: Data(s.base.read(RepositoryLayout.manifest(m.id))))
        #expect(manifest.source == "s")
        let reader = try SnapshotReader(repository: reading, manifest: m).payload()
        let first = try reader.decodeFrame(0)
        let refs = try SnapshotReader(repository: reading, manifest: m).frameList()
        #expect(refs[0].id != SHA256Hasher.digest(first))
        #expect(refs[0].id == (try s.repo.storage.frameID(of: first)))
    }

    /// Proves the manifest split on every backend: the stored manifest holds the private part
    /// only sealed (no path given to `backup`, no warnings' text; `warningCount` instead); read
    /// without an identity it stays sealed (selection fields intact), with one it is whole again
    /// and equal to what the writer returned.
    @Test(arguments: Backends.allCases)
    func theManifestsPrivatePartIsSealed(backend: Backends) throws {
        let dir = TemporaryDirectory("enc-manifest")
        try writeSourceTree(dir)
        let s = try Self.make(backend, dir)
        let m = try backUp(dir, to: s.repo)
        #expect(m.paths == [dir.sub("src")] && !m.isSealed)
        let raw = try s.base.read(RepositoryLayout.manifest(m.id))
        #expect(!String(decoding: raw, as: UTF8.self).contains(dir.sub("src")))
        let stored = try Timestamp.jsonDecoder().decode(Manifest.self, from: Data(raw))
        #expect(stored.sealed != nil && stored.paths.isEmpty && stored.warningCount == 0)
        #expect(stored.source == m.source && stored.entryCount == m.entryCount && stored.bytesIn == m.bytesIn)
        let keyless = try s.reopen(identities: [], writerKey: s.writerKey, catalog: dir.sub("keyless.sqlite"))
        let sealed = try keyless.manifest(m.id)
        #expect(sealed.isSealed && sealed.paths.isEmpty)
        #expect(throws: AgeError.self) { try keyless.requireUnsealed(sealed, for: "a test") }
        let reading = try s.reopen(identities: [s.identity])
        #expect(try reading.manifest(m.id) == m)
    }

    /// Proves: without an identity, listing, selection and quick verification work; full
    /// verification and restore say which recipients they need (77); with it, both work.
    @Test(arguments: Backends.allCases)
    func readingNeedsTheIdentityButListingAndQuickVerifyDoNot(backend: Backends) throws {
        let dir = TemporaryDirectory("enc")
        try writeSourceTree(dir)
        let s = try Self.make(backend, dir)
        let m = try backUp(dir, to: s.repo)

        let keyless = try s.reopen(identities: [], writerKey: s.writerKey, catalog: dir.sub("other-catalog.sqlite"))
        #expect(try keyless.snapshots().map(\.id) == [m.id])
        let quick = Verifier(repository: keyless, id: m.id).verify(mode: .quick)
        #expect(quick.passed, "\(quick.problems)")
        let full = Verifier(repository: keyless, id: m.id).verify(mode: .full)
        #expect(!full.passed)
        let error = #expect(throws: AgeError.self) {
            try FilesystemRestore(repository: keyless, manifest: m).run(to: dir.sub("out0"))
        }
        #expect(error.map { ExitStatus(for: $0) } == .permissionDenied)
        #expect(error?.description.contains(s.identity.recipient!.description) == true)

        let wrong = try s.reopen(identities: [AgeIdentity.generate()])
        expectNoKey { try FilesystemRestore(repository: wrong, manifest: m).run(to: dir.sub("out1")) }

        let reader = try s.reopen(identities: [s.identity])
        #expect(Verifier(repository: reader, id: m.id).verify(mode: .full).passed)
        _ = try FilesystemRestore(repository: reader, manifest: m).run(to: dir.sub("out"))
        for i in 0..<4 { #expect(try readFile(dir.sub("out/src/f\(i).dat")) == readFile(dir.sub("src/f\(i).dat"))) }
    }

    /// Proves: a backup with the writer key alone (no identity) works, and reuses frames of the
    /// previous snapshot (same keyed IDs); without writer key or identity, backing up is 77.
    @Test(arguments: Backends.allCases)
    func writersNeedOnlyTheWriterKey(backend: Backends) throws {
        let dir = TemporaryDirectory("enc")
        try writeSourceTree(dir)
        let s = try Self.make(backend, dir)
        let first = try backUp(dir, to: s.repo)
        let writer = try s.reopen(identities: [], writerKey: s.writerKey)
        let second = try backUp(dir, to: writer)
        #expect(second.framesNew == 0)
        #expect(second.frameCount == first.frameCount)
        let nobody = try s.reopen(identities: [])
        let error = #expect(throws: (any Error).self) { try backUp(dir, to: nobody) }
        #expect(error.map { ExitStatus(for: $0) } == .permissionDenied)
        // An identity alone also lets one write (it unwraps the keyed-hash key).
        let third = try backUp(dir, to: try s.reopen(identities: [s.identity]))
        #expect(third.framesNew == 0)
    }

    /// Proves: a tampered or truncated frame object is an integrity failure (65) naming it.
    @Test(arguments: Backends.allCases)
    func tamperedCiphertextIsAnIntegrityFailureNamingTheObject(backend: Backends) throws {
        let dir = TemporaryDirectory("enc")
        try writeSourceTree(dir, big: true)
        let s = try Self.make(backend, dir)
        let m = try backUp(dir, to: s.repo)
        let key = try s.base.list(under: RepositoryLayout.frames)[0]
        let t = TestRepository(dir: dir, base: s.base, catalogPath: s.catalogPath, repo: s.repo)
        var bytes = try s.base.read(key)
        bytes[bytes.count - 20] ^= 0x04
        try t.damage(key, with: bytes)
        let reader = try s.reopen(identities: [s.identity])
        let result = Verifier(repository: reader, id: m.id).verify(mode: .full)
        #expect(!result.passed)
        #expect(result.problems.contains { $0.message.contains(key.rawValue) }, "\(result.problems)")
        let error = #expect(throws: (any Error).self) { try FilesystemRestore(repository: reader, manifest: m).run(to: dir.sub("out")) }
        #expect(error.map { ExitStatus(for: $0) } == .integrity)
        // Truncated at a chunk boundary: the last-chunk flag is missing.
        let key1 = try #require(try s.base.list(under: RepositoryLayout.frames).max { try s.base.size(of: $0)! < s.base.size(of: $1)! })
        let sealed = try s.base.read(key1)
        #expect(sealed.count > 65_552 + 200)
        let payloadStart = try AgeHeader.parse(sealed).length + 16
        try t.damage(key1, with: Array(sealed[..<(payloadStart + 65_552)]))
        let again = Verifier(repository: try s.reopen(identities: [s.identity]), id: m.id).verify(mode: .full)
        #expect(again.problems.contains { $0.message.contains(key1.rawValue) }, "\(again.problems)")
    }

    /// Proves: a partial restore of one small file reads (and decrypts) only its frame's
    /// chunks, a small fraction of the payload (bytes read counted, not timed).
    @Test(arguments: Backends.allCases)
    func aPartialRestoreDecryptsOnlyTheChunksOfItsFrames(backend: Backends) throws {
        let dir = TemporaryDirectory("enc")
        var gen = SeededBytes(seed: 31)
        for i in 0..<12 { try writeFile(dir.sub("src/part\(String(format: "%02d", i)).bin"), gen.bytes(1_500_000)) }
        try writeFile(dir.sub("src/m/needle.txt"), Array("the one file we need\n".utf8))
        let s = try Self.make(backend, dir)
        let m = try backUp(dir, to: s.repo)
        let reader = try s.reopen(identities: [s.identity])
        let payloadSize = try SnapshotReader(repository: reader, manifest: m).frameList().reduce(Int64(0)) { $0 + Int64($1.compressedSize) }
        let report = try FilesystemRestore(repository: reader, manifest: m, includes: ["src/m/needle.txt"]).run(to: dir.sub("one"))
        #expect(try readFile(dir.sub("one/src/m/needle.txt")) == Array("the one file we need\n".utf8))
        #expect(report.framesRead == 1)
        #expect(report.bytesRead * 20 < payloadSize, "read \(report.bytesRead) of \(payloadSize) bytes")
    }

    /// Proves key rotation and what it cannot undo: adding B re-wraps every frame's file key,
    /// so B restores snapshots taken after the change (which reuse old frames), not the ones
    /// before (their frame lists stay A's); removing A re-wraps the frames for B alone, so A
    /// can no longer restore anything from what is stored, though it still decrypts the old
    /// snapshots' frame lists.
    @Test(arguments: Backends.allCases)
    func rotatingRecipientsRewrapsTheKeysAndSaysWhatOldCiphertextAllows(backend: Backends) throws {
        let dir = TemporaryDirectory("enc")
        try writeSourceTree(dir)
        let s = try Self.make(backend, dir)
        let old = try backUp(dir, to: s.repo)
        let frameCount = try s.base.list(under: RepositoryLayout.frames).count
        let b = AgeIdentity.generate()
        let added = try s.reopen(identities: [s.identity]).changeRecipients(adding: [b.recipient!], removing: [])
        #expect(added.recipients == [s.identity.recipient!.description, b.recipient!.description])
        #expect(added.framesRewrapped == frameCount)
        // B unwraps the keyed-hash key from backstop.json and backs up with the same frame IDs.
        let withB = try s.reopen(identities: [b])
        try writeFile(dir.sub("src/new.txt"), Array("new\n".utf8))
        let middle = try backUp(dir, to: withB)
        #expect(middle.framesNew! < middle.frameCount!)
        _ = try FilesystemRestore(repository: withB, manifest: middle).run(to: dir.sub("b-middle"))
        #expect(try readFile(dir.sub("b-middle/src/f0.dat")) == readFile(dir.sub("src/f0.dat")))
        expectNoKey { try FilesystemRestore(repository: withB, manifest: old).run(to: dir.sub("b-old")) }
        // Without an identity, only backstop.json changes.
        let c = AgeIdentity.generate()
        #expect(try s.repo.changeRecipients(adding: [c.recipient!], removing: []).framesRewrapped == nil)

        let removed = try withB.changeRecipients(adding: [], removing: [s.identity.recipient!.description, c.recipient!.description])
        #expect(removed.recipients == [b.recipient!.description])
        let withA = try s.reopen(identities: [s.identity])
        expectNoKey { try FilesystemRestore(repository: withA, manifest: old).run(to: dir.sub("a-old")) }
        expectNoKey { try FilesystemRestore(repository: withA, manifest: middle).run(to: dir.sub("a-middle")) }
        #expect(try !Age.decrypt(s.base.read(RepositoryLayout.snapshotFile(old.id, "frames.tsv")), identities: [s.identity]).isEmpty)
        #expect(throws: RepositoryKeyError.self) { try withA.changeRecipients(adding: [], removing: [b.recipient!.description]) }
        _ = try FilesystemRestore(repository: try s.reopen(identities: [b]), manifest: middle).run(to: dir.sub("b-middle2"))
    }

    /// `body` fails for want of the right identity: exit 77.
    func expectNoKey(_ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            try body()
            Issue.record("expected a missing-key failure", sourceLocation: sourceLocation)
        } catch {
            #expect(ExitStatus(for: error) == .permissionDenied, "\(error)", sourceLocation: sourceLocation)
        }
    }
}
