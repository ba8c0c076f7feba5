import Foundation

/// A format-2 payload seen as one seekable zstd file: its frames' objects concatenated in
/// `frames.tsv` order, followed by a seek table made from `frames.tsv`. What `backstop export`
/// writes out, and what restores and verification read through `SeekableZstdReader`.
///
/// Reads are mapped onto the frame objects (a read that spans frames reads each); the object last
/// read stays open. Bytes read count the frames' bytes only.
public final class FrameListSource: ByteSource {
    public let frames: [FrameRef]
    public let size: Int64
    private var sequentialBytesRead: Int64 = 0
    public var bytesRead: Int64 {
        counter.lock()
        defer { counter.unlock() }
        return sequentialBytesRead + parallelBytesRead
    }
    private let storage: StorageBackend
    /// Where each frame starts in the virtual file.
    private let starts: [Int64]
    private let dataSize: Int64
    private let seekTable: [UInt8]
    private var open: (index: Int, source: ByteSource)?

    public init(storage: StorageBackend, frames: [FrameRef]) {
        self.storage = storage
        self.frames = frames
        var starts: [Int64] = []
        starts.reserveCapacity(frames.count)
        var c: Int64 = 0, u: Int64 = 0
        var infos: [FrameInfo] = []
        infos.reserveCapacity(frames.count)
        for f in frames {
            starts.append(c)
            infos.append(FrameInfo(uncompressedOffset: u, uncompressedSize: f.uncompressedSize, compressedOffset: c, compressedSize: f.compressedSize))
            c += Int64(f.compressedSize)
            u += Int64(f.uncompressedSize)
        }
        self.starts = starts
        dataSize = c
        seekTable = SeekTable.encode(infos)
        size = c + Int64(seekTable.count)
    }

    /// Frame `index`'s whole object, read on its own (safe from several threads at once, unlike
    /// `read(at:count:)`), its size checked against `frames.tsv`.
    public func readFrame(_ index: Int) throws -> [UInt8] {
        try Interruption.check()
        let key = key(ofFrame: index)
        let source: ByteSource
        do {
            source = try storage.open(key)
        } catch let error as FileError where error.errnoValue == ENOENT {
            throw FrameObjectError.missing(key: key)
        } catch let error as StorageError {
            if case .notFound = error { throw FrameObjectError.missing(key: key) }
            throw error
        }
        guard source.size == Int64(frames[index].compressedSize) else {
            throw FrameObjectError.sizeMismatch(key: key, listed: frames[index].compressedSize, stored: source.size)
        }
        let bytes = try source.read(at: 0, count: frames[index].compressedSize)
        counter.lock()
        parallelBytesRead += Int64(bytes.count)
        counter.unlock()
        return bytes
    }

    private let counter = NSLock()
    private var parallelBytesRead: Int64 = 0

    /// The key of frame `index`'s object.
    public func key(ofFrame index: Int) -> StorageKey { RepositoryLayout.frame(frames[index].id) }

    public func read(at offset: Int64, count: Int) throws -> [UInt8] {
        try Interruption.check()
        guard offset >= 0, count >= 0, offset + Int64(count) <= size else {
            throw StorageError.io(location: storage.location, key: nil, operation: "read \(count) bytes at \(offset) of a payload of \(size) bytes in",
                                  reason: "beyond its end")
        }
        var out: [UInt8] = []
        out.reserveCapacity(count)
        var position = offset
        let end = offset + Int64(count)
        while position < end {
            if position >= dataSize {
                let from = Int(position - dataSize)
                out.append(contentsOf: seekTable[from..<(from + Int(end - position))])
                break
            }
            let index = frameIndex(containing: position)
            let within = position - starts[index]
            let take = Int(min(end - position, Int64(frames[index].compressedSize) - within))
            let source = try frameSource(index)
            guard source.size == Int64(frames[index].compressedSize) else {
                throw FrameObjectError.sizeMismatch(key: key(ofFrame: index), listed: frames[index].compressedSize, stored: source.size)
            }
            let before = source.bytesRead
            out.append(contentsOf: try source.read(at: within, count: take))
            sequentialBytesRead += source.bytesRead - before
            position += Int64(take)
        }
        return out
    }

    private func frameSource(_ index: Int) throws -> ByteSource {
        if let open, open.index == index { return open.source }
        let source: ByteSource
        do {
            source = try storage.open(key(ofFrame: index))
        } catch let error as FileError where error.errnoValue == ENOENT {
            throw FrameObjectError.missing(key: key(ofFrame: index))
        } catch let error as StorageError {
            if case .notFound = error { throw FrameObjectError.missing(key: key(ofFrame: index)) }
            throw error
        }
        open = (index, source)
        return source
    }

    private func frameIndex(containing offset: Int64) -> Int {
        var lo = 0, hi = starts.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if starts[mid] <= offset { lo = mid } else { hi = mid - 1 }
        }
        return lo
    }
}

/// A frame object that is missing, or not what `frames.tsv` says: the repository is damaged.
public enum FrameObjectError: Error, CustomStringConvertible, ExitStatusProviding {
    case missing(key: StorageKey)
    case sizeMismatch(key: StorageKey, listed: Int, stored: Int64)
    case digestMismatch(key: StorageKey)
    /// The object does not decode (zstd's error, its content checksum included).
    case corrupt(key: StorageKey, reason: String)

    public var description: String {
        switch self {
        case let .missing(key): return "\(key) is missing"
        case let .sizeMismatch(key, listed, stored): return "\(key) is \(stored) bytes; frames.tsv says \(listed)"
        case let .digestMismatch(key): return "\(key) decodes to bytes whose SHA-256 is not its name: the frame was altered"
        case let .corrupt(key, reason): return "\(key) is damaged: \(reason)"
        }
    }

    public var exitStatus: ExitStatus { .integrity }
}
