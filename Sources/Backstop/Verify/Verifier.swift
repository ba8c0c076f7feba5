import Foundation

/// Checks a committed snapshot. Never writes anything; callers record the result in the catalog.
///
/// Quick: every stored file's digest against `SHA256SUMS`, `SHA256SUMS` against the manifest,
/// and every frame object present with the size `frames.tsv` gives.
/// Full: also decodes every frame (in parallel) and checks it against its ID, and (the
/// structure) the whole stream's digest, every entry's (filesystem) or section's (logical)
/// digest, and parses the tar stream to its end, matching it entry by entry with the entry list.
///
/// The structure is a function of the snapshot's own files and its frames' bytes, which every
/// full verification checks by digest; so once a snapshot's structure passed, checking its frames
/// again proves the structure too (`structure: false`), and frames another snapshot of the same
/// run already checked (`FrameLedger`) are not read again: verifying 30 nightly snapshots reads
/// about one snapshot plus what changed.
public struct Verifier {
    public let storage: StorageBackend
    public let id: SnapshotID

    public init(repository: Repository, id: SnapshotID) {
        storage = repository.storage
        self.id = id
    }

    /// The checks a restore makes before it writes anything: the quick verification of the
    /// snapshot's own files (`SHA256SUMS` in its canonical form, the manifest against it, no file
    /// missing or extra, the digests of `frames.tsv` and the entry list). The frames are not read:
    /// the restore checks each one it reads against its ID. Returns the manifest read from disk
    /// and the problems found.
    public func checkOwnFiles() -> (manifest: Manifest?, problems: [VerificationProblem]) {
        var run = Run(storage: storage, id: id)
        run.checkFrameObjects = false
        run.check(mode: .quick)
        return (run.manifest, run.problems)
    }

    public func verify(mode: VerificationMode, ledger: FrameLedger? = nil, structure: Bool = true) -> VerificationResult {
        let started = Date()
        var run = Run(storage: storage, id: id)
        run.ledger = ledger
        run.structure = structure
        run.check(mode: mode)
        return VerificationResult(snapshot: id, source: run.manifest?.source, kind: run.manifest?.kind, mode: mode,
                                  startedAt: started, duration: Date().timeIntervalSince(started),
                                  bytesRead: run.bytesRead, problems: run.problems)
    }
}

private struct Run {
    let storage: StorageBackend
    let id: SnapshotID
    var problems: [VerificationProblem] = []
    var manifest: Manifest?
    var bytesRead: Int64 = 0
    var sums: [String: SHA256Digest] = [:]
    /// False for the check before a restore: the frames are checked as they are read.
    var checkFrameObjects = true
    /// `frames.tsv`, once read.
    var frames: [FrameRef]?
    /// Frames already checked in this verification run.
    var ledger: FrameLedger?
    /// Whether a full check also checks the structure (else the frames only).
    var structure = true

    init(storage: StorageBackend, id: SnapshotID) {
        self.storage = storage
        self.id = id
    }

    func key(_ name: String) -> StorageKey { RepositoryLayout.snapshotFile(id, name) }

    mutating func problem(_ file: String, _ location: String? = nil, _ message: String) {
        problems.append(VerificationProblem(file: file, location: location, message: message))
    }

    /// A file that could not be opened or read: a failure of the storage (no evidence about the
    /// data, see `ExitStatus.isReadFailure`) is reported with its reason; anything else (a
    /// missing object, a short read) as `otherwise` says.
    mutating func unreadable(_ file: String, _ location: String? = nil, _ error: Error, otherwise: String) {
        if ExitStatus.isReadFailure(error) {
            problems.append(VerificationProblem(file: file, location: location, message: "cannot be read: \(error)", isReadFailure: true))
        } else {
            problem(file, location, otherwise)
        }
    }

