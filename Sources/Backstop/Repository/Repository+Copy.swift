import Foundation

/// How `Repository.copy` works.
public struct CopyOptions: Sendable {
    /// Only say what would be sent: nothing is read but manifests and frame lists, nothing is
    /// written, no lease is taken.
    public var dryRun = false
    /// How long to wait for the target's writer lease.
    public var lockTimeout: TimeInterval = 0
    /// Frames read, checked and stored at once (a bounded pool; each holds at most one frame).
    public var parallelTransfers = 4
    /// What the target's lease says is holding it.
    public var command = "backstop copy"

    public init(dryRun: Bool = false, lockTimeout: TimeInterval = 0, parallelTransfers: Int = 4, command: String = "backstop copy") {
        self.dryRun = dryRun
        self.lockTimeout = lockTimeout
        self.parallelTransfers = parallelTransfers
        self.command = command
    }
}

/// What `Repository.copy` did (or, with `dryRun`, would do).
public struct CopyReport: Sendable, Codable {
    public var from: String
    public var to: String
    public var dryRun: Bool
    /// Snapshots committed to the target by this copy (with `dryRun`: that would be).
    public var copied: [SnapshotID] = []
    /// Snapshots the target already held (same ID, same manifest): nothing of them was sent.
    public var skipped: [SnapshotID] = []
    /// Frames stored in the target (each read from the source and checked against its ID first).
    public var framesSent = 0
    /// Frames the copied snapshots use that the target already held.
    public var framesPresent = 0
    /// Bytes stored in the target: frames, snapshot files, events, verification records (with
    /// `dryRun`: the frames' bytes).
    public var bytesSent: Int64 = 0
    public var eventsCopied = 0
    public var verificationsCopied = 0
    /// What an operator should know (another compression level, frame lists adapted).
    public var notes: [String] = []
}

/// Why a copy refused to start or stopped. Whatever it is, nothing half-copied is visible in the
/// target: a snapshot appears there only with its manifest, written last.
public enum CopyError: Error, CustomStringConvertible, ExitStatusProviding {
    /// Both names are the same repository (same `backstop.json` ID).
    case sameRepository(from: String, to: String)
    /// Formats or encryption settings differ: frames of one cannot serve the other.
    case incompatible(from: String, to: String, reason: String)
    /// The target holds a snapshot with this ID whose manifest is not the source's.
    case differentManifest(id: SnapshotID, from: String, to: String)
    /// A frame or snapshot file read from the source is not what its name or digest says.
    case corruptSource(id: SnapshotID, from: String, object: String, reason: String)
    /// The snapshot disappeared from the source while it was being copied (a prune there).
    case removedFromSource(id: SnapshotID, from: String)
    /// Anything else that stopped the copy of a snapshot (the target's or source's I/O).
    case stopped(id: SnapshotID, from: String, to: String, underlying: Error)

    public var description: String {
        switch self {
        case let .sameRepository(from, to):
            return "\(from) and \(to) are the same repository (same ID in backstop.json); nothing was copied: name two different repositories"
        case let .incompatible(from, to, reason):
            return "cannot copy from \(from) to \(to): \(reason); nothing was copied"
        case let .differentManifest(id, from, to):
            return "snapshot \(id) exists in both \(from) and \(to) with different manifests: they are not the same snapshot; nothing of it was copied. Compare them with `backstop show \(id) --repo \(from)` and `backstop show \(id) --repo \(to)`"
        case let .corruptSource(id, from, object, reason):
            return "snapshot \(id) in \(from) is damaged: \(object) \(reason); the copy stopped before its manifest, so the target holds no part of it that counts as a snapshot. Run `backstop verify \(id) --repo \(from)`, and copy another snapshot or repair the source"
        case let .removedFromSource(id, from):
            return "snapshot \(id) was removed from \(from) while it was being copied (a prune ran there); nothing of it is committed in the target. Run the copy again: it copies what is still there"
        case let .stopped(id, from, to, underlying):
            return "the copy of snapshot \(id) from \(from) to \(to) stopped: \(underlying); \(to) holds no part of it that counts as a snapshot (its manifest is written last). Run the copy again: frames already sent are not sent again"
        }
    }

    public var exitStatus: ExitStatus {
        switch self {
        case .sameRepository, .incompatible: return .usage
        case .differentManifest, .corruptSource: return .integrity
        case .removedFromSource: return .lockHeld
        case let .stopped(_, _, _, underlying): return ExitStatus(for: underlying)
        }
    }
}

