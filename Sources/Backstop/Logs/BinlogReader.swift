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
    /// Query events holding DML (INSERT, UPDATE, DELETE, REPLACE, LOAD DATA): the server logged
    /// those changes as SQL text (binlog_format STATEMENT or MIXED), not as row events.
    public var statementDML = 0
    /// The first of them: its offset, default database and the start of its text.
    public var statementDMLExample: String?
}

public enum BinlogReader {
    static let magic: [UInt8] = [0xFE, 0x62, 0x69, 0x6E]

    enum EventType: UInt8 {
        case query = 2
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
        let scanner = BinlogScanner(name: name)
        try bytes.withUnsafeBytes { all in
            var offset = 0
            while offset < all.count {
                let n = min(BinlogScanner.chunkSize, all.count - offset)
                try scanner.feed(UnsafeRawBufferPointer(rebasing: all[offset..<(offset + n)]))
                offset += n
            }
        }
        return try scanner.finish()
    }

    /// The DML verb a statement starts with (after blanks and comments), if it is one.
    static func dmlVerb(_ text: ArraySlice<UInt8>) -> String? {
        var i = text.startIndex
        while i < text.endIndex {
            let c = text[i]
            if c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D || c == 0x28 { i += 1; continue }   // blanks, "("
            if c == 0x2F, i + 1 < text.endIndex, text[i + 1] == 0x2A {   // /* … */
                var j = i + 2
                while j + 1 < text.endIndex, !(text[j] == 0x2A && text[j + 1] == 0x2F) { j += 1 }
                i = j + 2
                continue
            }
            break
        }
        guard i < text.endIndex else { return nil }
        let word = String(decoding: text[i...].prefix { ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) }, as: UTF8.self).uppercased()
        return ["INSERT", "UPDATE", "DELETE", "REPLACE", "LOAD"].contains(word) ? word : nil
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

/// Reads a binlog file as it streams by, in pieces of any size (`feed`), holding no more than
/// the piece and the one event it ends inside: a 1 GiB binlog is read in a few MiB. `complete`
/// is given the file's bytes up to the end of each whole event, in order (what a partial segment
/// of an open file stores); a last event cut short is never passed on.
public final class BinlogScanner {
    static let chunkSize = 1 << 20
    let name: String
    /// Called with the magic, then the bytes of each whole event, in file order.
    var complete: ((UnsafeRawBufferPointer) throws -> Void)?
    private var summary = BinlogSummary()
    private var gtids: [UInt32: String] = [:]
    private var checksum = false
    private var sawMagic = false
    /// Bytes not yet parsed: the event the last piece ended inside, then the new piece.
    private var pending: [UInt8] = []
    /// The file offset of `pending[0]`.
    private var base = 0
    /// An event failed to parse: nothing after it is read.
    private var stopped = false

    public init(name: String) { self.name = name }

    public func feed(_ piece: UnsafeRawBufferPointer) throws {
        guard !stopped else { return }
        pending.append(contentsOf: piece)
        if !sawMagic {
            guard pending.count >= 4 else { return }
            guard Array(pending[0..<4]) == BinlogReader.magic else {
                throw LogError.corruptSegment(name: name, reason: "not a binlog file (no \\xfebin magic at its start)")
            }
            sawMagic = true
        }
        var offset = base == 0 ? 4 : 0
        let bytes = pending
        while offset + 19 <= bytes.count {
            let size = Int(BinlogReader.u32(bytes, offset + 9))
            guard size >= 19 else {
                stopped = true
                throw LogError.corruptSegment(name: name, reason: "event at offset \(base + offset) declares \(size) bytes, less than its header")
            }
            if offset + size > bytes.count { break }   // the rest comes with the next piece (or the file is still being written)
            do { try event(bytes, at: offset, size: size) } catch { stopped = true; throw error }
            offset += size
        }
        if offset > 0 {
            try bytes.withUnsafeBytes { try complete?(UnsafeRawBufferPointer(rebasing: $0[0..<offset])) }
            pending.removeFirst(offset)
            base += offset
            summary.completeLength = Int64(base)
        }
    }

