import Dispatch
import Foundation

/// Compresses a byte stream into independent zstd frames followed by a seek table.
///
/// A frame ends every `frameSize` bytes, and at a boundary (`markBoundary()`, a tar entry or dump
/// section starting) once it holds at least `minimumFrameAtBoundary` bytes, so one file or one
/// database can be read back by decoding only its frames. Frames are compressed on all cores in
/// parallel (zstd's own workers do nothing for frames this short) and written downstream in order.
/// Memory is bounded: at most `maxInFlight` frames are compressing at once, and the writer blocks
/// until the oldest one is written.
///
/// Crash behaviour: none of its own; it writes only downstream.
public final class SeekableZstdWriter: ByteSink {
    public static let defaultFrameSize = 4 << 20
    public static let defaultMinimumFrameAtBoundary = 1 << 20

    public let frameSize: Int
    public let minimumFrameAtBoundary: Int
    private let level: Int32
    private let downstream: ByteSink
    private let maxInFlight: Int

    private var buffer: [UInt8] = []
    private var uncompressedOffset: Int64 = 0
    private var compressedOffset: Int64 = 0
    public private(set) var frames: [FrameInfo] = []

    private let pool: CompressorPool
    private let results = FrameResults()
    private var submitted = 0
    private var written = 0
    private var finished = false

    public init(
        downstream: ByteSink,
        level: Int32 = 3,
        frameSize: Int = SeekableZstdWriter.defaultFrameSize,
        minimumFrameAtBoundary: Int = SeekableZstdWriter.defaultMinimumFrameAtBoundary,
        workers: Int = ProcessInfo.processInfo.activeProcessorCount
    ) {
        precondition(frameSize > 0 && frameSize < Int(UInt32.max))
        self.downstream = downstream
        self.level = level
        self.frameSize = frameSize
        self.minimumFrameAtBoundary = minimumFrameAtBoundary
        self.maxInFlight = max(1, workers) + 1
        self.pool = CompressorPool(level: level)
        buffer.reserveCapacity(frameSize)
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        var rest = bytes
        while rest.count > 0 {
            let take = min(rest.count, frameSize - buffer.count)
            buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: rest[0..<take]))
            rest = UnsafeRawBufferPointer(rebasing: rest[take...])
            if buffer.count == frameSize { try endFrame() }
        }
    }

    public func markBoundary() throws {
        if buffer.count >= minimumFrameAtBoundary { try endFrame() }
    }

    public func finish() throws {
        precondition(!finished, "finish() called twice")
        finished = true
        if !buffer.isEmpty { try endFrame() }
        while written < submitted { try drain(blocking: true) }
        let table = SeekTable.encode(frames)
        try downstream.write(table)
        try downstream.finish()
    }

    /// Hands the buffered bytes to a worker as one frame.
    private func endFrame() throws {
        while submitted - written >= maxInFlight { try drain(blocking: true) }
        let input = buffer
        buffer = []
        buffer.reserveCapacity(frameSize)
        let sequence = submitted
        submitted += 1
        let info = FrameInfo(uncompressedOffset: uncompressedOffset, uncompressedSize: input.count,
                             compressedOffset: 0, compressedSize: 0)
        uncompressedOffset += Int64(input.count)
        results.expect(sequence, info: info)
        let pool = self.pool, results = self.results
        DispatchQueue.global().async {
            let outcome = Result { try pool.compress(input) }
            results.deliver(sequence, outcome)
        }
        try drain(blocking: false)
    }

    /// Writes finished frames downstream in order; with `blocking`, waits for at least one.
    private func drain(blocking: Bool) throws {
        var wait = blocking
        while written < submitted, let (info, outcome) = results.take(written, wait: wait) {
            wait = false
            let compressed = try outcome.get()
            try downstream.write(compressed)
            var done = info
            done.compressedOffset = compressedOffset
            done.compressedSize = compressed.count
            compressedOffset += Int64(compressed.count)
            frames.append(done)
            written += 1
        }
    }
}

/// Compressed frames waiting to be written in order.
private final class FrameResults: @unchecked Sendable {
    private let condition = NSCondition()
    private var infos: [Int: FrameInfo] = [:]
    private var outcomes: [Int: Result<[UInt8], Error>] = [:]

    func expect(_ sequence: Int, info: FrameInfo) {
        condition.lock()
        infos[sequence] = info
        condition.unlock()
    }

    func deliver(_ sequence: Int, _ outcome: Result<[UInt8], Error>) {
        condition.lock()
        outcomes[sequence] = outcome
        condition.broadcast()
        condition.unlock()
    }

    func take(_ sequence: Int, wait: Bool) -> (FrameInfo, Result<[UInt8], Error>)? {
        condition.lock()
        defer { condition.unlock() }
        while outcomes[sequence] == nil {
            if !wait { return nil }
            condition.wait()
        }
        let outcome = outcomes.removeValue(forKey: sequence)!
        let info = infos.removeValue(forKey: sequence)!
        return (info, outcome)
    }
}

/// Reuses compression contexts across frames; each context is used by one task at a time.
private final class CompressorPool: @unchecked Sendable {
    private let lock = NSLock()
    private var idle: [ZstdCompressor] = []
    private let level: Int32

    init(level: Int32) { self.level = level }

    func compress(_ input: [UInt8]) throws -> [UInt8] {
        lock.lock()
        let reused = idle.popLast()
        lock.unlock()
        let compressor = try reused ?? ZstdCompressor(level: level)
        defer {
            lock.lock()
            idle.append(compressor)
            lock.unlock()
        }
        return try input.withUnsafeBytes { try compressor.compressFrame($0) }
    }
}
