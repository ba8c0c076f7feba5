import Foundation

/// Restores a logical snapshot's stream, or one database or table of it, to a file or stdout.
///
/// `database` (mysqldump, pg_dumpall) or `table` (pg_dump; `schema.table` or a unique `table`)
/// writes the preamble, every section of that name (mariadb-dump writes views in a second
/// section of the same database) and the trailer: a file the database client loads as is. Only
/// those sections' frames are decoded.
/// For pg_dump's custom and tar formats, `table` writes an archive that `pg_restore` reads: the
/// preamble with its table of contents rewritten so that only the chosen table has data (see
/// `PgArchiveTableFilter`), that table's data, and (tar) the trailer. A pg_dump snapshot of any
/// format holds one database, so `database` is refused for it.
///
/// To a file: written to a staging file beside it (`.backstop-restore-PID`), every section's or
/// the stream's digest checked, then renamed into place, so a corrupt snapshot leaves the target
/// untouched. An existing file, symlink or directory is kept: a non-empty file, a symlink or a
/// directory needs `force`, which moves it aside to `TARGET.before-restore-TIME` (never over
/// anything; nothing is deleted). A FIFO, device or socket target is refused.
///
/// To stdout (`-`, or any sink with `stream(into:)`): nothing is written before everything that
/// will be written was verified. A first pass decodes the chosen frames and checks every digest
/// (and records each stored frame's SHA-256); the second pass decodes them again and writes them,
/// checking each stored frame against the first pass before its bytes go out, so a frame that
/// changed in between is still caught (then `RestoreError.corruptWhileStreaming`, which a
/// fallback never follows with a second stream). Memory stays bounded: frames are decoded twice
/// rather than held. The cost is a second decode of the chosen frames (a whole 305 MB stream in
/// 2.5× the time of `zstd -dc` of the same file; measured in the README). Every frame is checked
/// against its ID (the SHA-256 `frames.tsv` names it by) as it is decoded, before the first byte
/// goes out (or, to a file, before the rename).
///
/// A failure to write the target (broken pipe, full disk, permission) is
/// `RestoreError.targetWrite` (exit 74): the snapshot is not at fault and nothing is recorded
/// about it.
///
/// Crash behaviour: the target is never partly written. A crash (or SIGKILL) leaves a
/// `TARGET.backstop-restore-PID` staging file until the next restore beside that target, which
/// removes those of processes no longer running (`RestoreStaging.removeAbandoned`); SIGINT and
/// SIGTERM remove it at once.
public struct LogicalRestore {
    public var repository: Repository
    public var manifest: Manifest
    public var database: String?
    public var table: String?
    public var force: Bool
    /// Hears the bytes written to the target so far, of the total, and the section being written.
    public var progress: RestoreProgress?

    public init(repository: Repository, manifest: Manifest, database: String? = nil, table: String? = nil, force: Bool = false) {
        self.repository = repository
        self.manifest = manifest
        self.database = database
        self.table = table
        self.force = force
    }

    /// The sections that a `database`/`table` restore writes, in stream order.
    public func chosenSections() throws -> [Section]? {
        let id = manifest.id
        if let database {
            guard manifest.dumpFormat == .mysqldump || manifest.dumpFormat == .pgdumpall else {
                // A pg_dump archive (any format) holds one database: restore it whole, or --table.
                throw RestoreError.wrongKind(snapshot: id, wanted: "a mysqldump or pg_dumpall snapshot (a pg_dump snapshot holds one database: restore it whole, or use --table)")
            }
            let parts = manifest.sections.filter { $0.kind == .database && $0.name == database }
            guard !parts.isEmpty else {
                throw RestoreError.noSuchSection(snapshot: id, name: database, kind: "database",
                                                 available: uniqueNames(manifest.sections.filter { $0.kind == .database }))
            }
            return frame(parts)
        }
        if let table {
            guard [.pgdump, .pgdumpCustom, .pgdumpTar].contains(manifest.dumpFormat) else {
                throw RestoreError.wrongKind(snapshot: id, wanted: "a pg_dump snapshot (use --database for mysqldump and pg_dumpall)")
            }
            let tables = manifest.sections.filter { $0.kind == .table }
            var parts = tables.filter { $0.name == table }
            if parts.isEmpty { parts = tables.filter { $0.name.hasSuffix("." + table) } }
            let names = uniqueNames(parts)
            guard !parts.isEmpty else {
                throw RestoreError.noSuchSection(snapshot: id, name: table, kind: "table", available: uniqueNames(tables))
            }
            guard names.count == 1 else { throw RestoreError.ambiguousSection(name: table, matches: names) }
            return frame(parts)
        }
        return nil
    }