extension Repository {
    /// Copies the snapshots `ids` of this repository to `target`, oldest first, with their
    /// verification history, then the events `target` lacks.
    ///
    /// For each snapshot: every frame the target lacks (asked of the target's frame index, then
    /// of its storage object by object; `frames/` is never listed) is read from this repository,
    /// decoded and checked against its ID, then put create-only; then the snapshot's own files,
    /// each checked against `SHA256SUMS` and the manifest, then the manifest last; then the
    /// target's catalog. A snapshot the target already holds with the same manifest is skipped;
    /// with another manifest it is an error (65). Frames are copied as stored, whatever the
    /// target's compression level. Where the target already holds a frame that was compressed
    /// otherwise (another size), the copy's `frames.tsv` lists the target's size, and its
    /// manifest and `SHA256SUMS` say so: the copy verifies in the target.
    ///
    /// This repository is read without a lock (manifests are immutable); the target's writer
    /// lease is held while writing. A snapshot removed from here while it is copied (a prune)
    /// stops the copy with `CopyError.removedFromSource`.
    ///
    /// Crash behaviour: the target holds frames nothing uses yet and, at worst, a snapshot
    /// folder without a manifest, which is not a snapshot and which the next writer removes. The
    /// copy can be run again: it skips what is there and sends only the frames still missing.
    /// `progress` hears, as frames are checked and sent or found present, how many of the
    /// snapshots' frames (references, as `frameCount` counts them) are done, of how many, and
    /// which snapshot is being copied; it is called from the transfer threads.
    public func copy(_ ids: [SnapshotID], to target: Repository, options: CopyOptions = CopyOptions(),
                     warn: (String) -> Void = { _ in },
                     progress: (@Sendable (_ done: Int64, _ total: Int64, _ current: SnapshotID) -> Void)? = nil) throws -> CopyReport {
        try checkCopyable(to: target)
        let ordered = try Set(ids).map { id in (id, try manifest(id)) }.sorted { ($0.1.completedAt, $0.0) < ($1.1.completedAt, $1.0) }
        var report = CopyReport(from: location, to: target.location, dryRun: options.dryRun)
        if options.dryRun {
            try planCopy(ordered.map(\.0), to: target, report: &report)
            return noteCompression(report, target: target)
        }
        return noteCompression(try target.withWriterLock(command: options.command, timeout: options.lockTimeout, warn: warn) {
            var copyJob = SnapshotCopier(source: self, target: target, options: options, report: report)
            copyJob.progress = progress
            copyJob.totalFrames = ordered.reduce(Int64(0)) { $0 + Int64($1.1.frameCount ?? 0) }
            for (id, _) in ordered {
                try Interruption.check()
                do {
                    try copyJob.copySnapshot(id)
                    try copyJob.copyVerifications(of: id)
                } catch let error as CopyError {
                    throw error
                } catch let error as Interrupted {
                    throw error
                } catch {
                    throw CopyError.stopped(id: id, from: location, to: target.location, underlying: error)
                }
            }
            try copyJob.copyEvents(warn: warn)
            return copyJob.report
        }, target: target)
    }

    /// The report, with a note when snapshots were copied to a target that compresses at
    /// another level (their frames keep this repository's).
    private func noteCompression(_ report: CopyReport, target: Repository) -> CopyReport {
        guard !report.copied.isEmpty, config.compression != target.config.compression else { return report }
        var noted = report
        noted.notes.insert("\(target.location) compresses with \(target.config.compression.algorithm) level \(target.config.compression.level), \(location) with level \(config.compression.level): frames are copied as stored (level \(config.compression.level)); new backups to \(target.location) use its own level", at: 0)
        return noted
    }

    /// Refuses a copy that could not be right: to itself, between formats, or between
    /// repositories whose encryption settings differ (frames of one are not readable, or not
    /// named alike, in the other).
    func checkCopyable(to target: Repository) throws {
        if config.id == target.config.id { throw CopyError.sameRepository(from: location, to: target.location) }
        if config.format != target.config.format {
            throw CopyError.incompatible(from: location, to: target.location,
                                         reason: "the repositories have different formats (\(config.format) and \(target.config.format)); run `backstop migrate` on the older one first")
        }
        let mine = try Self.encryptionSetting(storage)
        let theirs = try Self.encryptionSetting(target.storage)
        if mine != theirs {
            throw CopyError.incompatible(from: location, to: target.location,
                                         reason: "their encryption settings in backstop.json differ (\(mine ?? "none") and \(theirs ?? "none")); copy only between repositories with the same encryption")
        }
    }