    mutating func check(mode: VerificationMode) {
        let names: [String]
        do {
            names = try storage.list(under: RepositoryLayout.snapshot(id)).map { $0.components.dropFirst(2).joined(separator: "/") }
        } catch {
            problem("snapshot folder", nil, "snapshots/\(id) cannot be listed: \(error)")
            return
        }
        guard !names.isEmpty else {
            problem("snapshot folder", nil, "snapshots/\(id) does not exist")
            return
        }
        readSums()
        readManifest()
        guard let manifest else { return }
        let expectedFiles = Set(manifest.files.map(\.name) + ["manifest.json", "SHA256SUMS"])
        for name in names where !expectedFiles.contains(name) {
            problem(name, nil, "file not named in the manifest")
        }
        for name in expectedFiles.subtracting(["manifest.json", "SHA256SUMS"]).sorted() where sums[name] == nil {
            problem("SHA256SUMS", nil, "has no line for \(name)")
        }
        for f in manifest.files {
            if let listed = sums[f.name], listed != f.sha256 {
                problem("SHA256SUMS", nil, "digest of \(f.name) differs from the manifest's")
            }
        }
        for f in manifest.files { checkStoredDigest(f) }
        // An encrypted repository without an identity: SHA256SUMS covers the stored ciphertext,
        // which is all a quick verification without a key can check; the frame list is encrypted.
        if mode == .quick, let encrypted = storage as? EncryptedBackend, !encrypted.canDecrypt { return }
        frames = readFrameList(manifest)
        if checkFrameObjects, let frames { checkFrameObjects(frames) }
        if mode == .full && !structure {
            checkFramesOnly()
        } else if mode == .full {
            fullCheck(manifest)
        }
    }

    mutating func readSums() {
        let bytes: [UInt8]
        do { bytes = try storage.read(key("SHA256SUMS")) } catch {
            unreadable("SHA256SUMS", nil, error, otherwise: "missing or unreadable")
            return
        }
        bytesRead += Int64(bytes.count)
        // One canonical form, the one Backstop writes: `<64 lowercase hex>  <name>\n` per file,
        // sorted by name, every line ending in a newline. Anything else was not written by us.
        if bytes.last != 0x0A {
            problem("SHA256SUMS", nil, bytes.isEmpty ? "is empty" : "does not end with a newline: it was altered or truncated")
        }
        var lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        if lines.last == "" { lines.removeLast() }
        var names: [String] = []
        for (n, line) in lines.enumerated() {
            let parts = line.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, let digest = SHA256Digest(hex: String(parts[0])), parts[1].hasPrefix(" "),
                  parts[1].count > 1 else {
                problem("SHA256SUMS", "line \(n + 1)", "not a `sha256sum` line")
                continue
            }
            guard String(parts[0]) == digest.hex else {
                problem("SHA256SUMS", "line \(n + 1)", "digest is not in lowercase hex, as Backstop writes it: the file was altered")
                continue
            }
            let name = String(parts[1].dropFirst())
            if sums[name] != nil { problem("SHA256SUMS", "line \(n + 1)", "lists \(name) twice") }
            sums[name] = digest
            names.append(name)
        }
        if names != names.sorted() { problem("SHA256SUMS", nil, "lines are not sorted by name, as Backstop writes them: the file was altered") }
    }

    mutating func readManifest() {
        let bytes: [UInt8]
        do { bytes = try storage.read(key("manifest.json")) } catch {
            unreadable("manifest.json", nil, error, otherwise: "missing or unreadable")
            return
        }
        bytesRead += Int64(bytes.count)
        if let listed = sums["manifest.json"], listed != SHA256Hasher.digest(bytes) {
            problem("manifest.json", nil, "digest does not match its line in SHA256SUMS: the manifest or SHA256SUMS was altered or damaged")
        } else if sums["manifest.json"] == nil, !sums.isEmpty {
            problem("SHA256SUMS", nil, "has no line for manifest.json")
        }
        do {
            var m = try Timestamp.jsonDecoder().decode(Manifest.self, from: Data(bytes))
            if let encrypted = storage as? EncryptedBackend {
                do { m = try encrypted.unseal(m) } catch {
                    problem("manifest.json", nil, "its sealed part cannot be decrypted: \(error)")
                }
            }
            if m.id != id { problem("manifest.json", nil, "names snapshot \(m.id), not \(id)") }
            manifest = m
        } catch {
            problem("manifest.json", nil, "cannot be parsed: \(RepositoryError.describe(decoding: error))")
        }
    }

