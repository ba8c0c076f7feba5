import Foundation

/// Splits a stream into sections as it passes through, and refuses an incomplete one.
public protocol SectionScanner: AnyObject {
    /// Passes `chunk` downstream, recording section boundaries on the way.
    func consume(_ chunk: UnsafeRawBufferPointer) throws
    /// Ends the stream: checks that it is complete and returns the sections.
    func finish() throws -> [Section]
}

/// Splits a dump stream into sections as it passes through, without holding more than a line.
///
/// - `mysqldump` / `mariadb-dump`: a preamble, one `database` section per `-- Current Database:`
///   block (or, for a single-database dump, one section named by the `Database:` header line),
///   and the trailer of `SET …=@OLD_…` lines and `-- Dump completed`.
/// - `pg_dump`: a preamble (the schema), one `table` section per `-- Data for Name:` block,
///   `other` sections for anything between them, and the trailer (sequence values, indexes,
///   constraints: everything after the last table's data).
/// - `pg_dumpall`: a preamble (roles, tablespaces), one `database` section per
///   `-- Database "NAME" dump` block, and the trailer.
///
/// A section starts at the `--` line that opens its comment block, and a frame boundary is marked
/// there, so restoring one section decodes only its frames. Sections cover the stream exactly.
/// A stream whose last substantive line is not its format's completion marker is refused.
public final class DumpScanner: SectionScanner {
    public let format: DumpFormat
    private let sink: ByteSink

    public private(set) var offset: Int64 = 0
    private var sections: [Section] = []
    private var current: (name: String, kind: Section.Kind, offset: Int64, hasher: SHA256Hasher, content: SHA256Hasher?)
    private var normalizeRestrictKeys: Bool { format == .pgdump || format == .pgdumpall }
    private var carry: [UInt8] = []
    private var inLongLine = false
    private var held: [UInt8]? = nil
    private var pending: [[UInt8]] = []
    private var pendingBytes = 0
    private var pendingOffset: Int64 = 0
    private var markerSeen = false
    private var endsWithNewline = false
    private var openRestrictions = 0
    private var singleDatabaseName: String?
    private var sawDatabaseHeader = false
    /// mysqldump: the binlog coordinates the dump carries (`--master-data=2`, `--gtid`), if any.
    public private(set) var binlogPosition: BinlogPosition?
    private var dumpGTID: String?
    private static let longLine = 64 << 10

    public init(format: DumpFormat, sink: ByteSink) {
        precondition([.mysqldump, .pgdump, .pgdumpall].contains(format), "DumpScanner reads text dumps; see scanner(for:sink:)")
        self.format = format
        self.sink = sink
        current = ("preamble", .preamble, 0, SHA256Hasher(), nil)
        if normalizeRestrictKeys { current.content = SHA256Hasher() }
    }

    /// The scanner for `format`, or nil for `raw` (no sections, no check).
    public static func scanner(for format: DumpFormat, sink: ByteSink) -> SectionScanner? {
        switch format {
        case .raw: return nil
        case .pgdumpCustom: return PgCustomScanner(sink: sink)
        case .pgdumpTar: return PgTarScanner(sink: sink)
        case .mysqldump, .pgdump, .pgdumpall: return DumpScanner(format: format, sink: sink)
        }
    }

    /// Passes `chunk` downstream, recording section boundaries on the way.
    public func consume(_ chunk: UnsafeRawBufferPointer) throws {
        var start = 0
        let count = chunk.count
        while start < count {
            let rest = UnsafeRawBufferPointer(rebasing: chunk[start...])
            if let nl = memchr(rest.baseAddress!, 0x0A, rest.count) {
                let end = start + (UnsafeRawPointer(nl) - rest.baseAddress!) + 1
                let line = UnsafeRawBufferPointer(rebasing: chunk[start..<end])
                if inLongLine {
                    try emit(line, classification: .normal)
                    inLongLine = false
                } else if carry.isEmpty {
                    try handle(line: line)
                } else {
                    carry.append(contentsOf: line)
                    let whole = carry
                    carry = []
                    try whole.withUnsafeBytes { try handle(line: $0) }
                }
                start = end
            } else {
                if inLongLine {
                    try emit(rest, classification: .normal)
                } else {
                    carry.append(contentsOf: rest)
                    if carry.count > Self.longLine {
                        // Headers are short: a line this long is data. Pass it on as it comes.
                        let part = carry
                        carry = []
                        inLongLine = true
                        try part.withUnsafeBytes { try handle(line: $0) }
                    }
                }
                break
            }
        }
    }