    /// What the file holds, once every piece was fed.
    public func finish() throws -> BinlogSummary {
        guard sawMagic else {
            throw LogError.corruptSegment(name: name, reason: "not a binlog file (no \\xfebin magic at its start)")
        }
        var s = summary
        s.checksummed = checksum
        s.gtidEnd = gtids.isEmpty ? s.gtidStart : BinlogReader.format(gtids)
        return s
    }

    private func event(_ bytes: [UInt8], at offset: Int, size: Int) throws {
        let u32 = BinlogReader.u32, u64 = BinlogReader.u64
        let at = base + offset
        let timestamp = u32(bytes, offset)
        let typeCode = bytes[offset + 4]
        let type = BinlogReader.EventType(rawValue: typeCode)
        if type == .formatDescription {
            // The checksum algorithm is the byte before the last 4 (its CRC) when the server
            // knows checksums; a body of at least 57 bytes + the post-header lengths.
            if size >= 19 + 57 + 5 {
                checksum = bytes[offset + size - 5] == 1
                let v = bytes[(offset + 21)..<(offset + 71)]
                summary.serverVersion = String(decoding: v.prefix { $0 != 0 }, as: UTF8.self)
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
                throw LogError.corruptSegment(name: name, reason: "event at offset \(at) fails its CRC-32 checksum")
            }
        }
        let bodyEnd = offset + size - (checksum ? 4 : 0)
        let body = offset + 19
        switch type {
        case .rotate where body + 8 <= bodyEnd:
            summary.nextFile = String(decoding: bytes[(body + 8)..<bodyEnd], as: UTF8.self)
            summary.closed = timestamp != 0 || summary.eventCount > 0
        case .stop:
            summary.closed = true
        case .query where body + 13 <= bodyEnd:
            // Post-header: thread id (4), exec time (4), database length (1), error code (2),
            // status variables length (2); then the status variables, the database, NUL, the text.
            let dbLength = Int(bytes[body + 8])
            let statusLength = Int(bytes[body + 11]) | Int(bytes[body + 12]) << 8
            let dbStart = body + 13 + statusLength
            let text = dbStart + dbLength + 1
            if text <= bodyEnd, let verb = BinlogReader.dmlVerb(bytes[text..<min(bodyEnd, text + 200)]) {
                summary.statementDML += 1
                if summary.statementDMLExample == nil {
                    let db = String(decoding: bytes[dbStart..<(dbStart + dbLength)], as: UTF8.self)
                    let snippet = String(decoding: bytes[text..<min(bodyEnd, text + 60)], as: UTF8.self)
                        .split(whereSeparator: \.isNewline).joined(separator: " ")
                    summary.statementDMLExample = "a \(verb) at offset \(at) (default database \(db.isEmpty ? "none" : db)): \(snippet)\(bodyEnd - text > 60 ? "…" : "")"
                }
            }
        case .gtidList where body + 4 <= bodyEnd:
            let count = Int(u32(bytes, body) & 0x0FFF_FFFF)
            var p = body + 4
            var list: [UInt32: String] = [:]
            for _ in 0..<count where p + 16 <= bodyEnd {
                let domain = u32(bytes, p), server = u32(bytes, p + 4), seq = u64(bytes, p + 8)
                list[domain] = "\(domain)-\(server)-\(seq)"
                p += 16
            }
            if summary.gtidStart == nil { summary.gtidStart = BinlogReader.format(list) }
            gtids.merge(list) { _, new in new }
        case .gtid where body + 12 <= bodyEnd:
            let server = u32(bytes, offset + 5)
            let seq = u64(bytes, body), domain = u32(bytes, body + 8)
            gtids[domain] = "\(domain)-\(server)-\(seq)"
        default:
            break
        }
        if timestamp != 0 {
            let date = Date(timeIntervalSince1970: TimeInterval(timestamp))
            if summary.firstEventAt == nil { summary.firstEventAt = date }
            summary.lastEventAt = date
        }
        if type != .rotate && type != .stop { summary.closed = false }
        summary.eventCount += 1
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