    /// The `encryption` field of `backstop.json` as canonical JSON, or nil when absent.
    static func encryptionSetting(_ storage: StorageBackend) throws -> String? {
        let bytes = try storage.read(RepositoryLayout.config)
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any],
              let value = object["encryption"], !(value is NSNull) else { return nil }
        guard JSONSerialization.isValidJSONObject([value]),
              let data = try? JSONSerialization.data(withJSONObject: [value], options: [.sortedKeys]) else { return "\(value)" }
        return String(decoding: data, as: UTF8.self)
    }

    /// The dry run: what each snapshot would need, from manifests and frame lists alone.
    private func planCopy(_ ids: [SnapshotID], to target: Repository, report: inout CopyReport) throws {
        var counted = Set<SHA256Digest>()
        for id in ids {
            if try target.storage.exists(RepositoryLayout.manifest(id)) {
                let source = try storage.read(RepositoryLayout.manifest(id))
                let present = try target.storage.read(RepositoryLayout.manifest(id))
                guard try SnapshotCopier.sameSnapshot(source, present) else {
                    throw CopyError.differentManifest(id: id, from: location, to: target.location)
                }
                report.skipped.append(id)
                continue
            }
            let frames = try SnapshotReader(repository: self, manifest: manifest(id)).frameList()
            var seen = Set<SHA256Digest>()
            for f in frames where seen.insert(f.id).inserted {
                let present = try counted.contains(f.id) || SnapshotCopier.storedSize(of: f.id, in: target) != nil
                if present {
                    report.framesPresent += 1
                } else {
                    counted.insert(f.id)
                    report.framesSent += 1
                    report.bytesSent += Int64(f.compressedSize)
                }
            }
            report.copied.append(id)
        }
    }
}

/// The work of one `Repository.copy` under the target's lease.
struct SnapshotCopier {
    let source: Repository
    let target: Repository
    let options: CopyOptions
    var report: CopyReport
    /// See `Repository.copy(_:to:options:warn:progress:)`.
    var progress: (@Sendable (_ done: Int64, _ total: Int64, _ current: SnapshotID) -> Void)?
    var totalFrames: Int64 = 0
    /// Frame references of the snapshots handled so far (copied or skipped).
    let framesDone = FrameCounter()

    /// The size of frame `id` in `repository` if it is stored there: its frame index first, then
    /// its storage (an empty object is what a crash can leave of a put: not stored).
    static func storedSize(of id: SHA256Digest, in repository: Repository) throws -> Int64? {
        if let sizes = try repository.catalog.frameSizes(id) { return Int64(sizes.compressed) }
        if let size = try repository.storage.size(of: RepositoryLayout.frame(id)), size > 0 { return size }
        return nil
    }

    /// Whether two manifests describe the same snapshot: the same bytes, or the same but for
    /// what a copy adapts (the frame list's entry in `files`, and `bytesStored`).
    static func sameSnapshot(_ a: [UInt8], _ b: [UInt8]) throws -> Bool {
        if a == b { return true }
        let decoder = Timestamp.jsonDecoder()
        guard var x = try? decoder.decode(Manifest.self, from: Data(a)), var y = try? decoder.decode(Manifest.self, from: Data(b)) else { return false }
        x.files.removeAll { $0.name == "frames.tsv" }
        y.files.removeAll { $0.name == "frames.tsv" }
        x.bytesStored = 0
        y.bytesStored = 0
        return x == y
    }