    private func frame(_ parts: [Section]) -> [Section] {
        manifest.sections.filter { $0.kind == .preamble } + parts + manifest.sections.filter { $0.kind == .trailer }
    }

    private func uniqueNames(_ sections: [Section]) -> [String] {
        var seen = Set<String>()
        return sections.map(\.name).filter { seen.insert($0).inserted }
    }

    /// Runs between the verifying pass and the streaming pass of `stream(into:)`; tests change
    /// a stored frame here.
    var afterVerifying: (() throws -> Void)?

    /// Restores to `target`: a file path, or `-` for standard output.
    public func run(to target: String) throws -> RestoreReport {
        if target == "-" {
            var report = try stream(into: FileDescriptorSink(fd: 1, name: "standard output"))
            report.target = "-"
            return report
        }
        guard manifest.kind == .logical else { throw RestoreError.wrongKind(snapshot: manifest.id, wanted: "a logical snapshot") }
        let sections = try chosenSections()
        try repository.checkBeforeRestore(manifest)
        let path = URL(fileURLWithPath: target).standardizedFileURL.path
        _ = try RestoreTarget.check(path, force: force)
        let payload = try openPayload()
        let temp = RestoreStaging.filePath(path)
        RestoreStaging.removeAbandoned(beside: path)
        unlink(temp)
        let removeOnSignal = Interruption.register { unlink(temp) }
        defer { Interruption.unregister(removeOnSignal) }
        do {
            let sink: FileSink
            do { sink = try FileSink(path: temp) } catch { throw RestoreError.targetWrite(target: path, reason: "\(error)") }
            // One pass: bytes go to the staging file only, so nothing is out before the checks.
            var report = try pass(payload, sections: sections, into: TargetSink(sink, name: path), expected: nil,
                                  live: false, recordFrameDigests: false).report
            do { try sink.finish() } catch { throw RestoreError.targetWrite(target: path, reason: "\(error)") }
            // Checked again: something may have appeared at the target while we restored. Moving
            // the old target aside and the rename are one critical step: a signal stops both or
            // neither.
            try Interruption.critical(unregistering: removeOnSignal) {
                if try RestoreTarget.check(path, force: force) == .moveAside {
                    report.movedAside = try RestoreTarget.moveAside(path)
                }
                do { try FileSystem.rename(temp, path) } catch { throw RestoreError.targetWrite(target: path, reason: "\(error)") }
            }
            report.target = path
            return report
        } catch {
            unlink(temp)
            throw error
        }
    }

    /// Writes the chosen sections, or the whole stream, to `sink`, verifying everything before
    /// the first byte goes out (see the type's comment). Does not finish `sink`.
    public func stream(into sink: ByteSink) throws -> RestoreReport {
        guard manifest.kind == .logical else { throw RestoreError.wrongKind(snapshot: manifest.id, wanted: "a logical snapshot") }
        let sections = try chosenSections()
        try repository.checkBeforeRestore(manifest)
        let payload = try openPayload()
        let verified = try pass(payload, sections: sections, into: nil, expected: nil, live: false, recordFrameDigests: true)
        try afterVerifying?()
        var report = try pass(payload, sections: sections, into: TargetSink(sink, name: "standard output"), expected: verified.frameDigests,
                              live: true, recordFrameDigests: false).report
        report.bytesRead = payload.source.bytesRead
        return report
    }