    mutating func checkStoredSize(_ f: StoredFile) {
        let size: Int64
        do {
            guard let found = try storage.storedObjects.size(of: key(f.name)) else { throw StorageError.notFound(location: storage.location, key: key(f.name)) }
            size = found
        } catch {
            unreadable(f.name, nil, error, otherwise: "missing or not a regular file")
            return
        }
        if size != f.size { problem(f.name, nil, "is \(size) bytes; the manifest says \(f.size) (truncated or extended)") }
    }

    mutating func checkStoredDigest(_ f: StoredFile) {
        let source: ByteSource
        // As stored: on an encrypted repository, SHA256SUMS and the manifest cover the ciphertext.
        do { source = try storage.storedObjects.open(key(f.name)) } catch {
            unreadable(f.name, nil, error, otherwise: "missing or unreadable")
            return
        }
        if source.size != f.size { problem(f.name, nil, "is \(source.size) bytes; the manifest says \(f.size) (truncated or extended)") }
        let hasher = SHA256Hasher()
        var offset: Int64 = 0
        do {
            while offset < source.size {
                let n = Int(min(Int64(4 << 20), source.size - offset))
                hasher.update(try source.read(at: offset, count: n))
                offset += Int64(n)
            }
        } catch {
            unreadable(f.name, nil, error, otherwise: "read failed: \(error)")
            return
        }
        bytesRead += source.bytesRead
        if hasher.finalize() != f.sha256 { problem(f.name, nil, "digest does not match the manifest and SHA256SUMS") }
    }

    /// `frames.tsv`, parsed and checked against the manifest.
    mutating func readFrameList(_ m: Manifest) -> [FrameRef]? {
        guard m.format >= 2 else {
            problem("manifest.json", nil, "is format \(m.format); run `backstop migrate`")
            return nil
        }
        let bytes: [UInt8]
        do {
            bytes = try storage.read(key("frames.tsv"))
        } catch {
            unreadable("frames.tsv", nil, error, otherwise: "missing or unreadable: \(error)")
            return nil
        }
        let frames: [FrameRef]
        do {
            frames = try FrameList.decode(bytes, snapshot: id)
        } catch {
            problem("frames.tsv", nil, "\(error)")
            return nil
        }
        if let count = m.frameCount, count != frames.count {
            problem("frames.tsv", nil, "lists \(frames.count) frames; the manifest says \(count)")
        }
        let total = frames.reduce(Int64(0)) { $0 + Int64($1.uncompressedSize) }
        if total != m.bytesIn { problem("frames.tsv", nil, "its frames hold \(total) bytes; the manifest says \(m.bytesIn)") }
        return frames
    }

    /// Quick: every frame object is there, with the size `frames.tsv` lists.
    mutating func checkFrameObjects(_ frames: [FrameRef]) {
        var checked = Set<SHA256Digest>()
        for (i, f) in frames.enumerated() where checked.insert(f.id).inserted {
            let key = RepositoryLayout.frame(f.id)
            switch Result(catching: { try storage.size(of: key) }) {
            case .success(nil): problem("frames.tsv", "frame \(i)", "\(key) is missing")
            case let .success(size?) where size != Int64(f.compressedSize):
                problem("frames.tsv", "frame \(i)", "\(key) is \(size) bytes; frames.tsv says \(f.compressedSize)")
            case .success: break
            case let .failure(error): unreadable("frames.tsv", "frame \(i)", error, otherwise: "\(key) cannot be read: \(error)")
            }
        }
    }

