/// Reads a seekable zstd file frame by frame: any frame alone, or any byte range of the decoded
/// stream by decoding only the frames that hold it.
public final class SeekableZstdReader {
    public let source: ByteSource
    public let frames: [FrameInfo]
    private let decompressor = ZstdDecompressor()
    /// Format 2: each frame's ID, the SHA-256 of its decoded bytes, checked on every decode.
    public var frameDigests: [SHA256Digest]?
    /// How a frame's ID is computed from its decoded bytes: SHA-256, or an encrypted
    /// repository's keyed hash (`StorageBackend.frameID(of:)`).
    public var frameID: ([UInt8]) throws -> SHA256Digest = { SHA256Hasher.digest($0) }

    /// Reads the seek table from the end of `source` and checks that it accounts for every byte.
    public init(source: ByteSource) throws {
        self.source = source
        guard source.size >= Int64(SeekTable.footerSize) else {
            throw ZstdError.notSeekable("file is \(source.size) bytes, too short for a seek table")
        }
        let footer = try source.read(at: source.size - Int64(SeekTable.footerSize), count: SeekTable.footerSize)
        let count = try footer.withUnsafeBytes { try SeekTable.frameCount(footer: $0) }
        let tableSize = SeekTable.size(frameCount: count)
        guard Int64(tableSize) <= source.size else {
            throw ZstdError.notSeekable("seek table claims \(count) frames, more than the file holds")
        }
        let table = try source.read(at: source.size - Int64(tableSize), count: tableSize)
        frames = try table.withUnsafeBytes { try SeekTable.decode($0, frameCount: count) }
        let dataSize = frames.last.map { $0.compressedOffset + Int64($0.compressedSize) } ?? 0
        guard dataSize + Int64(tableSize) == source.size else {
            throw ZstdError.notSeekable(
                "seek table accounts for \(dataSize + Int64(tableSize)) bytes but the file has \(source.size)")
        }
    }

    /// Decoded size of the whole stream.
    public var uncompressedSize: Int64 { frames.last?.uncompressedEnd ?? 0 }

    /// Decodes frame `index`.
    public func decodeFrame(_ index: Int) throws -> [UInt8] {
        let f = frames[index]
        let compressed = try source.read(at: f.compressedOffset, count: f.compressedSize)
        let bytes: [UInt8]
        do {
            bytes = try compressed.withUnsafeBytes { try decompressor.decompressFrame($0, expectedSize: f.uncompressedSize) }
        } catch {
            throw decodingFailure(index, error)
        }
        try checkDigest(index, bytes)
        return bytes
    }

    /// Format 2: a frame object that does not decode is named by its key (a bare zstd error
    /// would not say which object to look at); other errors pass unchanged.
    public func decodingFailure(_ index: Int, _ error: Error) -> Error {
        guard let frameDigests, let zstd = error as? ZstdError else { return error }
        return FrameObjectError.corrupt(key: RepositoryLayout.frame(frameDigests[index]), reason: "\(zstd)")
    }

    /// Throws when frame `index` has an ID (format 2) that `bytes` do not hash to.
    public func checkDigest(_ index: Int, _ bytes: [UInt8]) throws {
        guard let frameDigests else { return }
        if try frameID(bytes) != frameDigests[index] {
            throw FrameObjectError.digestMismatch(key: RepositoryLayout.frame(frameDigests[index]))
        }
    }

    /// Index of the frame holding decoded byte `offset`.
    public func frameIndex(containing offset: Int64) -> Int? {
        var lo = 0, hi = frames.count - 1
        while lo <= hi {
            let mid = (lo + hi) / 2
            let f = frames[mid]
            if offset < f.uncompressedOffset { hi = mid - 1 } else if offset >= f.uncompressedEnd { lo = mid + 1 } else { return mid }
        }
        return nil
    }

    /// Writes decoded bytes `range` to `sink`, decoding only the frames that hold them.
    public func read(range: Range<Int64>, into sink: ByteSink) throws {
        guard !range.isEmpty else { return }
        guard range.lowerBound >= 0, range.upperBound <= uncompressedSize,
              var index = frameIndex(containing: range.lowerBound)
        else {
            throw ZstdError.notSeekable("range \(range) is outside the decoded stream of \(uncompressedSize) bytes")
        }
        while index < frames.count, frames[index].uncompressedOffset < range.upperBound {
            let f = frames[index]
            let bytes = try decodeFrame(index)
            let from = Int(max(range.lowerBound, f.uncompressedOffset) - f.uncompressedOffset)
            let to = Int(min(range.upperBound, f.uncompressedEnd) - f.uncompressedOffset)
            try bytes.withUnsafeBytes { try sink.write(UnsafeRawBufferPointer(rebasing: $0[from..<to])) }
            index += 1
        }
    }

    /// Writes the whole decoded stream to `sink` (without finishing it).
    public func readAll(into sink: ByteSink) throws {
        for i in frames.indices {
            try decodeFrame(i).withUnsafeBytes { try sink.write($0) }
        }
    }
}
