import CZstd

/// What can go wrong compressing or decompressing with zstd.
public enum ZstdError: Error, CustomStringConvertible, Equatable, ExitStatusProviding {
    case compressionFailed(String)
    case corruptFrame(String)
    case checksumMismatch
    case sizeMismatch(expected: Int, actual: Int)
    case notSeekable(String)

    public var description: String {
        switch self {
        case let .compressionFailed(reason): return "zstd compression failed: \(reason)"
        case let .corruptFrame(reason): return "zstd frame is corrupt: \(reason)"
        case .checksumMismatch: return "zstd frame checksum does not match its content"
        case let .sizeMismatch(expected, actual):
            return "zstd frame decoded to \(actual) bytes where the seek table says \(expected)"
        case let .notSeekable(reason): return "not a seekable zstd file: \(reason)"
        }
    }

    /// Stored data that does not decode is corrupt (65); a compressor that fails is unexpected (1).
    public var exitStatus: ExitStatus {
        switch self {
        case .compressionFailed: return .failure
        case .corruptFrame, .checksumMismatch, .sizeMismatch, .notSeekable: return .integrity
        }
    }
}

/// Checks a zstd return value; every zstd call goes through here.
@discardableResult
func zstdCheck(_ result: Int, compressing: Bool) throws -> Int {
    if ZSTD_isError(result) != 0 {
        let name = String(cString: ZSTD_getErrorName(result))
        if compressing { throw ZstdError.compressionFailed(name) }
        if ZSTD_getErrorCode(result) == ZSTD_error_checksum_wrong { throw ZstdError.checksumMismatch }
        throw ZstdError.corruptFrame(name)
    }
    return result
}

/// Compresses whole frames. Owns a `ZSTD_CCtx`; used by one task at a time.
final class ZstdCompressor: @unchecked Sendable {
    private let context: OpaquePointer

    init(level: Int32) throws {
        guard let ctx = ZSTD_createCCtx() else { throw ZstdError.compressionFailed("out of memory") }
        context = ctx
        try zstdCheck(ZSTD_CCtx_setParameter(ctx, ZSTD_c_compressionLevel, level), compressing: true)
        // Each frame carries a content checksum, so a decoder names the corrupt frame.
        try zstdCheck(ZSTD_CCtx_setParameter(ctx, ZSTD_c_checksumFlag, 1), compressing: true)
    }

    deinit { ZSTD_freeCCtx(context) }

    /// Compresses `input` into one independent frame (content size in the header) written to the
    /// start of `output`, which is grown to `compressBound` if needed; returns the frame's size.
    func compressFrame(_ input: UnsafeRawBufferPointer, into output: inout [UInt8]) throws -> Int {
        let bound = ZSTD_compressBound(input.count)
        if output.count < bound { output = [UInt8](repeating: 0, count: bound) }
        return try output.withUnsafeMutableBytes { out in
            try zstdCheck(ZSTD_compress2(context, out.baseAddress, out.count, input.baseAddress, input.count), compressing: true)
        }
    }
}

/// Decompresses frames. Owns a `ZSTD_DCtx`; used by one task at a time.
public final class ZstdDecompressor: @unchecked Sendable {
    private let context: OpaquePointer

    public init() {
        guard let ctx = ZSTD_createDCtx() else { fatalError("ZSTD_createDCtx: out of memory") }
        context = ctx
    }

    deinit { ZSTD_freeDCtx(context) }

