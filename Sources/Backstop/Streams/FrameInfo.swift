/// Where one zstd frame of a seekable file sits, in the decoded stream and in the stored file.
public struct FrameInfo: Codable, Sendable, Equatable {
    public var uncompressedOffset: Int64
    public var uncompressedSize: Int
    public var compressedOffset: Int64
    public var compressedSize: Int

    public init(uncompressedOffset: Int64, uncompressedSize: Int, compressedOffset: Int64, compressedSize: Int) {
        self.uncompressedOffset = uncompressedOffset
        self.uncompressedSize = uncompressedSize
        self.compressedOffset = compressedOffset
        self.compressedSize = compressedSize
    }

    public var uncompressedEnd: Int64 { uncompressedOffset + Int64(uncompressedSize) }
}

/// The zstd seekable format's seek table: a skippable frame after the data frames.
///
/// Layout (little-endian): magic `0x184D2A5E`, frame size, then per frame its compressed and
/// decompressed sizes (u32 each), then the footer: frame count (u32), descriptor (u8, 0: no
/// checksums) and the seekable magic `0x8F92EAB1`. `zstd -d` skips it.
public enum SeekTable {
    static let skippableMagic: UInt32 = 0x184D_2A5E
    static let seekableMagic: UInt32 = 0x8F92_EAB1
    public static let footerSize = 9

    public static func encode(_ frames: [FrameInfo]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(8 + frames.count * 8 + footerSize)
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        u32(skippableMagic)
        u32(UInt32(frames.count * 8 + footerSize))
        for f in frames {
            u32(UInt32(f.compressedSize))
            u32(UInt32(f.uncompressedSize))
        }
        u32(UInt32(frames.count))
        out.append(0)
        u32(seekableMagic)
        return out
    }

    /// Size of the whole skippable frame for `count` frames.
    public static func size(frameCount count: Int) -> Int { 8 + count * 8 + footerSize }

    static func readU32(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt32 {
        UInt32(b[at]) | UInt32(b[at + 1]) << 8 | UInt32(b[at + 2]) << 16 | UInt32(b[at + 3]) << 24
    }

    /// Frame count from the footer (the last 9 bytes of the file).
    static func frameCount(footer: UnsafeRawBufferPointer) throws -> Int {
        guard footer.count == footerSize else { throw ZstdError.notSeekable("file too short for a seek table") }
        guard readU32(footer, 5) == seekableMagic else { throw ZstdError.notSeekable("no seek table footer") }
        guard footer[4] & 0x7C == 0 else { throw ZstdError.notSeekable("reserved bits set in the seek table descriptor") }
        guard footer[4] & 0x80 == 0 else { throw ZstdError.notSeekable("seek tables with checksums are not written by Backstop") }
        return Int(readU32(footer, 0))
    }

    /// Decodes the whole skippable frame into frame positions.
    static func decode(_ table: UnsafeRawBufferPointer, frameCount: Int) throws -> [FrameInfo] {
        guard table.count == size(frameCount: frameCount),
              readU32(table, 0) == skippableMagic,
              Int(readU32(table, 4)) == frameCount * 8 + footerSize
        else { throw ZstdError.notSeekable("seek table header is damaged") }
        var frames: [FrameInfo] = []
        frames.reserveCapacity(frameCount)
        var u: Int64 = 0, c: Int64 = 0
        for i in 0..<frameCount {
            let cs = Int(readU32(table, 8 + i * 8)), us = Int(readU32(table, 12 + i * 8))
            frames.append(FrameInfo(uncompressedOffset: u, uncompressedSize: us, compressedOffset: c, compressedSize: cs))
            u += Int64(us)
            c += Int64(cs)
        }
        return frames
    }
}