    private func openPayload() throws -> SeekableZstdReader {
        do {
            return try SnapshotReader(repository: repository, manifest: manifest).payload()
        } catch let e as Interrupted {
            throw e
        } catch {
            throw RestoreError.reading(error, snapshot: manifest.id, file: manifest.payloadName, location: "seek table")
        }
    }

    /// One pass over the chosen frames, in order. Without `expected`, it checks every chosen
    /// section's digest (for a whole restore, the stream's length; every frame is checked against
    /// its ID as it is decoded) and, with `recordFrameDigests`, returns each stored frame's SHA-256;
    /// with `expected`, it checks each stored frame against those before writing its bytes.
    /// `sink` nil: verify only. `live`: bytes written reach the target itself (no staging file),
    /// so a failure after the first of them cannot be taken back.
    private func pass(_ payload: SeekableZstdReader, sections: [Section]?, into sink: ByteSink?, expected: [SHA256Digest]?,
                      live: Bool, recordFrameDigests: Bool) throws -> (report: RestoreReport, frameDigests: [SHA256Digest]) {
        let id = manifest.id
        let file = manifest.payloadName
        let indices: [Int]
        if let sections {
            indices = payload.frames.indices.filter { i in
                let f = payload.frames[i]
                return sections.contains { $0.offset < f.uncompressedEnd && $0.offset + $0.length > f.uncompressedOffset }
            }
        } else {
            indices = Array(payload.frames.indices)
        }
        let verifying = expected == nil
        let hashFrames = recordFrameDigests || expected != nil
        let stream = FrameStream(reader: payload, frames: indices)
        var digests: [SHA256Digest] = []
        var written: Int64 = 0
        // Per chosen section: its hasher (verifying pass) and the bytes seen so far.
        let hashers = verifying ? (sections ?? []).map { _ in SHA256Hasher() } : []
        var seen = [Int64](repeating: 0, count: sections?.count ?? 0)
        // Where each chosen section goes: the sink, or (a pg_dump archive's preamble) a filter
        // that rewrites its table of contents for the chosen tables. The verifying pass runs the
        // filter too (into nothing), so that a table of contents it cannot read stops the restore
        // before any byte goes out.
        let filters = (sections ?? []).map { s in
            PgArchiveTableFilter.forSection(s, of: manifest, restoring: sections!, into: sink ?? DiscardingSink())
        }
        func write(_ slice: UnsafeRawBufferPointer, section n: Int) throws {
            do { try (filters[n] ?? sink)?.write(slice) } catch let e as PgArchiveTableFilterError {
                throw failure(location: "section \(sections![n].name)", reason: "\(e)", written: written, live: live)
            }
        }
        var position = 0
        while true {
            let next: (index: Int, bytes: [UInt8], compressed: [UInt8])?
            do { next = try stream.nextWithCompressed() } catch let e as FrameError {
                if case AgeError.noMatchingIdentity? = e.underlying as? AgeError, !(live && written > 0) {
                    throw RestoreError.noKey(snapshot: manifest.id, reason: "\(e.underlying)")
                }
                if ExitStatus.isReadFailure(e) && !(live && written > 0) {
                    throw RestoreError.unreadable(snapshot: manifest.id, file: manifest.payloadName, location: "frame \(e.frame)", reason: "\(e.underlying)")
                }
                throw failure(location: "frame \(e.frame)", reason: "\(e.underlying)", written: written, live: live)
            }
            guard let (index, bytes, compressed) = next else { break }
            if hashFrames {
                let digest = SHA256Hasher.digest(compressed)
                if let expected, digest != expected[position] {
                    throw failure(location: "frame \(index)", reason: "its stored bytes changed after they were verified", written: written, live: live)
                }
                if recordFrameDigests { digests.append(digest) }
            }
            position += 1
            guard let sections else {
                try sink?.write(bytes)
                written += Int64(bytes.count)
                if sink != nil { progress?(written, manifest.bytesIn, nil) }
                continue
            }
            let frame = payload.frames[index]
            try bytes.withUnsafeBytes { raw in
                for (n, s) in sections.enumerated() where s.offset < frame.uncompressedEnd && s.offset + s.length > frame.uncompressedOffset {
                    let from = Int(max(s.offset, frame.uncompressedOffset) - frame.uncompressedOffset)
                    let to = Int(min(s.offset + s.length, frame.uncompressedEnd) - frame.uncompressedOffset)
                    let slice = UnsafeRawBufferPointer(rebasing: raw[from..<to])
                    if verifying { hashers[n].update(slice) }
                    try write(slice, section: n)
                    seen[n] += Int64(to - from)
                    written += Int64(to - from)
                    if sink != nil { progress?(written, sections.reduce(0) { $0 + $1.length }, s.name) }
                }
            }
        }
        if let sections {
            for (n, s) in sections.enumerated() {
                guard seen[n] == s.length else {
                    throw failure(location: "section \(s.name)", reason: "the seek table covers \(seen[n]) of its \(s.length) bytes", written: written, live: live)
                }
                if verifying && hashers[n].finalize() != s.sha256 {
                    throw RestoreError.corrupt(snapshot: id, file: file, location: "section \(s.name)", reason: "digest does not match the manifest")
                }
                do { try filters[n]?.finishTableOfContents() } catch {
                    throw failure(location: "section \(s.name)", reason: "\(error)", written: written, live: live)
                }
            }
        } else if verifying {
            if written != manifest.bytesIn {
                throw RestoreError.corrupt(snapshot: id, file: file, location: "stream", reason: "its frames hold \(written) bytes; the manifest says \(manifest.bytesIn)")
            }
        }
        let report = RestoreReport(snapshot: id, target: "", entries: sections?.count ?? 1, bytesWritten: written,
                                   bytesRead: payload.source.bytesRead, framesRead: indices.count, framesTotal: payload.frames.count,
                                   movedAside: nil, warnings: [])
        return (report, digests)
    }