    /// Ends the stream: checks the completion marker and returns the sections.
    public func finish() throws -> [Section] {
        if !carry.isEmpty {
            let last = carry
            carry = []
            try last.withUnsafeBytes { try handle(line: $0) }
        }
        if let h = held {
            held = nil
            try h.withUnsafeBytes { try emit($0, classification: .normal) }
        }
        // Complete means: the completion marker is the last substantive line, the last line ends
        // with a newline, and every `\restrict` (PostgreSQL 15.14+) was matched by `\unrestrict`.
        guard markerSeen, endsWithNewline, openRestrictions == 0 else {
            throw BackupError.incompleteDump(format: format, marker: Self.marker(format))
        }
        if pendingBytes > 0 {
            // The lines held back at the end are the trailer.
            closeCurrent(at: pendingOffset)
            let hasher = SHA256Hasher()
            for line in pending { hasher.update(line) }
            appendSection(name: "trailer", kind: .trailer, offset: pendingOffset, length: offset - pendingOffset, digest: hasher.finalize())
            pending = []
            pendingBytes = 0
        } else {
            closeCurrent(at: offset)
        }
        if format == .pgdump, let last = sections.last, last.kind == .other,
           sections.contains(where: { $0.kind == .table }) {
            // Everything after the last table's data (sequence values, indexes, constraints).
            sections[sections.count - 1].kind = .trailer
            sections[sections.count - 1].name = "trailer"
        }
        return sections
    }

    static func marker(_ format: DumpFormat) -> String {
        switch format {
        case .mysqldump: return "-- Dump completed"
        case .pgdump: return "-- PostgreSQL database dump complete"
        case .pgdumpall: return "-- PostgreSQL database cluster dump complete"
        case .raw, .pgdumpCustom, .pgdumpTar: return ""
        }
    }

    // MARK: - Lines

    private enum Classification {
        case blockStart
        case header(name: String, kind: Section.Kind)
        case trailerLike
        case normal
    }

    private func handle(line: UnsafeRawBufferPointer) throws {
        let cls: Classification
        if let first = line.first, first != 0x2D, first != 0x2F, first != 0x5C, first != 0x0A {
            // Data (INSERT, COPY rows): every header, trailer line and marker starts with '-',
            // '/' or '\', or is empty. Such a line is normal and ends any completion run.
            cls = .normal
            markerSeen = false
        } else {
            let prefix = String(decoding: line.prefix(512), as: UTF8.self)
            let text = prefix.hasSuffix("\n") ? String(prefix.dropLast()) : prefix
            cls = classify(text)
            trackMarker(text)
        }

        if let h = held {
            held = nil
            if case let .header(name, kind) = cls {
                try startSection(name: name, kind: kind)
                try h.withUnsafeBytes { try emit($0, classification: .normal) }
                try emit(line, classification: .normal)
                return
            }
            try h.withUnsafeBytes { try emit($0, classification: .normal) }
        }
        switch cls {
        case .blockStart:
            held = Array(line)
        case let .header(name, kind):
            try startSection(name: name, kind: kind)
            try emit(line, classification: .normal)
        case .trailerLike, .normal:
            try emit(line, classification: cls)
        }
    }

    private func classify(_ line: String) -> Classification {
        if line == "--" { return .blockStart }
        switch format {
        case .mysqldump:
            if current.kind == .preamble, line.hasPrefix("-- CHANGE ") || line.hasPrefix("-- SET GLOBAL gtid_") {
                if let (file, pos) = BinlogPosition.parseChangeMaster(line) {
                    binlogPosition = BinlogPosition(file: file, position: pos, gtid: dumpGTID ?? binlogPosition?.gtid)
                } else if let gtid = BinlogPosition.parseGTID(line) {
                    dumpGTID = gtid
                    binlogPosition?.gtid = gtid
                }
            }
            if line.hasPrefix("-- Current Database: ") {
                sawDatabaseHeader = true
                return .header(name: Self.backquoted(line.dropFirst(21)), kind: .database)
            }
            if line.hasPrefix("-- Host: "), let r = line.range(of: "Database: ") {
                let name = line[r.upperBound...].trimmingCharacters(in: .whitespaces)
                if !name.isEmpty { singleDatabaseName = name }
            }
            if !sawDatabaseHeader, current.kind == .preamble, let single = singleDatabaseName,
               line.hasPrefix("-- Table structure for table ") || line.hasPrefix("-- Dumping data for table ")
                || line.hasPrefix("-- Dumping routines") || line.hasPrefix("-- Dumping events") {
                sawDatabaseHeader = true
                return .header(name: single, kind: .database)
            }
            if current.kind == .database,
               line.isEmpty || (line.hasPrefix("/*") && line.contains("=@OLD_")) || line.hasPrefix("-- Dump completed") {
                return .trailerLike
            }
            return .normal
        case .pgdump:
            if line.hasPrefix("-- Data for Name: ") {
                return .header(name: Self.pgQualifiedName(line), kind: .table)
            }
            // Anything after a table's data ends it; `other` runs until the next table's data.
            if line.hasPrefix("-- Name: ") || line.hasPrefix("-- PostgreSQL database dump complete"),
               current.kind == .table {
                return .header(name: "other", kind: .other)
            }
            return .normal
        case .pgdumpall:
            if line.hasPrefix("-- Database \""), line.hasSuffix("\" dump") {
                return .header(name: String(line.dropFirst(13).dropLast(6)), kind: .database)
            }
            if line.hasPrefix("-- PostgreSQL database cluster dump complete") {
                return .header(name: "trailer", kind: .trailer)
            }
            return .normal
        case .raw, .pgdumpCustom, .pgdumpTar:
            return .normal
        }
    }

