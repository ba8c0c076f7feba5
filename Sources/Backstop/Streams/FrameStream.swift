import Dispatch
import Foundation

/// A frame that failed to decode, with its index in the seek table.
public struct FrameError: Error, CustomStringConvertible, ExitStatusProviding {
    public var frame: Int
    public var underlying: Error
    public var description: String { "frame \(frame): \(underlying)" }
    /// The underlying error's: a corrupt frame is 65, an unreadable one 74.
    public var exitStatus: ExitStatus { ExitStatus(for: underlying) }
}

/// Decodes chosen frames of a seekable zstd file ahead of the reader, in parallel, and hands
/// them out in order. At most `workers + 1` decoded frames are held at once. With
/// `hashingOutput`, the decoding tasks also hash the decoded stream in order, off the reader's
/// thread (`streamDigest`, once every frame was handed out).
public final class FrameStream: @unchecked Sendable {
    private let reader: SeekableZstdReader
    private let indices: [Int]
    private let lookahead: Int
    private var position = 0
    private var failed = false
    private var submitted = 0
    private let condition = NSCondition()
    private var done: [Int: (compressed: [UInt8], result: Result<[UInt8], Error>)] = [:]
    private let decompressors = DecompressorPool()
    private let hasher: OrderedHasher?

    public init(reader: SeekableZstdReader, frames: [Int]? = nil,
                workers: Int = ProcessInfo.processInfo.activeProcessorCount, hashingOutput: Bool = false) {
        self.reader = reader
        indices = frames ?? Array(reader.frames.indices)
        lookahead = max(1, workers) + 1
        hasher = hashingOutput ? OrderedHasher() : nil
    }

    /// The digest of every decoded frame, in order; nil until all were handed out, or when a
    /// frame failed to decode.
    public private(set) var streamDigest: SHA256Digest?

    /// The next frame's index and decoded bytes, or nil after the last.
    public func next() throws -> (index: Int, bytes: [UInt8])? {
        try nextWithCompressed().map { ($0.index, $0.bytes) }
    }

    /// The next frame's index, decoded bytes and stored (compressed) bytes, or nil after the last.
    public func nextWithCompressed() throws -> (index: Int, bytes: [UInt8], compressed: [UInt8])? {
        guard position < indices.count else {
            if let hasher, streamDigest == nil, !failed { streamDigest = hasher.finalize() }
            return nil
        }
        while submitted < indices.count && submitted - position < lookahead { try submit(submitted) }
        condition.lock()
        while done[position] == nil { condition.wait() }
        let (compressed, result) = done.removeValue(forKey: position)!
        condition.unlock()
        let index = indices[position]
        position += 1
        do {
            return (index, try result.get(), compressed)
        } catch {
            failed = true
            if error is Interrupted { throw error }   // the user stopped us: not a damaged frame
            throw FrameError(frame: index, underlying: error)
        }
    }

    private func submit(_ slot: Int) throws {
        let frame = reader.frames[indices[slot]]
        submitted += 1
        // Format 2: each frame is an object of its own, read in the decoding task (in parallel,
        // with the decoding of others); otherwise a range of one file, read here in order.
        let list = reader.source as? FrameListSource
        var read: [UInt8]?
        if list == nil {
            do {
                read = try reader.source.read(at: frame.compressedOffset, count: frame.compressedSize)
            } catch {
                hasher?.skip(sequence: slot)
                deliver(slot, [], .failure(error))
                return
            }
        }
        let pool = decompressors
        let hasher = self.hasher
        let box = UncheckedBox(value: (list, read))
        DispatchQueue.global().async { [self] in
            let index = indices[slot]
            let (list, read) = box.value
            let compressed: [UInt8]
            do {
                compressed = try read ?? list!.readFrame(index)
            } catch {
                hasher?.skip(sequence: slot)
                deliver(slot, [], .failure(error))
                return
            }
            let d = pool.take()
            let result = Result {
                let bytes: [UInt8]
                do {
                    bytes = try compressed.withUnsafeBytes { try d.decompressFrame($0, expectedSize: frame.uncompressedSize) }
                } catch {
                    throw reader.decodingFailure(index, error)
                }
                try reader.checkDigest(index, bytes)
                return bytes
            }
            pool.give(d)
            if let hasher {
                if case let .success(bytes) = result { hasher.update(bytes, sequence: slot) } else { hasher.skip(sequence: slot) }
            }
            deliver(slot, compressed, result)
        }
    }

    private func deliver(_ slot: Int, _ compressed: [UInt8], _ result: Result<[UInt8], Error>) {
        condition.lock()
        done[slot] = (compressed, result)
        condition.broadcast()
        condition.unlock()
    }
}

private final class DecompressorPool: @unchecked Sendable {
    private let lock = NSLock()
    private var idle: [ZstdDecompressor] = []

    func take() -> ZstdDecompressor {
        lock.lock()
        defer { lock.unlock() }
        return idle.popLast() ?? ZstdDecompressor()
    }

    func give(_ d: ZstdDecompressor) {
        lock.lock()
        idle.append(d)
        lock.unlock()
    }
}
