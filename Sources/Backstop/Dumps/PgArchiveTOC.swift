import Foundation

/// Reads the header and table of contents of a pg_dump archive (custom `-Fc` or tar `-Ft`) as
/// its bytes arrive, holding no more than one string of interest (and, when rewriting, one entry).
///
/// Layout (PostgreSQL's `pg_backup_archiver.c`, `WriteHead`/`WriteToc`): `PGDMP`, version major,
/// minor and revision, the size of an integer and of a file offset, the format (1 custom, 3 tar),
/// the compression (an integer before archive version 1.15, a byte from it), the dump's time (seven
/// integers), the database name, the server's and pg_dump's versions, the number of entries, then
/// per entry: dump ID, whether it has data, table OID, OID, tag, description ("TABLE DATA", …),
/// section, definition, drop and copy statements, schema, tablespace, table access method
/// (1.14+), relation kind (1.16+), owner, a legacy "with OIDs" flag, the dependencies (a list of
/// strings ended by a null string), and the format's data pointer: a flagged file offset (custom)
/// or the tar member that holds the entry's data. An integer is a sign byte and `intSize`
/// little-endian bytes; a string is an integer length (-1 for null) and its bytes.
final class PgArchiveTOC {
    enum Container: UInt8 {
        case custom = 1
        case tar = 3
    }

    /// One table-of-contents entry, as much of it as a scanner needs.
    struct Entry: Sendable {
        var dumpID: Int64 = 0
        var desc = ""
        var tag = ""
        var namespace = ""
        /// Custom format: the data offset flag (1 not set, 2 set, 3 no data).
        var dataState: UInt8 = 0
        /// Tar format: the member holding the entry's data, or "".
        var filename = ""

        /// Whether the archive carries a data block (custom) or member (tar) for this entry.
        var hasData: Bool { dataState != 0 ? dataState != PgArchiveTOC.noData : !filename.isEmpty }
        var isTableData: Bool { desc == "TABLE DATA" }
        /// `schema.table` for table data, as the plain-format scanner names table sections.
        var sectionName: String { namespace.isEmpty ? tag : namespace + "." + tag }
    }

    static let noData: UInt8 = 3
    static let positionNotSet: UInt8 = 1
    /// Archive versions read: 1.12 (PostgreSQL 9.0) to 1.16 (PostgreSQL 17).
    static let minorVersions = 12...16

    let container: Container
    let format: DumpFormat
    private(set) var version = ""
    private(set) var minorVersion = 0
    private(set) var intSize = 0
    private(set) var offSize = 0
    private(set) var isComplete = false
    /// The entries that have data, in archive order.
    private(set) var dataEntries: [Entry] = []
    private(set) var declaredEntries: Int64 = 0
    private(set) var entriesRead: Int64 = 0

    /// When set, bytes are passed to `output` instead of being dropped, each entry held back
    /// until it is whole and offered to `rewrite` (with its bytes) first.
    private let output: ((UnsafeRawBufferPointer) throws -> Void)?
    private let rewrite: ((Entry, inout [UInt8], PgArchiveTOC) -> Void)?

    private enum Slot { case skip, tocCount, dumpID, hadDumper, tag, desc, namespace, dependency, filename }
    private enum Field {
        case head
        case byte
        case int(Slot)
        case string(Slot)
        case offset
    }

    private var fields: [Field] = [.head]
    private var next = 0
    private var scratch: [UInt8] = []
    private var stringLeft: Int64 = 0
    private var stringSlot = Slot.skip
    private var stringValue: [UInt8] = []
    private var entry = Entry()
    private var inEntry = false
    private var entryBytes: [UInt8] = []
    private var entryFields: [Field] = []
    private var countRead = false
    private static let keptStringLimit = 4096

    init(container: Container, format: DumpFormat,
         output: ((UnsafeRawBufferPointer) throws -> Void)? = nil,
         rewrite: ((Entry, inout [UInt8], PgArchiveTOC) -> Void)? = nil) {
        self.container = container
        self.format = format
        self.output = output
        self.rewrite = rewrite
    }

    /// Where the parser stands, for error messages.
    var position: String {
        if !countRead { return "inside the archive header" }
        return "inside the table of contents (entry \(entriesRead + 1) of \(declaredEntries))"
    }

