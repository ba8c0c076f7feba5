import Foundation

/// What `backstop export` wrote.
public struct ExportReport: Sendable, Encodable {
    public var snapshot: SnapshotID
    public var kind: SnapshotKind
    /// The file written, or `-` for standard output.
    public var target: String
    public var frames: Int
    /// Bytes written: the frames and the seek table.
    public var bytes: Int64
}

/// Why `backstop export` wrote nothing (or had to stop). A failure carries its cause's exit
/// status: 65 for a damaged frame, 74 for the target's or the repository's I/O.
public enum ExportError: Error, CustomStringConvertible, ExitStatusProviding {
    /// The target file exists: it is never replaced (73).
    case targetExists(path: String)
    /// Stopped while writing `target` (a file, removed again, or `-`).
    case failed(snapshot: SnapshotID, target: String, bytesWritten: Int64, underlying: Error)

    public var description: String {
        switch self {
        case let .targetExists(path):
            return "\(path) exists; export never replaces a file: remove it or choose a new name (nothing was written)"
        case let .failed(snapshot, target, bytesWritten, underlying):
            let what = target == "-"
                ? (bytesWritten > 0 ? "\(bytesWritten) bytes had already gone to standard output: discard them" : "nothing was written to standard output")
                : "the partial file was removed, \(target) was not created"
            let next = exitStatus == .integrity
                ? "; the repository is damaged: run `backstop verify \(snapshot)`, and restore from an older snapshot or a copy of the repository"
                : ""
            return "cannot export snapshot \(snapshot): \(underlying); \(what)\(next)"
        }
    }

    public var exitStatus: ExitStatus {
        switch self {
        case .targetExists: return .targetNotEmpty
        case let .failed(_, _, _, underlying): return ExitStatus(for: underlying)
        }
    }
}

/// A frame object that does not decode (65).
struct UndecodableFrame: Error, CustomStringConvertible, ExitStatusProviding {
    var key: StorageKey
    var reason: String
    var description: String { "\(key) does not decode (\(reason)): the frame was altered" }
    var exitStatus: ExitStatus { .integrity }
}

extension Repository {
    /// Writes snapshot `id`'s payload as the classic single file (`backstop export`): its frame
    /// objects concatenated in `frames.tsv` order, then a seek table, so `zstd -dc` of it is the
    /// tar stream (filesystem) or the dump (logical). `target` is a file path (which must not
    /// exist) or `-` for standard output. Every frame is decoded and checked against its ID
    /// before its bytes go out.
    ///
    /// Crash behaviour: a file target is written beside itself under a temporary name and
    /// renamed once complete; a failure or interruption removes it (a crash leaves that
    /// temporary file, `.NAME.backstop-export-PID`). The repository is only read.
    public func export(_ id: SnapshotID, to target: String) throws -> ExportReport {
        let manifest = try self.manifest(id)
        if target == "-" {
            let sink = FileDescriptorSink(fd: 1, name: "standard output")
            var written: Int64 = 0
            do {
                let frames = try exportPayload(manifest, into: sink, counting: &written)
                return ExportReport(snapshot: id, kind: manifest.kind, target: "-", frames: frames, bytes: written)
            } catch let error as Interrupted {
                throw error
            } catch {
                throw ExportError.failed(snapshot: id, target: "-", bytesWritten: written, underlying: error)
            }
        }
        let path = URL(fileURLWithPath: target).standardizedFileURL.path
        var status = stat()
        if lstat(path, &status) == 0 { throw ExportError.targetExists(path: path) }
        let directory = (path as NSString).deletingLastPathComponent
        let temp = directory + "/." + (path as NSString).lastPathComponent + ".backstop-export-\(getpid())"
        unlink(temp)
        let removeOnSignal = Interruption.register { unlink(temp) }
        defer { Interruption.unregister(removeOnSignal) }
        var written: Int64 = 0
        do {
            let sink = try FileSink(path: temp)
            let frames = try exportPayload(manifest, into: sink, counting: &written)
            try sink.finish()
            try Interruption.critical(unregistering: removeOnSignal) {
                if lstat(path, &status) == 0 { throw ExportError.targetExists(path: path) }
                try FileSystem.rename(temp, path)
            }
            return ExportReport(snapshot: id, kind: manifest.kind, target: path, frames: frames, bytes: written)
        } catch let error as Interrupted {
            unlink(temp)
            throw error
        } catch let error as ExportError {
            unlink(temp)
            throw error
        } catch {
            unlink(temp)
            throw ExportError.failed(snapshot: id, target: path, bytesWritten: written, underlying: error)
        }
    }

    /// Writes the payload's frames (each checked against its ID) and the seek table to `sink`
    /// (not finished), adding the bytes written to `written`; returns the number of frames.
    func exportPayload(_ manifest: Manifest, into sink: ByteSink, counting written: inout Int64) throws -> Int {
        let frames = try SnapshotReader(repository: self, manifest: manifest).frameList()
        let source = FrameListSource(storage: storage, frames: frames)
        let decompressor = ZstdDecompressor()
        var offset: Int64 = 0
        for (index, frame) in frames.enumerated() {
            let compressed = try source.read(at: offset, count: frame.compressedSize)
            let decoded: [UInt8]
            do {
                decoded = try compressed.withUnsafeBytes { try decompressor.decompressFrame($0, expectedSize: frame.uncompressedSize) }
            } catch {
                throw UndecodableFrame(key: source.key(ofFrame: index), reason: "\(error)")
            }
            guard try storage.frameID(of: decoded) == frame.id else { throw FrameObjectError.digestMismatch(key: source.key(ofFrame: index)) }
            try sink.write(compressed)
            written += Int64(compressed.count)
            offset += Int64(compressed.count)
        }
        let table = try source.read(at: offset, count: Int(source.size - offset))
        try sink.write(table)
        written += Int64(table.count)
        return frames.count
    }
}
