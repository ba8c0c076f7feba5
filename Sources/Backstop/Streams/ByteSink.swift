/// A stage of the write pipeline: it takes bytes, passes them on, and is finished once.
///
/// Stages wrap one another like Go's `io.Writer` chains:
/// `TarWriter → HashingSink → SeekableZstdWriter → HashingSink → FileSink`.
public protocol ByteSink: AnyObject {
    /// Takes `bytes`; the buffer is only valid during the call.
    func write(_ bytes: UnsafeRawBufferPointer) throws
    /// Says that a reader may want to start reading here (a tar entry or a dump section begins).
    /// Sinks that do not care pass it on.
    func markBoundary() throws
    /// Flushes everything and makes it durable where the sink stores bytes. Called once.
    func finish() throws
}

extension ByteSink {
    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    public func write(_ string: String) throws {
        var s = string
        try s.withUTF8 { try write(UnsafeRawBufferPointer($0)) }
    }
}

/// A sink that keeps everything in memory; for tests and small files (manifests, sums).
public final class MemorySink: ByteSink {
    public private(set) var bytes: [UInt8] = []
    public private(set) var boundaries: [Int] = []
    public private(set) var finished = false

    public init() {}

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        self.bytes.append(contentsOf: bytes)
    }

    public func markBoundary() throws {
        boundaries.append(bytes.count)
    }

    public func finish() throws {
        finished = true
    }
}