    private func trackMarker(_ line: String) {
        if line.hasPrefix("\\restrict ") { openRestrictions += 1 }
        if line.hasPrefix("\\unrestrict ") { openRestrictions -= 1 }
        if line.hasPrefix(Self.marker(format)) {
            markerSeen = true
        } else if !(line.isEmpty || line.hasPrefix("--") || line.hasPrefix("\\unrestrict ")) {
            markerSeen = false
        }
    }

    // MARK: - Bytes

    private func emit(_ bytes: UnsafeRawBufferPointer, classification: Classification) throws {
        if case .trailerLike = classification {
            if pendingBytes == 0 { pendingOffset = offset }
            pending.append(Array(bytes))
            pendingBytes += bytes.count
            if pendingBytes > 1 << 20 { flushPending() }
        } else {
            flushPending()
            current.hasher.update(bytes)
            if let content = current.content { Self.updateContent(content, bytes) }
        }
        try sink.write(bytes)
        offset += Int64(bytes.count)
        endsWithNewline = bytes.last == 0x0A
    }

    private func flushPending() {
        guard pendingBytes > 0 else { return }
        for line in pending {
            current.hasher.update(line)
            if let content = current.content { line.withUnsafeBytes { Self.updateContent(content, $0) } }
        }
        pending = []
        pendingBytes = 0
    }

    private func startSection(name: String, kind: Section.Kind) throws {
        flushPending()
        closeCurrent(at: offset)
        try sink.markBoundary()
        current = (name, kind, offset, SHA256Hasher(), normalizeRestrictKeys ? SHA256Hasher() : nil)
    }

    private func closeCurrent(at end: Int64) {
        appendSection(name: current.name, kind: current.kind, offset: current.offset,
                      length: end - current.offset, digest: current.hasher.finalize(), content: current.content?.finalize())
    }

    private func appendSection(name: String, kind: Section.Kind, offset: Int64, length: Int64, digest: SHA256Digest, content: SHA256Digest? = nil) {
        guard length > 0 else { return }
        sections.append(Section(name: name, kind: kind, offset: offset, length: length, sha256: digest, contentSHA256: content))
    }

    /// Feeds a line to a content digest, with the random key of `\restrict`/`\unrestrict` left out.
    /// Only whole lines that start with the command are rewritten; pieces of long lines pass as is.
    static func updateContent(_ hasher: SHA256Hasher, _ bytes: UnsafeRawBufferPointer) {
        if bytes.count > 1, bytes[0] == 0x5C {
            for command in restrictCommands where bytes.count > command.count && bytes.starts(with: command) {
                hasher.update(command)
                hasher.update([0x0A])
                return
            }
        }
        hasher.update(bytes)
    }

    private static let restrictCommands: [[UInt8]] = [Array("\\restrict ".utf8), Array("\\unrestrict ".utf8)]

    /// `\`db\`` → `db` (doubled backquotes are one).
    static func backquoted(_ s: Substring) -> String {
        var t = String(s)
        if t.hasPrefix("`") { t.removeFirst() }
        if t.hasSuffix("`") { t.removeLast() }
        return t.replacingOccurrences(of: "``", with: "`")
    }

    /// `-- Data for Name: accounts; Type: TABLE DATA; Schema: public; Owner: app` → `public.accounts`.
    static func pgQualifiedName(_ line: String) -> String {
        var name = "", schema = ""
        for part in line.dropFirst(3).components(separatedBy: "; ") {
            if part.hasPrefix("Data for Name: ") { name = String(part.dropFirst(15)) }
            if part.hasPrefix("Schema: ") { schema = String(part.dropFirst(8)) }
        }
        return schema.isEmpty || schema == "-" ? name : schema + "." + name
    }
}