    /// Full verification of a snapshot whose structure passed before: each frame decoded and
    /// checked against its ID, unless this run's ledger already knows it.
    mutating func checkFramesOnly() {
        guard let frameList = frames else { return }
        var toRead: [Int] = []
        var seen = Set<SHA256Digest>()
        for (i, f) in frameList.enumerated() where seen.insert(f.id).inserted {
            switch ledger?.verdict(f.id) {
            case .some(.ok): continue
            case let .some(.bad(message)): problem("frames.tsv", "frame \(i)", message)
            case nil: toRead.append(i)
            }
        }
        guard !toRead.isEmpty else { return }
        let source = FrameListSource(storage: storage, frames: frameList)
        let reader: SeekableZstdReader
        do {
            reader = try SeekableZstdReader(source: source)
        } catch {
            problem(manifestPayloadName, "seek table", "\(error)")
            return
        }
        reader.frameDigests = frameList.map(\.id)
        let storage = self.storage
        reader.frameID = { try storage.frameID(of: $0) }
        // Read and decoded in parallel (as a first verification's frames are), checked in order.
        let stream = FrameStream(reader: reader, frames: toRead)
        while true {
            do {
                guard let (index, _) = try stream.next() else { break }
                ledger?.record(frameList[index].id, .ok)
            } catch let failure as FrameError {
                let (index, error) = (failure.frame, failure.underlying)
                if !ExitStatus.isReadFailure(error) { ledger?.record(frameList[index].id, .bad("\(error)")) }
                unreadable("frames.tsv", "frame \(index)", error, otherwise: "\(error)")
            } catch {
                break   // interrupted: the run reports it
            }
        }
        bytesRead += source.bytesRead
    }

    var manifestPayloadName: String { manifest?.payloadName ?? "frames.tsv" }

    mutating func fullCheck(_ m: Manifest) {
        guard let frameList = frames else { return }
        let source = FrameListSource(storage: storage, frames: frameList)
        let reader: SeekableZstdReader
        do {
            reader = try SeekableZstdReader(source: source)
        } catch {
            unreadable(m.payloadName, "seek table", error, otherwise: "\(error)")
            return
        }
        reader.frameDigests = frameList.map(\.id)
        let storage = self.storage
        reader.frameID = { try storage.frameID(of: $0) }

        // One pass: frames decoded in parallel (each checked against its ID), the stream hashed
        // and handed to the entry or section checks.
        let frames = FrameStream(reader: reader, hashingOutput: m.sha256 != nil)
        var streamBytes: Int64 = 0
        var frameFailure: FrameError?
        var sectionCheck = SectionCheck(sections: m.kind == .logical ? m.sections : [])
        var lastFrameDone = -1
        let ledger = self.ledger
        let pull: () throws -> [UInt8]? = {
            guard let (index, bytes, _) = try frames.nextWithCompressed() else { return nil }
            ledger?.record(frameList[index].id, .ok)
            streamBytes += Int64(bytes.count)
            lastFrameDone = index
            return bytes
        }
        var entryProblems: [VerificationProblem] = []
        do {
            if m.kind == .filesystem {
                entryProblems = try checkTar(m, pull: pull)
            } else {
                while let bytes = try pull() { sectionCheck.feed(bytes) }
            }
        } catch let error as FrameError {
            frameFailure = error
        } catch {
            problem(m.payloadName, "frame \(lastFrameDone + 1)", "stream unreadable: \(error)")
        }
        bytesRead += source.bytesRead
        if let frameFailure {
            if !ExitStatus.isReadFailure(frameFailure) { ledger?.record(frameList[frameFailure.frame].id, .bad("\(frameFailure.underlying)")) }
            unreadable(m.payloadName, "frame \(frameFailure.frame)", frameFailure, otherwise: "\(frameFailure.underlying)")
            return
        }
        // Drain what the tar reader did not need (padding after the end-of-archive blocks).
        do { while try pull() != nil {} } catch { problem(m.payloadName, "frame \(lastFrameDone + 1)", "\(error)") }
        // Every frame decoded to its ID: the payload is what frames.tsv (whose digest the manifest
        // and SHA256SUMS hold) says. If the stream then disagrees with the manifest, the manifest
        // is the liar.
        if streamBytes != m.bytesIn {
            problem("manifest.json", nil, "the payload decodes to \(streamBytes) bytes; the manifest says \(m.bytesIn)")
        }
        if let want = m.sha256, frames.streamDigest != want {
            problem("manifest.json", nil, "its stream digest (sha256) does not match the intact payload: the manifest was edited")
        }
        problems += entryProblems
        for p in sectionCheck.finish() { problems.append(VerificationProblem(file: m.payloadName, location: "section \(p.0)", message: p.1)) }
    }