    /// Decodes one frame whose decoded size is known (from the seek table); anything else is corruption.
    public func decompressFrame(_ frame: UnsafeRawBufferPointer, expectedSize: Int) throws -> [UInt8] {
        let declared = ZSTD_getFrameContentSize(frame.baseAddress, frame.count)
        if declared == ZSTD_CONTENTSIZE_ERROR {
            throw ZstdError.corruptFrame("bad frame header")
        }
        if declared != ZSTD_CONTENTSIZE_UNKNOWN && declared != UInt64(expectedSize) {
            throw ZstdError.sizeMismatch(expected: expectedSize, actual: Int(clamping: declared))
        }
        let frameSize = ZSTD_findFrameCompressedSize(frame.baseAddress, frame.count)
        if ZSTD_isError(frameSize) != 0 || frameSize != frame.count {
            throw ZstdError.corruptFrame("frame length does not match the seek table")
        }
        var failure: Error?
        let out = [UInt8](unsafeUninitializedCapacity: max(expectedSize, 1)) { buffer, count in
            do {
                count = try zstdCheck(
                    ZSTD_decompressDCtx(context, buffer.baseAddress, expectedSize, frame.baseAddress, frame.count),
                    compressing: false)
            } catch {
                failure = error
                count = 0
            }
        }
        if let failure { throw failure }
        if out.count != expectedSize { throw ZstdError.sizeMismatch(expected: expectedSize, actual: out.count) }
        return out
    }
}

/// The zstd library linked into this process, as it reports itself ("1.5.4").
public enum ZstdLibrary {
    public static var version: String { String(cString: ZSTD_versionString()) }
}

/// Compresses everything written to it into one zstd frame (content size in its header when
/// `pledgedSize` is given, content checksum on) passed on to `downstream` in pieces of at most
/// 1 MiB, so a stream of any length is compressed in bounded memory (`ZSTD_compressStream2`).
final class ZstdStreamCompressor: ByteSink {
    private let context: OpaquePointer
    private let downstream: ByteSink
    private var output: [UInt8]
    /// Compressed bytes passed downstream so far.
    private(set) var compressedCount: Int64 = 0

    init(level: Int32, pledgedSize: Int64?, downstream: ByteSink) throws {
        guard let ctx = ZSTD_createCCtx() else { throw ZstdError.compressionFailed("out of memory") }
        context = ctx
        self.downstream = downstream
        output = [UInt8](repeating: 0, count: ZSTD_CStreamOutSize())
        try zstdCheck(ZSTD_CCtx_setParameter(ctx, ZSTD_c_compressionLevel, level), compressing: true)
        try zstdCheck(ZSTD_CCtx_setParameter(ctx, ZSTD_c_checksumFlag, 1), compressing: true)
        if let pledgedSize { try zstdCheck(ZSTD_CCtx_setPledgedSrcSize(ctx, UInt64(pledgedSize)), compressing: true) }
    }

    deinit { ZSTD_freeCCtx(context) }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard bytes.count > 0 else { return }
        var input = ZSTD_inBuffer(src: bytes.baseAddress, size: bytes.count, pos: 0)
        while input.pos < input.size {
            try step(&input, ZSTD_e_continue)
        }
    }

    func markBoundary() throws {}

    /// Ends the frame, passes its last bytes on, and finishes `downstream`.
    func finish() throws {
        var input = ZSTD_inBuffer(src: nil, size: 0, pos: 0)
        while try step(&input, ZSTD_e_end) != 0 {}
        try downstream.finish()
    }

    /// One call of the compressor; returns what it still has to flush (for `ZSTD_e_end`).
    @discardableResult
    private func step(_ input: inout ZSTD_inBuffer, _ directive: ZSTD_EndDirective) throws -> Int {
        let capacity = output.count
        var remaining = 0
        let produced = try output.withUnsafeMutableBytes { out -> Int in
            var buffer = ZSTD_outBuffer(dst: out.baseAddress, size: capacity, pos: 0)
            remaining = try zstdCheck(ZSTD_compressStream2(context, &buffer, &input, directive), compressing: true)
            return buffer.pos
        }
        if produced > 0 {
            try output.withUnsafeBytes { try downstream.write(UnsafeRawBufferPointer(rebasing: $0[0..<produced])) }
            compressedCount += Int64(produced)
        }
        return remaining
    }
}