    mutating func copySnapshot(_ id: SnapshotID) throws {
        let manifestKey = RepositoryLayout.manifest(id)
        let manifestBytes = try readSource(manifestKey, id)
        if try target.storage.exists(manifestKey) {
            guard try Self.sameSnapshot(manifestBytes, target.storage.read(manifestKey)) else {
                throw CopyError.differentManifest(id: id, from: source.location, to: target.location)
            }
            report.skipped.append(id)
            if let progress, let count = (try? Timestamp.jsonDecoder().decode(Manifest.self, from: Data(manifestBytes)))?.frameCount {
                progress(framesDone.add(Int64(count)), totalFrames, id)
            }
            return
        }
        // The snapshot's own files, each checked before anything is written.
        let sumsBytes = try readSource(RepositoryLayout.snapshotFile(id, "SHA256SUMS"), id)
        let sums = try parseSums(sumsBytes, id)
        try check(manifestBytes, named: "manifest.json", against: sums, id)
        let manifest: Manifest
        do {
            manifest = try Timestamp.jsonDecoder().decode(Manifest.self, from: Data(manifestBytes))
        } catch {
            throw CopyError.corruptSource(id: id, from: source.location, object: "snapshots/\(id)/manifest.json",
                                          reason: "does not decode: \(RepositoryError.describe(decoding: error))")
        }
        var files: [(name: String, bytes: [UInt8])] = []
        for file in manifest.files {
            guard StorageKey.isValidComponent(file.name) else {
                throw CopyError.corruptSource(id: id, from: source.location, object: "snapshots/\(id)/manifest.json", reason: "names a file \"\(file.name)\" that cannot be in a snapshot folder")
            }
            let bytes = try readSource(RepositoryLayout.snapshotFile(id, file.name), id)
            try check(bytes, named: file.name, against: sums, id)
            guard SHA256Hasher.digest(bytes) == file.sha256, Int64(bytes.count) == file.size else {
                throw CopyError.corruptSource(id: id, from: source.location, object: "snapshots/\(id)/\(file.name)", reason: "is not what the manifest lists (size or SHA-256)")
            }
            files.append((file.name, bytes))
        }
        guard let listBytes = files.first(where: { $0.name == "frames.tsv" })?.bytes else {
            throw CopyError.corruptSource(id: id, from: source.location, object: "snapshots/\(id)/manifest.json", reason: "lists no frames.tsv")
        }
        let frames: [FrameRef]
        do {
            frames = try FrameList.decode(listBytes, snapshot: id)
        } catch {
            throw CopyError.corruptSource(id: id, from: source.location, object: "snapshots/\(id)/frames.tsv", reason: "\(error)")
        }

        // Frames first: the ones the target lacks, read, checked and stored by a bounded pool.
        let sizes = try transferFrames(frames, id)
        var written = frames
        for i in written.indices { if let size = sizes[written[i].id] { written[i].compressedSize = Int(size) } }

        // Then the files, and the manifest last: as stored, unless a frame the target already
        // held has another size (compressed otherwise), which its frame list must say.
        var writtenManifest = manifest
        var writtenManifestBytes = manifestBytes
        var writtenSums = sumsBytes
        if written != frames {
            let list = FrameList.encode(written)
            files = files.map { $0.name == "frames.tsv" ? (name: $0.name, bytes: list) : $0 }
            let delta = written.reduce(Int64(0)) { $0 + Int64($1.compressedSize) } - frames.reduce(Int64(0)) { $0 + Int64($1.compressedSize) }
            writtenManifest.bytesStored += delta
            writtenManifest.files = manifest.files.map { f in
                f.name == "frames.tsv" ? StoredFile(name: f.name, size: Int64(list.count), sha256: SHA256Hasher.digest(list)) : f
            }
            writtenManifestBytes = Array(try Timestamp.jsonEncoder().encode(writtenManifest)) + [0x0A]
            var lines: [(String, SHA256Digest)] = writtenManifest.files.map { ($0.name, $0.sha256) }
            lines.append(("manifest.json", SHA256Hasher.digest(writtenManifestBytes)))
            writtenSums = Array(lines.sorted { $0.0 < $1.0 }.map { "\($0.1.hex)  \($0.0)\n" }.joined().utf8)
            report.notes.append("snapshot \(id): \(target.location) already held some of its frames compressed otherwise; its frames.tsv, manifest and SHA256SUMS there list those frames' sizes")
        }
        for file in files { try put(RepositoryLayout.snapshotFile(id, file.name), file.bytes) }
        try put(RepositoryLayout.snapshotFile(id, "SHA256SUMS"), writtenSums)
        try Interruption.check()
        try target.catalog.setMeta("snapshots.fingerprint", "")   // the next open reconciles
        try put(manifestKey, writtenManifestBytes)
        try target.catalog.insert(writtenManifest)
        try target.catalog.indexFrames(id, written)
        report.copied.append(id)
    }

    /// A create-only put of an object the target must not hold yet (what an interrupted copy
    /// left was removed when the lease was taken).
    mutating func put(_ key: StorageKey, _ bytes: [UInt8]) throws {
        if try target.storage.put(key, bytes, mode: .createOnly) == .alreadyPresent {
            throw RepositoryError.io(path: "\(target.location): \(key)", operation: "create", errno: EEXIST)
        }
        report.bytesSent += Int64(bytes.count)
    }