    /// Parses the tar stream to its end, matching each entry with the entry list.
    mutating func checkTar(_ m: Manifest, pull: @escaping () throws -> [UInt8]?) throws -> [VerificationProblem] {
        var found: [VerificationProblem] = []
        var entries: [EntryRecord] = []
        do {
            let reader = try SeekableZstdReader(source: storage.open(key("entries.jsonl.zst")))
            entries = try SnapshotReader.decodeEntries(reader, id: id)
        } catch {
            found.append(VerificationProblem(file: "entries.jsonl.zst", message: "cannot be read: \(error)", isReadFailure: ExitStatus.isReadFailure(error)))
        }
        if !entries.isEmpty && entries.count != m.entryCount {
            found.append(VerificationProblem(file: "entries.jsonl.zst", message: "lists \(entries.count) entries; the manifest says \(m.entryCount)"))
        }
        let tar = try TarReader(next: pull)
        var index = 0
        var guardrail = HostileEntryCheck()
        var previous: EntryRecord?
        while let entry = try tar.nextEntry() {
            let position = tar.headerPosition
            let hasher = SHA256Hasher()
            var size: Int64 = 0
            try tar.readData { bytes in
                hasher.update(bytes)
                size += Int64(bytes.count)
            }
            let digest = hasher.finalize()
            defer { index += 1 }
            if let reason = guardrail.check(entry) {
                found.append(VerificationProblem(file: m.payloadName, location: "entry \(entry.path)", message: "hostile entry: \(reason); a restore refuses it"))
            }
            if let p = previous, p.offset + p.length != position {
                found.append(VerificationProblem(file: "entries.jsonl.zst", location: "entry \(p.path)",
                    message: "declares \(p.length) bytes from offset \(p.offset), but the next entry starts at \(position)"))
            }
            previous = nil
            guard !entries.isEmpty else { continue }
            guard index < entries.count else {
                if index == entries.count {
                    found.append(VerificationProblem(file: m.payloadName, location: "entry \(entry.path)", message: "is not in the entry list"))
                }
                continue
            }
            let e = entries[index]
            previous = e
            if e.rawPath != entry.rawPath || e.type != entry.type {
                found.append(VerificationProblem(file: "entries.jsonl.zst", location: "entry \(index)",
                    message: "lists \(e.type.rawValue) \(e.path) where the tar has \(entry.type.rawValue) \(entry.path)"))
                continue
            }
            if e.offset != position {
                found.append(VerificationProblem(file: "entries.jsonl.zst", location: "entry \(e.path)",
                    message: "offset \(e.offset) does not match its tar header at \(position)"))
            }
            if e.type == .file {
                if size != e.size {
                    found.append(VerificationProblem(file: m.payloadName, location: "entry \(e.path)", message: "holds \(size) bytes; the entry list says \(e.size)"))
                } else if let want = e.sha256, want != digest {
                    found.append(VerificationProblem(file: m.payloadName, location: "entry \(e.path)", message: "content digest does not match the entry list"))
                }
            } else if e.size != entry.size {
                found.append(VerificationProblem(file: "entries.jsonl.zst", location: "entry \(e.path)", message: "declares \(e.size) bytes; the tar header says \(entry.size)"))
            }
        }
        if let p = previous, p.offset + p.length > m.bytesIn - 1024 {
            found.append(VerificationProblem(file: "entries.jsonl.zst", location: "entry \(p.path)",
                message: "declares \(p.length) bytes from offset \(p.offset), beyond the end of the stream (\(m.bytesIn) bytes)"))
        }
        if !entries.isEmpty && index < entries.count {
            found.append(VerificationProblem(file: "entries.jsonl.zst", location: "entry \(entries[index].path)",
                                             message: "and \(entries.count - index - 1) more are missing from the tar stream"))
        }
        return found
    }
}

/// The checks a restore makes before writing an entry, made on the whole stream: a snapshot a
/// restore would refuse fails verification too. Paths are compared as bytes; to keep memory
/// flat whatever the entry count, each path is remembered by a 64-bit hash (symlinks, which
/// are few, by their bytes).
private struct HostileEntryCheck {
    var seen: [Int: EntryType] = [:]
    var symlinks = Set<[UInt8]>()

