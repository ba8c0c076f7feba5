import Dispatch
import Foundation

/// One frame of a format-2 payload, as `frames.tsv` lists it.
public struct FrameRef: Sendable, Equatable {
    /// SHA-256 of the frame's uncompressed bytes.
    public var id: SHA256Digest
    public var uncompressedSize: Int
    /// The size of the stored object (whichever writer stored it first).
    public var compressedSize: Int

    public init(id: SHA256Digest, uncompressedSize: Int, compressedSize: Int) {
        self.id = id
        self.uncompressedSize = uncompressedSize
        self.compressedSize = compressedSize
    }
}

/// `frames.tsv`: one line per frame in stream order, `ID<TAB>UNCOMPRESSED<TAB>COMPRESSED\n`.
public enum FrameList {
    public static func encode(_ frames: [FrameRef]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(frames.count * 84)
        for f in frames { out.append(contentsOf: Array("\(f.id.hex)\t\(f.uncompressedSize)\t\(f.compressedSize)\n".utf8)) }
        return out
    }

    /// Parses `frames.tsv`; throws naming the first bad line.
    public static func decode(_ bytes: [UInt8], snapshot: SnapshotID) throws -> [FrameRef] {
        var frames: [FrameRef] = []
        var lineNumber = 0
        if !bytes.isEmpty && bytes.last != 0x0A {
            throw RepositoryError.unreadableManifest(id: snapshot.rawValue, reason: "frames.tsv does not end with a newline: it was truncated")
        }
        for line in bytes.split(separator: 0x0A, omittingEmptySubsequences: false).dropLast() {
            lineNumber += 1
            let fields = line.split(separator: 0x09, omittingEmptySubsequences: false)
            guard fields.count == 3, let id = SHA256Digest(hex: String(decoding: fields[0], as: UTF8.self)),
                  let u = Int(String(decoding: fields[1], as: UTF8.self)), let c = Int(String(decoding: fields[2], as: UTF8.self)),
                  u > 0, c > 0, u <= FrameWriter.maximumFrameSize, c < Int(UInt32.max) else {
                throw RepositoryError.unreadableManifest(id: snapshot.rawValue, reason: "frames.tsv line \(lineNumber) is not `ID<TAB>SIZE<TAB>STORED SIZE`")
            }
            frames.append(FrameRef(id: id, uncompressedSize: u, compressedSize: c))
        }
        return frames
    }
}

extension RepositoryLayout {
    static let frames = StorageKey("frames")
    /// `frames/<first two hex digits>/<frame ID>`.
    static func frame(_ id: SHA256Digest) -> StorageKey {
        let hex = id.hex
        return StorageKey("frames", String(hex.prefix(2)), hex)
    }
}

/// Writes a payload as content-addressed frames: each frame is compressed once (with its content
/// checksum) and stored under its ID, the SHA-256 of its uncompressed bytes, unless a frame with
/// that ID is already stored (then nothing is compressed or written: it is counted as reused).
///
/// Where frames end is the caller's decision (`cut()`), so that unchanged data yields identical
/// frames night after night (see `FilesystemSnapshotWriter` and `LogicalSnapshotWriter` for the
/// rules), plus two of its own: a frame never exceeds `maximumFrameSize`, and with
/// `contentDefined` a frame also ends where a gear rolling hash of its content says (FastCDC
/// style: between `cdcMinimum` and `maximumFrameSize`, about `cdcAverage` apart), so bytes
/// inserted in a long section shift only the frames around them.
///
/// The whole stream is not hashed again: it is exactly the frames `frames.tsv` lists, each
/// named by its digest. Frames are hashed and compressed on all cores and stored from a pool of
/// I/O threads; at most one frame more than cores is in flight. The frame list comes out in stream order. Errors end the pipeline, as in
/// `SeekableZstdWriter`: the first is thrown again by every later call.
public final class FrameWriter: ByteSink {
    public static let maximumFrameSize = 4 << 20
    public static let cdcMinimum = 256 << 10
    public static let cdcAverage = 1 << 20

    private let storage: StorageBackend
    private let level: Int32
    private let contentDefined: Bool
    private let maxInFlight: Int
    /// Puts run here, so a core never waits on a disk's fsync or a network round trip.
    private let io: IOPool
    private var buffer: [UInt8] = []
    private var gear: UInt64 = 0
    private let pool: FrameCompressorPool
    private let results = OrderedResults<FrameOutcome>()
    private var submitted = 0
    private var written = 0
    private var finished = false
    private var failure: Error?

    /// The payload's frames, in order (complete after `finish()`).
    public private(set) var frames: [FrameRef] = []
    /// Uncompressed bytes of the stream.
    public private(set) var bytesIn: Int64 = 0
    /// Compressed bytes of the frames this writer stored (new to the repository).
    public private(set) var bytesNew: Int64 = 0
    public private(set) var framesNew = 0

