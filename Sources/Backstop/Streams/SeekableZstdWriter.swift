import Dispatch
import Foundation

/// Compresses a byte stream into independent zstd frames followed by a seek table.
///
/// A frame ends every `frameSize` bytes, and at a boundary (`markBoundary()`, a tar entry or dump
/// section starting) once it holds at least `minimumFrameAtBoundary` bytes, so one file or one
/// database can be read back by decoding only its frames. Frames are compressed on all cores in
/// parallel (zstd's own workers do nothing for frames this short) and written downstream in order.
/// Memory is bounded: at most one frame per worker is compressing at once, and the writer blocks
/// until the oldest one is written.
///
/// Errors: the first error (a failed compression task, a failed downstream write such as a full
/// disk) ends the pipeline. It is thrown at once, and every later `write`, `markBoundary` or
/// `finish` throws it again without waiting for anything, so a caller that writes once more while
/// unwinding (libarchive closing its archive) cannot block on a frame that will never be written.
///
/// Crash behaviour: none of its own; it writes only downstream.
public final class SeekableZstdWriter: ByteSink {
    public static let defaultFrameSize = 2 << 20
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
    private let results = OrderedResults<Compressed>()
    /// Where each frame in flight sits in the stream, by sequence (the writer's thread only).
    private var pending: [Int: FrameInfo] = [:]
    private var inputCount: Int64 = 0
    public var bytesIn: Int64 { inputCount }
    private var submitted = 0
    private var written = 0
    private var finished = false
    /// The error that ended the pipeline, if any.
    private var failure: Error?

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
        self.maxInFlight = max(1, workers)
        self.pool = CompressorPool(level: level)
        buffer = pool.takeInput(capacity: frameSize)
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        if let failure { throw failure }
        inputCount += Int64(bytes.count)
        var rest = bytes
        while rest.count > 0 {
            let take = min(rest.count, frameSize - buffer.count)
            buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: rest[0..<take]).assumingMemoryBound(to: UInt8.self))
            rest = UnsafeRawBufferPointer(rebasing: rest[take...])
            if buffer.count == frameSize { try failing { try endFrame() } }
        }
    }

    public func markBoundary() throws {
        if let failure { throw failure }
        if buffer.count >= minimumFrameAtBoundary { try failing { try endFrame() } }
    }

    public func finish() throws {
        precondition(!finished, "finish() called twice")
        finished = true
        if let failure { throw failure }
        try failing {
            if !buffer.isEmpty { try endFrame() }
            while written < submitted { try drain(blocking: true) }
            let table = SeekTable.encode(frames)
            try downstream.write(table)
            try downstream.finish()
        }
    }

    /// Runs `body`; an error it throws ends the pipeline for good.
    private func failing<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch {
            failure = error
            throw error
        }
    }

    /// Hands the buffered bytes to a worker as one frame.
    private func endFrame() throws {
        while submitted - written >= maxInFlight { try drain(blocking: true) }
        let input = buffer
        buffer = pool.takeInput(capacity: frameSize)
        let sequence = submitted
        submitted += 1
        let info = FrameInfo(uncompressedOffset: uncompressedOffset, uncompressedSize: input.count,
                             compressedOffset: 0, compressedSize: 0)
        uncompressedOffset += Int64(input.count)
        pending[sequence] = info
        let pool = self.pool, results = self.results
        DispatchQueue.global().async {
            let outcome = Result { try pool.compress(input) }
            results.deliver(sequence, outcome.map { (input, $0.0, $0.1) })
        }
        try drain(blocking: false)
    }

    /// Writes finished frames downstream in order; with `blocking`, waits for at least one.
    private func drain(blocking: Bool) throws {
        var wait = blocking
        while written < submitted, let outcome = results.take(written, wait: wait) {
            wait = false
            let info = pending.removeValue(forKey: written)!
            let (input, output, size) = try outcome.get()
            try output.withUnsafeBytes { try downstream.write(UnsafeRawBufferPointer(rebasing: $0[0..<size])) }
            pool.recycle(input: input, output: output)
            var done = info
            done.compressedOffset = compressedOffset
            done.compressedSize = size
            compressedOffset += Int64(size)
            frames.append(done)
            written += 1
        }
    }
}

/// A compressed frame: its input buffer (for reuse), the output buffer and the frame's size in it.
private typealias Compressed = (input: [UInt8], output: [UInt8], size: Int)

/// Reuses compression contexts and frame buffers across frames, so a long stream does not
/// allocate (and fault in) fresh megabytes for every frame. Each context is used by one task at a time.
private final class CompressorPool: @unchecked Sendable {
    private let lock = NSLock()
    private var idle: [ZstdCompressor] = []
    private var inputs: [[UInt8]] = []
    private var outputs: [[UInt8]] = []
    private let level: Int32

    init(level: Int32) { self.level = level }

    func takeInput(capacity: Int) -> [UInt8] {
        lock.lock()
        defer { lock.unlock() }
        if var reused = inputs.popLast() {
            reused.removeAll(keepingCapacity: true)
            return reused
        }
        var fresh: [UInt8] = []
        fresh.reserveCapacity(capacity)
        return fresh
    }

    func recycle(input: [UInt8], output: [UInt8]) {
        lock.lock()
        inputs.append(input)
        outputs.append(output)
        lock.unlock()
    }

    /// Compresses `input` into a pooled output buffer: returns the buffer and the frame's size.
    func compress(_ input: [UInt8]) throws -> ([UInt8], Int) {
        lock.lock()
        let reused = idle.popLast()
        var output = outputs.popLast() ?? []
        lock.unlock()
        let compressor = try reused ?? ZstdCompressor(level: level)
        defer {
            lock.lock()
            idle.append(compressor)
            lock.unlock()
        }
        let size = try input.withUnsafeBytes { try compressor.compressFrame($0, into: &output) }
        return (output, size)
    }
}