    /// Reads an object of snapshot `id` from the source; when it is gone, says whether the
    /// snapshot was removed (a prune) or is damaged.
    func readSource(_ key: StorageKey, _ id: SnapshotID) throws -> [UInt8] {
        do {
            return try source.storage.read(key)
        } catch where Self.isMissing(error) {
            throw try missing(key, id)
        }
    }

    func missing(_ key: StorageKey, _ id: SnapshotID) throws -> CopyError {
        if try !source.storage.exists(RepositoryLayout.manifest(id)) { return .removedFromSource(id: id, from: source.location) }
        return .corruptSource(id: id, from: source.location, object: key.rawValue, reason: "is missing")
    }

    static func isMissing(_ error: Error) -> Bool {
        switch error {
        case let e as FileError: return e.errnoValue == ENOENT
        case let e as StorageError: if case .notFound = e { return true } else { return false }
        case let e as FrameObjectError: if case .missing = e { return true } else { return false }
        default: return false
        }
    }

    /// `SHA256SUMS`: name → digest.
    func parseSums(_ bytes: [UInt8], _ id: SnapshotID) throws -> [String: SHA256Digest] {
        var sums: [String: SHA256Digest] = [:]
        for (n, line) in String(decoding: bytes, as: UTF8.self).split(separator: "\n").enumerated() {
            let parts = line.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, let digest = SHA256Digest(hex: String(parts[0])) else {
                throw CopyError.corruptSource(id: id, from: source.location, object: "snapshots/\(id)/SHA256SUMS", reason: "line \(n + 1) is not `DIGEST  NAME`")
            }
            sums[parts[1].trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "*", with: "")] = digest
        }
        return sums
    }

    func check(_ bytes: [UInt8], named name: String, against sums: [String: SHA256Digest], _ id: SnapshotID) throws {
        guard let expected = sums[name] else {
            throw CopyError.corruptSource(id: id, from: source.location, object: "snapshots/\(id)/SHA256SUMS", reason: "does not list \(name)")
        }
        guard SHA256Hasher.digest(bytes) == expected else {
            throw CopyError.corruptSource(id: id, from: source.location, object: "snapshots/\(id)/\(name)", reason: "does not match its digest in SHA256SUMS")
        }
    }

    /// Stores the frames of `frames` the target lacks; returns the target's size of every
    /// distinct frame (the size it stored, or found).
    mutating func transferFrames(_ frames: [FrameRef], _ id: SnapshotID) throws -> [SHA256Digest: Int64] {
        var distinct: [FrameRef] = []
        var uses: [SHA256Digest: Int64] = [:]
        for f in frames {
            uses[f.id, default: 0] += 1
            if uses[f.id] == 1 { distinct.append(f) }
        }
        let progress = self.progress, total = totalFrames, done = framesDone
        let frameDone: @Sendable (SHA256Digest) -> Void = { [uses] frame in
            progress?(done.add(uses[frame] ?? 1), total, id)
        }
        let state = TransferState()
        let pool = IOPool(threads: max(1, min(options.parallelTransfers, distinct.count)))
        defer { pool.stop() }
        let source = self.source, target = self.target
        for frame in distinct {
            pool.submit {
                guard !state.failed else { return state.finish(frame.id, .skipped) }
                do {
                    try Interruption.check()
                    defer { frameDone(frame.id) }
                    if let size = try Self.storedSize(of: frame.id, in: target) {
                        return state.finish(frame.id, .present(size))
                    }
                    let key = RepositoryLayout.frame(frame.id)
                    let bytes: [UInt8]
                    do {
                        bytes = try source.storage.read(key)
                    } catch where Self.isMissing(error) {
                        if try !source.storage.exists(RepositoryLayout.manifest(id)) { throw CopyError.removedFromSource(id: id, from: source.location) }
                        throw CopyError.corruptSource(id: id, from: source.location, object: key.rawValue, reason: "is missing")
                    }
                    let decoded: [UInt8]
                    do {
                        decoded = try bytes.withUnsafeBytes { try ZstdDecompressor().decompressFrame($0, expectedSize: frame.uncompressedSize) }
                    } catch {
                        throw CopyError.corruptSource(id: id, from: source.location, object: key.rawValue, reason: "does not decode (\(error)): the frame was altered")
                    }
                    guard SHA256Hasher.digest(decoded) == frame.id else {
                        throw CopyError.corruptSource(id: id, from: source.location, object: key.rawValue, reason: "decodes to bytes whose SHA-256 is not its name: the frame was altered")
                    }
                    if try target.storage.put(key, bytes, mode: .createOnly) == .alreadyPresent {
                        let size = try target.storage.size(of: key) ?? Int64(bytes.count)
                        return state.finish(frame.id, .present(size))
                    }
                    state.finish(frame.id, .sent(Int64(bytes.count)))
                } catch {
                    state.finish(frame.id, .failed(error))
                }
            }
        }
        let outcome = state.wait(for: distinct.count)
        if let error = outcome.error { throw error }
        report.framesSent += outcome.sent
        report.framesPresent += outcome.present
        report.bytesSent += outcome.bytes
        return outcome.sizes
    }

    /// The verification records of `id` the target lacks, stored and cataloged there.
    mutating func copyVerifications(of id: SnapshotID) throws {
        let prefix = RepositoryLayout.verifications(of: id)
        let have = Set(try target.storage.children(of: prefix))
        var added: [(key: StorageKey, record: VerificationRecord)] = []
        let decoder = Timestamp.jsonDecoder()
        for name in try source.storage.children(of: prefix) where !have.contains(name) && name.hasSuffix(".json") && StorageKey.isValidComponent(name) {
            let key = RepositoryLayout.verification(id, name: name)
            guard let bytes = try? source.storage.read(key),
                  let stored = try? decoder.decode(StoredVerification.self, from: Data(bytes)), stored.snapshot == id else { continue }
            if try target.storage.put(key, bytes, mode: .createOnly) == .stored {
                report.bytesSent += Int64(bytes.count)
                report.verificationsCopied += 1
                added.append((key, stored.record))
            }
        }
        try target.catalog.importVerifications(added.sorted { ($0.record.at, $0.key) < ($1.record.at, $1.key) })
    }

    /// The events the target lacks (by ID), stored and cataloged there.
    mutating func copyEvents(warn: (String) -> Void) throws {
        let have = Set(try target.storage.children(of: RepositoryLayout.events))
        let decoder = Timestamp.jsonDecoder()
        for name in try source.storage.children(of: RepositoryLayout.events) where !have.contains(name) && name.hasSuffix(".json") && StorageKey.isValidComponent(name) {
            let key = RepositoryLayout.events.appending(name)
            guard let bytes = try? source.storage.read(key), let event = try? decoder.decode(Event.self, from: Data(bytes)) else {
                warn("events/\(name) in \(source.location) cannot be read as an event; it was not copied")
                continue
            }
            if try target.storage.put(key, bytes, mode: .createOnly) == .stored {
                try target.catalog.insert(event)
                report.bytesSent += Int64(bytes.count)
                report.eventsCopied += 1
            }
        }
    }
}

