import Foundation

/// What a MariaDB/MySQL binary log file holds, as far as archiving and point-in-time restores
/// need it: read from the file itself (binlog format v4).
///
/// A file starts with the 4-byte magic `\xfebin`, then events. Each event has a 19-byte header
/// (timestamp u32, type u8, server id u32, event size u32, end position u32, flags u16, all
/// little-endian); with `binlog_checksum=CRC32` (the default), each event ends with a CRC-32 of
/// the rest, which is checked. A file the server closed ends with a rotate event (naming the
/// next file) or a stop event; an open file (the current binlog) has neither, and may end in an
/// event that is still being written: `completeLength` is where its last whole event ends.
public struct BinlogSummary: Sendable, Equatable {
    /// Seconds since 1970 of the first and last events that carry a time (a rotate event sent
    /// to a remote client has none).
    public var firstEventAt: Date?
    public var lastEventAt: Date?
    public var eventCount = 0
    /// Bytes up to the end of the last whole event (4 for a file with no events yet).
    public var completeLength: Int64 = 4
    /// The file a rotate event names as next, if the file ends with one.
    public var nextFile: String?
    /// Whether the server closed the file: it ends with a rotate or a stop event.
    public var closed = false
    /// The GTID state at the file's start (its GTID list event), and after its last GTID event
    /// (one `domain-server-seq` per replication domain, comma-separated, sorted by domain).
    public var gtidStart: String?
    public var gtidEnd: String?
    /// Whether events carry CRC-32 checksums (which were all checked).
    public var checksummed = false
    public var serverVersion: String?
}

public enum BinlogReader {
    static let magic: [UInt8] = [0xFE, 0x62, 0x69, 0x6E]

    enum EventType: UInt8 {
        case stop = 3
        case rotate = 4
        case formatDescription = 15
        case gtid = 162
        case gtidList = 163
    }

    /// Reads `bytes` (a whole binlog file, or the start of an open one). Throws
    /// `LogError.corruptSegment` naming the offset of the first event that does not parse or
    /// whose checksum is wrong; a last event cut short is not an error (an open file).
    public static func summarize(_ bytes: [UInt8], name: String) throws -> BinlogSummary {
        guard bytes.count >= 4, Array(bytes[0..<4]) == magic else {
            throw LogError.corruptSegment(name: name, reason: "not a binlog file (no \\xfebin magic at its start)")
        }
        var s = BinlogSummary()
        var gtids: [UInt32: String] = [:]
        var offset = 4
        var checksum = false
        while offset + 19 <= bytes.count {
            let timestamp = u32(bytes, offset)
            let typeCode = bytes[offset + 4]
            let size = Int(u32(bytes, offset + 9))
            guard size >= 19 else {
                throw LogError.corruptSegment(name: name, reason: "event at offset \(offset) declares \(size) bytes, less than its header")
            }
            if offset + size > bytes.count { break }   // still being written
            let type = EventType(rawValue: typeCode)
            if type == .formatDescription {
                // The checksum algorithm is the byte before the last 4 (its CRC) when the server
                // knows checksums; a body of at least 57 bytes + the post-header lengths.
                if size >= 19 + 57 + 5 {
                    checksum = bytes[offset + size - 5] == 1
                    let v = bytes[(offset + 21)..<(offset + 71)]
                    s.serverVersion = String(decoding: v.prefix { $0 != 0 }, as: UTF8.self)
                }
            }
            if checksum {
                let stored = u32(bytes, offset + size - 4)
                var event = bytes[offset..<(offset + size - 4)]
                // The server computes a format description's checksum with its "in use" flag
                // (LOG_EVENT_BINLOG_IN_USE_F, bit 0 of the flags) clear, as it clears it on close.
                if type == .formatDescription { event[offset + 17] &= ~0x01 }
                let computed = CRC32.checksum(event)
                if stored != computed {
                    throw LogError.corruptSegment(name: name, reason: "event at offset \(offset) fails its CRC-32 checksum")
                }
            }
            let bodyEnd = offset + size - (checksum ? 4 : 0)
            let body = offset + 19
            switch type {
            case .rotate where body + 8 <= bodyEnd:
                s.nextFile = String(decoding: bytes[(body + 8)..<bodyEnd], as: UTF8.self)
                s.closed = timestamp != 0 || s.eventCount > 0
            case .stop:
                s.closed = true
            case .gtidList where body + 4 <= bodyEnd:
                let count = Int(u32(bytes, body) & 0x0FFF_FFFF)
                var p = body + 4
                var list: [UInt32: String] = [:]
                for _ in 0..<count where p + 16 <= bodyEnd {
                    let domain = u32(bytes, p), server = u32(bytes, p + 4), seq = u64(bytes, p + 8)
                    list[domain] = "\(domain)-\(server)-\(seq)"
                    p += 16
                }
                if s.gtidStart == nil { s.gtidStart = format(list) }
                gtids.merge(list) { _, new in new }
            case .gtid where body + 12 <= bodyEnd:
                let server = u32(bytes, offset + 5)
                let seq = u64(bytes, body), domain = u32(bytes, body + 8)
                gtids[domain] = "\(domain)-\(server)-\(seq)"
            default:
                break
            }
            if timestamp != 0 {
                let at = Date(timeIntervalSince1970: TimeInterval(timestamp))
                if s.firstEventAt == nil { s.firstEventAt = at }
                s.lastEventAt = at
            }
            if type != .rotate && type != .stop { s.closed = false }
            s.eventCount += 1
            offset += size
            s.completeLength = Int64(offset)
        }
        s.checksummed = checksum
        s.gtidEnd = gtids.isEmpty ? s.gtidStart : format(gtids)
        return s
    }

    static func format(_ gtids: [UInt32: String]) -> String {
        gtids.sorted { $0.key < $1.key }.map(\.value).joined(separator: ",")
    }

    static func u32(_ b: [UInt8], _ o: Int) -> UInt32 {
        UInt32(b[o]) | UInt32(b[o + 1]) << 8 | UInt32(b[o + 2]) << 16 | UInt32(b[o + 3]) << 24
    }

    static func u64(_ b: [UInt8], _ o: Int) -> UInt64 {
        UInt64(u32(b, o)) | UInt64(u32(b, o + 4)) << 32
    }

    /// The sequence number of a binlog file name (`mysql-bin.000042` → 42), and its base.
    public static func sequence(of name: String) -> (base: String, number: Int)? {
        guard let dot = name.lastIndex(of: "."), let n = Int(name[name.index(after: dot)...]) else { return nil }
        return (String(name[..<dot]), n)
    }
}

/// CRC-32 (IEEE 802.3, zlib's), as binlog event checksums use it.
enum CRC32 {
    static let table: [UInt32] = (0..<256).map { i -> UInt32 in
        var c = UInt32(i)
        for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func checksum(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = table[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }
}