    /// With `cutAtBoundaries`, every `markBoundary()` ends the frame (logical snapshots: every
    /// section starts a frame); otherwise only `cut()` does.
    private let cutAtBoundaries: Bool

    public init(storage: StorageBackend, level: Int32 = 3, contentDefined: Bool = false, cutAtBoundaries: Bool = false,
                workers: Int = ProcessInfo.processInfo.activeProcessorCount) {
        self.storage = storage
        self.level = level
        self.contentDefined = contentDefined
        self.cutAtBoundaries = cutAtBoundaries
        // Frames wait on the storage (a local put ends with two fsyncs) far longer than on a
        // core: a few more in flight than cores keep both busy, each holding at most one frame.
        maxInFlight = max(1, workers) + 1
        io = IOPool(threads: 8)
        pool = FrameCompressorPool(level: level)
        buffer = pool.takeInput()
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        if let failure { throw failure }
        bytesIn += Int64(bytes.count)
        guard contentDefined else {
            var rest = bytes
            while rest.count > 0 {
                let take = min(rest.count, Self.maximumFrameSize - buffer.count)
                buffer.append(contentsOf: rest[0..<take])
                rest = UnsafeRawBufferPointer(rebasing: rest[take...])
                if buffer.count == Self.maximumFrameSize { try failing { try endFrame() } }
            }
            return
        }
        // Content-defined: bytes before `cdcMinimum` are not hashed (FastCDC's skip), then a cut
        // where the gear hash's top 20 bits are zero (about 1 MiB past the minimum), or at the
        // maximum.
        let mask: UInt64 = (UInt64(1) << 20 - 1) << 44
        var start = 0
        let count = bytes.count
        try GearTable.values.withUnsafeBufferPointer { table in
            let input = bytes.bindMemory(to: UInt8.self)
            while start < count {
                let inFrame = buffer.count
                // Where hashing starts and where the frame must end at the latest, in `bytes`.
                let hashFrom = start + max(0, Self.cdcMinimum - inFrame)
                let hardEnd = start + (Self.maximumFrameSize - inFrame)
                let limit = min(count, hardEnd)
                var i = hashFrom
                var h = gear
                var cutAt: Int?
                while i < limit {
                    h = (h << 1) &+ table[Int(input[i])]
                    i += 1
                    if h & mask == 0 { cutAt = i; break }
                }
                gear = h
                if cutAt == nil && limit == hardEnd && hardEnd <= count { cutAt = hardEnd }
                guard let end = cutAt else {
                    buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[start..<count]))
                    return
                }
                buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[start..<end]))
                start = end
                try failing { try endFrame() }
            }
        }
    }

    /// Ends the current frame here (nothing happens when it is empty).
    public func cut() throws {
        if let failure { throw failure }
        if !buffer.isEmpty { try failing { try endFrame() } }
    }

    /// A boundary ends the frame when cutting at boundaries; otherwise cuts are `cut()`'s.
    public func markBoundary() throws {
        if let failure { throw failure }
        if cutAtBoundaries { try cut() }
    }

    /// Appends frames already stored (a parent snapshot's, for files it did not read) at a frame
    /// boundary: the current frame is ended first.
    public func append(reused: [FrameRef]) throws {
        try cut()
        try failing {
            while written < submitted { try drain(blocking: true) }
        }
        for f in reused { bytesIn += Int64(f.uncompressedSize) }
        frames.append(contentsOf: reused)
    }

    /// The uncompressed bytes in the frame being built.
    public var pendingBytes: Int { buffer.count }

    public func finish() throws {
        precondition(!finished, "finish() called twice")
        finished = true
        if let failure { throw failure }
        try failing {
            if !buffer.isEmpty { try endFrame() }
            while written < submitted { try drain(blocking: true) }
            io.stop()
        }
    }

    /// After a failure: waits until every frame in flight is done (stored, or failed and its
    /// temporary file removed), so that nothing is still being written when the caller cleans up
    /// and exits.
    public func abandon() {
        while written < submitted, let outcome = results.take(written, wait: true) {
            if case let .success(done) = outcome, done.isNew { framesNew += 1 }
            written += 1
        }
        io.stop()
    }

    /// The I/O threads end once their last job is done (also when the writer failed).
    deinit { io.stop() }

    private func failing<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch {
            failure = error
            throw error
        }
    }

    private func endFrame() throws {
        while submitted - written >= maxInFlight { try drain(blocking: true) }
        let input = buffer
        buffer = pool.takeInput()
        gear = 0
        let sequence = submitted
        submitted += 1
        let storage = self.storage, pool = self.pool, results = self.results, io = self.io
        DispatchQueue.global().async {
            // On a core: hash, look the frame up, compress. On the I/O pool: store it.
            do {
                try Interruption.check()
                let id = try storage.frameID(of: input)
                let key = RepositoryLayout.frame(id)
                let count = input.count
                // A stored frame is never empty (a zstd frame has a header): an empty object is
                // what a crash can leave of a put whose data never reached the disk.
                if let size = try storage.size(of: key), size > 0 {
                    pool.recycle(input: input)
                    results.deliver(sequence, .success(FrameOutcome(ref: FrameRef(id: id, uncompressedSize: count, compressedSize: Int(size)), isNew: false)))
                    return
                }
                let compressed = try pool.compress(input)
                pool.recycle(input: input)
                io.submit {
                    results.deliver(sequence, Result { try FrameWriter.put(compressed, id: id, uncompressedSize: count, storage: storage) })
                }
            } catch {
                pool.recycle(input: input)
                results.deliver(sequence, .failure(error))
            }
        }
        try drain(blocking: false)
    }

    /// Stores a compressed frame (create-only; an object another writer stored meanwhile counts,
    /// with its own size, as it may have been compressed otherwise).
    private static func put(_ compressed: [UInt8], id: SHA256Digest, uncompressedSize: Int, storage: StorageBackend) throws -> FrameOutcome {
        try Interruption.check()
        let key = RepositoryLayout.frame(id)
        if try storage.put(key, compressed, mode: .createOnly) == .alreadyPresent {
            let size = try storage.size(of: key) ?? Int64(compressed.count)
            return FrameOutcome(ref: FrameRef(id: id, uncompressedSize: uncompressedSize, compressedSize: Int(size)), isNew: false)
        }
        return FrameOutcome(ref: FrameRef(id: id, uncompressedSize: uncompressedSize, compressedSize: compressed.count), isNew: true)
    }

    private func drain(blocking: Bool) throws {
        var wait = blocking
        while written < submitted, let outcome = results.take(written, wait: wait) {
            wait = false
            written += 1   // taken, failed or not: `abandon()` must not wait for it again
            let done = try outcome.get()
            frames.append(done.ref)
            if done.isNew {
                bytesNew += Int64(done.ref.compressedSize)
                framesNew += 1
            }
        }
    }
}