/// The outcomes of one snapshot's frame transfers, gathered from the pool's threads.
final class TransferState: @unchecked Sendable {
    enum Outcome {
        case sent(Int64)
        case present(Int64)
        case skipped
        case failed(Error)
    }

    private let condition = NSCondition()
    private var done = 0
    private var firstError: Error?
    private var sent = 0
    private var present = 0
    private var bytes: Int64 = 0
    private var sizes: [SHA256Digest: Int64] = [:]

    /// Whether a transfer failed: the ones not started yet are skipped.
    var failed: Bool {
        condition.lock()
        defer { condition.unlock() }
        return firstError != nil
    }

    func finish(_ id: SHA256Digest, _ outcome: Outcome) {
        condition.lock()
        switch outcome {
        case let .sent(n): sent += 1; bytes += n; sizes[id] = n
        case let .present(n): present += 1; sizes[id] = n
        case .skipped: break
        case let .failed(error): if firstError == nil { firstError = error }
        }
        done += 1
        condition.broadcast()
        condition.unlock()
    }

    /// Waits until `count` transfers finished (every one in flight, also after a failure).
    func wait(for count: Int) -> (error: Error?, sent: Int, present: Int, bytes: Int64, sizes: [SHA256Digest: Int64]) {
        condition.lock()
        defer { condition.unlock() }
        while done < count { condition.wait() }
        return (firstError, sent, present, bytes, sizes)
    }
}

/// A count shared by transfer threads (copy progress).
final class FrameCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Int64 = 0

    /// Adds `n`; returns the new count.
    func add(_ n: Int64) -> Int64 {
        lock.lock()
        defer { lock.unlock() }
        value += n
        return value
    }
}