    private func failure(location: String, reason: String, written: Int64, live: Bool) -> RestoreError {
        live && written > 0
            ? .corruptWhileStreaming(snapshot: manifest.id, file: manifest.payloadName, location: location, reason: reason, bytesWritten: written)
            : .corrupt(snapshot: manifest.id, file: manifest.payloadName, location: location, reason: reason)
    }
}

/// Takes bytes and keeps none: where the verifying pass sends a table-of-contents filter's output.
private final class DiscardingSink: ByteSink {
    func write(_ bytes: UnsafeRawBufferPointer) throws {}
    func markBoundary() throws {}
    func finish() throws {}
}

/// Passes bytes to the restore target, turning its failures (a broken pipe, a full disk) into
/// `RestoreError.targetWrite`: the target's fault, never the snapshot's.
final class TargetSink: ByteSink {
    let downstream: ByteSink
    let name: String

    init(_ downstream: ByteSink, name: String) {
        self.downstream = downstream
        self.name = name
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        do { try downstream.write(bytes) } catch let e as RestoreError { throw e } catch {
            throw RestoreError.targetWrite(target: name, reason: "\(error)")
        }
    }

    func markBoundary() throws { try downstream.markBoundary() }

    func finish() throws {
        do { try downstream.finish() } catch { throw RestoreError.targetWrite(target: name, reason: "\(error)") }
    }
}

/// Writes to an already open descriptor (standard output); never closes it.
final class FileDescriptorSink: ByteSink {
    let fd: Int32
    let name: String

    init(fd: Int32, name: String) {
        self.fd = fd
        self.name = name
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        try FileSink.writeAll(bytes, to: fd, name: name)
    }

    func markBoundary() throws {}
    func finish() throws {}
}