struct FrameOutcome: Sendable {
    var ref: FrameRef
    var isNew: Bool
}

/// Compression contexts and input buffers reused across frames.
final class FrameCompressorPool: @unchecked Sendable {
    private let lock = NSLock()
    private var idle: [ZstdCompressor] = []
    private var inputs: [[UInt8]] = []
    private let level: Int32

    init(level: Int32) { self.level = level }

    func takeInput() -> [UInt8] {
        lock.lock()
        defer { lock.unlock() }
        if var reused = inputs.popLast() {
            reused.removeAll(keepingCapacity: true)
            return reused
        }
        var fresh: [UInt8] = []
        fresh.reserveCapacity(1 << 20)
        return fresh
    }

    /// Keeps a few buffers for the next frames (not the largest: a 4 MiB one is rare, and
    /// memory stays bounded by frames in flight).
    func recycle(input: [UInt8]) {
        guard input.capacity <= 2 << 20 else { return }
        lock.lock()
        if inputs.count < 2 { inputs.append(input) }
        lock.unlock()
    }

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
        var output: [UInt8] = []
        let size = try input.withUnsafeBytes { try compressor.compressFrame($0, into: &output) }
        output.removeSubrange(size...)
        return output
    }
}

/// The gear table of the content-defined cuts: 256 values from SplitMix64 seeded with the
/// ASCII bytes of "backstop". Part of the repository format: changing it changes every cut of
/// every logical snapshot (nothing breaks, but nothing deduplicates against older snapshots).
enum GearTable {
    static let values: [UInt64] = {
        var state: UInt64 = 0x6261_636B_7374_6F70
        return (0..<256).map { _ in
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }()
}

/// A few threads that run blocking jobs (puts that end in fsyncs or network round trips), so
/// the cores go on compressing meanwhile. The threads end after `stop()`, once the jobs
/// submitted before it are done.
final class IOPool: @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [() -> Void] = []
    private var stopping = false

    init(threads: Int) {
        for _ in 0..<threads {
            Thread { self.work() }.start()
        }
    }

    func submit(_ job: @escaping () -> Void) {
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
    }

    private func work() {
        while true {
            condition.lock()
            while jobs.isEmpty && !stopping { condition.wait() }
            if jobs.isEmpty && stopping {
                condition.unlock()
                return
            }
            let job = jobs.removeFirst()
            condition.unlock()
            job()
        }
    }
}