    mutating func check(_ entry: TarEntry) -> String? {
        func pathProblem(_ path: [UInt8], _ what: String) -> String? {
            if path.isEmpty { return "\(what) is empty" }
            if path.first == 0x2F { return "\(what) is absolute" }
            let parts = path.split(separator: 0x2F)
            if parts.contains(where: { $0.elementsEqual([0x2E, 0x2E]) }) { return "\(what) contains '..'" }
            var prefix: [UInt8] = []
            for part in parts.dropLast() {
                prefix += prefix.isEmpty ? Array(part) : [0x2F] + Array(part)
                if symlinks.contains(prefix) { return "\(what) passes through the symlink \(EntryRecord.display(prefix))" }
            }
            return nil
        }
        let path = entry.rawPath.split(separator: 0x2F).filter { !$0.elementsEqual([0x2E]) }.map(Array.init).joined(separator: [0x2F]).map { $0 }
        if let p = pathProblem(entry.rawPath, "its path") { return p }
        var type = entry.type
        if entry.type == .hardlink {
            let target = (entry.rawLinkTarget ?? []).split(separator: 0x2F).filter { !$0.elementsEqual([0x2E]) }.map(Array.init).joined(separator: [0x2F]).map { $0 }
            if let p = pathProblem(entry.rawLinkTarget ?? [], "its hard link target") { return p }
            if entry.size > 0 { return "a hard link that carries \(entry.size) bytes of data" }
            guard seen[target.hashValue] == .file else {
                return "a hard link to \(entry.linkTarget ?? ""), which is not a regular file stored before it"
            }
            type = .file
        } else if entry.type != .file && entry.size > 0 {
            return "a \(entry.type.rawValue) entry that declares \(entry.size) bytes of data"
        }
        let key = path.hashValue
        if let earlier = seen[key], !(earlier == .directory && type == .directory) {
            return "its path is declared twice (first as a \(earlier == .file ? "file or hard link" : earlier.rawValue))"
        }
        seen[key] = type
        if type == .symlink { symlinks.insert(path) }
        return nil
    }
}

/// Hashes the sections of a logical snapshot's stream as it passes.
private struct SectionCheck {
    let sections: [Section]
    var index = 0
    var offset: Int64 = 0
    var hasher = SHA256Hasher()
    var problems: [(String, String)] = []

    init(sections: [Section]) {
        self.sections = sections
        var expected: Int64 = 0
        for s in sections {
            if s.offset != expected { problems.append((s.name, "starts at \(s.offset), not where the previous section ended (\(expected))")) }
            expected = s.offset + s.length
        }
    }

    mutating func feed(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { raw in
            var rest = raw
            while rest.count > 0, index < sections.count {
                let s = sections[index]
                let take = Int(min(Int64(rest.count), s.offset + s.length - offset))
                if take > 0 { hasher.update(UnsafeRawBufferPointer(rebasing: rest[0..<take])) }
                offset += Int64(max(take, 0))
                rest = UnsafeRawBufferPointer(rebasing: rest[max(take, 0)...])
                if offset >= s.offset + s.length {
                    if hasher.finalize() != s.sha256 { problems.append((s.name, "digest does not match the manifest")) }
                    index += 1
                }
            }
        }
    }

    mutating func finish() -> [(String, String)] {
        if index < sections.count { problems.append((sections[index].name, "extends past the end of the stream")) }
        return problems
    }
}

/// What one verification run learned about frames, so that frames shared by several snapshots
/// are read once, and a bad one is reported against every snapshot that uses it. Holds one entry
/// per distinct frame checked.
public final class FrameLedger: @unchecked Sendable {
    public enum Verdict: Equatable {
        case ok
        case bad(String)
    }

    private let lock = NSLock()
    private var verdicts: [SHA256Digest: Verdict] = [:]

    public init() {}

    public func verdict(_ id: SHA256Digest) -> Verdict? {
        lock.lock()
        defer { lock.unlock() }
        return verdicts[id]
    }

    func record(_ id: SHA256Digest, _ verdict: Verdict) {
        lock.lock()
        defer { lock.unlock() }
        if case .bad = verdicts[id] { return }   // a failure sticks
        verdicts[id] = verdict
    }

    /// How many distinct frames were checked.
    public var count: Int {
        lock.lock()
        defer { lock.unlock() }
        return verdicts.count
    }
}