    /// Reads from `bytes` until the table of contents is complete; returns how many bytes it used.
    func consume(_ bytes: UnsafeRawBufferPointer) throws -> Int {
        var i = 0
        let count = bytes.count
        while i < count && !isComplete {
            let start = i
            if stringLeft > 0 {
                let take = Int(min(stringLeft, Int64(count - i)))
                if stringSlot != .skip, stringValue.count < Self.keptStringLimit {
                    stringValue.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[i..<(i + min(take, Self.keptStringLimit - stringValue.count))]))
                }
                i += take
                stringLeft -= Int64(take)
                try pass(UnsafeRawBufferPointer(rebasing: bytes[start..<i]))
                if stringLeft == 0 { try stringDone(isNull: false) }
                continue
            }
            let need = size(of: fields[next]) - scratch.count
            let take = min(need, count - i)
            scratch.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[i..<(i + take)]))
            i += take
            try pass(UnsafeRawBufferPointer(rebasing: bytes[start..<i]))
            if take == need { try fieldDone() }
        }
        return i
    }

    private func pass(_ bytes: UnsafeRawBufferPointer) throws {
        guard let output else { return }
        if inEntry && rewrite != nil { entryBytes.append(contentsOf: bytes) } else { try output(bytes) }
    }

    private func size(of field: Field) -> Int {
        switch field {
        case .head: return 11
        case .byte: return 1
        case .int, .string: return 1 + intSize
        case .offset: return 1 + offSize
        }
    }

    /// An integer as pg_dump writes it: a sign byte, then little-endian bytes; read in place.
    static func integer(_ bytes: UnsafeRawBufferPointer, at start: Int, size: Int) -> Int64 {
        var value: Int64 = 0
        var k = size - 1
        while k >= 1 {
            value = value << 8 | Int64(bytes[start + k])
            k -= 1
        }
        return bytes[start] == 0 ? value : -value
    }

    /// An integer as pg_dump writes it: a sign byte, then `intSize` little-endian bytes.
    static func integer(_ bytes: some Collection<UInt8>) -> Int64 {
        var value: Int64 = 0
        var shift: Int64 = 0
        for b in bytes.dropFirst() {
            if shift < 63 { value |= Int64(b) << shift }
            shift += 8
        }
        return bytes.first == 0 ? value : -value
    }

    private func fail(_ reason: String) -> BackupError {
        BackupError.damagedArchive(format: format, reason: reason)
    }

    private func fieldDone() throws {
        let field = fields[next]
        next += 1
        let value = scratch
        scratch = []
        switch field {
        case .head:
            try readHead(value)
        case .byte:
            break
        case let .int(slot):
            let v = Self.integer(value)
            switch slot {
            case .tocCount:
                guard v >= 0 else { throw fail("the table of contents declares \(v) entries") }
                declaredEntries = v
                countRead = true
                if v == 0 { isComplete = true } else { startEntry() }
            case .dumpID:
                guard v > 0 else { throw fail("entry \(entriesRead + 1) of the table of contents has dump ID \(v)") }
                entry.dumpID = v
            default:
                break
            }
        case let .string(slot):
            let length = Self.integer(value)
            guard length >= -1, length < 1 << 40 else {
                throw fail("a string of length \(length) \(position)")
            }
            stringSlot = slot
            stringValue = []
            if length <= 0 {
                try stringDone(isNull: length < 0)
            } else {
                stringLeft = length
            }
            return
        case .offset:
            let flag = value[0]
            guard flag >= 1 && flag <= 3 else { throw fail("entry \(entriesRead + 1) has data offset flag \(flag)") }
            entry.dataState = flag
        }
        if next == fields.count { try fieldsDone() }
    }

    private func stringDone(isNull: Bool) throws {
        let text = String(decoding: stringValue, as: UTF8.self)
        switch stringSlot {
        case .tag: entry.tag = text
        case .desc: entry.desc = text
        case .namespace: entry.namespace = text
        case .filename: entry.filename = text
        case .dependency where !isNull:
            // The list of dependencies goes on until a null string.
            fields.insert(.string(.dependency), at: next)
        default: break
        }
        stringValue = []
        stringSlot = .skip
        if next == fields.count { try fieldsDone() }
    }

    private func fieldsDone() throws {
        if inEntry {
            if entry.hasData { dataEntries.append(entry) }
            if let rewrite, let output {
                rewrite(entry, &entryBytes, self)
                inEntry = false
                try entryBytes.withUnsafeBytes { try output($0) }
                entryBytes = []
            }
            entriesRead += 1
            if entriesRead == declaredEntries { inEntry = false; isComplete = true } else { startEntry() }
        }
    }

    private func startEntry() {
        entry = Entry()
        inEntry = true
        fields = entryFields
        next = 0
    }

    private func readHead(_ head: [UInt8]) throws {
        guard head.starts(with: Array("PGDMP".utf8)) else { throw fail("it does not start with PGDMP") }
        let (major, minor, rev) = (head[5], head[6], head[7])
        version = "\(major).\(minor).\(rev)"
        guard major == 1, Self.minorVersions.contains(Int(minor)) else {
            throw BackupError.unsupportedArchive(format: format, reason: "archive version \(major).\(minor) (this backstop reads 1.\(Self.minorVersions.lowerBound) to 1.\(Self.minorVersions.upperBound), as written by pg_dump 9.0 and later)")
        }
        intSize = Int(head[8])
        offSize = Int(head[9])
        guard (1...8).contains(intSize), (1...16).contains(offSize) else {
            throw fail("the header gives integer size \(intSize) and offset size \(offSize)")
        }
        guard head[10] == container.rawValue else {
            throw fail("the header names archive format \(head[10]), not \(container.rawValue)")
        }
        minorVersion = Int(minor)
        var rest: [Field] = [minorVersion >= 15 ? .byte : .int(.skip)]       // compression
        rest += Array(repeating: .int(.skip), count: 7)                       // the dump's time
        rest += [.string(.skip), .string(.skip), .string(.skip), .int(.tocCount)]
        fields = rest
        next = 0
        entryFields = [.int(.dumpID), .int(.hadDumper), .string(.skip), .string(.skip), .string(.tag), .string(.desc),
                       .int(.skip), .string(.skip), .string(.skip), .string(.skip), .string(.namespace), .string(.skip)]
        if minorVersion >= 14 { entryFields.append(.string(.skip)) }               // table access method
        if minorVersion >= 16 { entryFields.append(.int(.skip)) }                  // relation kind
        entryFields += [.string(.skip), .string(.skip), .string(.dependency)]      // owner, with OIDs, dependencies
        entryFields.append(container == .custom ? .offset : .string(.filename))
    }

    /// In an entry's bytes, where its "has data" integer starts (right after the dump ID).
    var hadDumperRange: Range<Int> { (1 + intSize)..<(2 + 2 * intSize) }
}
