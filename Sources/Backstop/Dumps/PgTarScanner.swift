import Foundation

/// Splits a pg_dump tar-format archive (`pg_dump -Ft`) into sections as it passes through, and
/// refuses one that is incomplete.
///
/// pg_dump writes ustar members in this order: `toc.dat` (the archive header and table of
/// contents, whose entries name the member holding their data), one `NNNN.dat` member per table
/// (its `COPY` data), the large objects (`blob_OID.dat` members and their `blobs.toc`), then
/// `restore.sql` and the end-of-archive marker (two zero blocks).
///
/// Sections: the `preamble` (the `toc.dat` member), a `table` section named `schema.table` per
/// table's member, `other` sections for large objects, and the `trailer` (`restore.sql` and the
/// end marker). A frame boundary is marked at each section's first header. A table section's
/// `contentSHA256` covers the member's data only (its header carries the dump's time).
///
/// Complete means: every header's checksum matches, `toc.dat` comes first and parses to its end,
/// every entry that names a data member has that member, and the end marker is present (only
/// zero bytes may follow it).
final class PgTarScanner: SectionScanner {
    private let sink: ByteSink
    private let toc = PgArchiveTOC(container: .tar, format: .pgdumpTar)
    private var offset: Int64 = 0
    private var current = PgArchiveSections()
    private var expected: [String: PgArchiveTOC.Entry] = [:]
    private var seen = Set<String>()
    private var members = 0

    private enum State { case header, data(left: Int64, padding: Int), padding(Int), end }
    private var state = State.header
    private var header: [UInt8] = []
    private var memberName = ""
    private var readingTOC = false
    private var zeroBlocks = 0

    init(sink: ByteSink) {
        self.sink = sink
    }

    private func fail(_ reason: String) -> BackupError {
        BackupError.damagedArchive(format: .pgdumpTar, reason: reason)
    }

    func consume(_ chunk: UnsafeRawBufferPointer) throws {
        let count = chunk.count
        var i = 0
        var flushed = 0
        func flush(to end: Int) throws {
            guard end > flushed else { return }
            let part = UnsafeRawBufferPointer(rebasing: chunk[flushed..<end])
            current.update(part)
            try sink.write(part)
            flushed = end
        }
        while i < count {
            switch state {
            case .header:
                // A header is held back until it is whole: it decides which section it opens.
                try flush(to: i)
                let take = min(512 - header.count, count - i)
                header.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[i..<(i + take)]))
                i += take
                flushed = i
                if header.count == 512 {
                    let start = offset + Int64(i) - 512
                    try headerDone(at: start)
                }
            case let .data(left, padding):
                let take = Int(min(left, Int64(count - i)))
                if readingTOC {
                    let used = try toc.consume(UnsafeRawBufferPointer(rebasing: chunk[i..<(i + take)]))
                    if used < take {
                        throw fail("toc.dat holds \(left - Int64(used)) bytes after its table of contents")
                    }
                }
                i += take
                if Int64(take) == left {
                    if readingTOC {
                        guard toc.isComplete else { throw fail("toc.dat ends \(toc.position)") }
                        readingTOC = false
                        for e in toc.dataEntries { expected[member(of: e)] = e }
                    }
                    try flush(to: i)
                    current.endContent()   // the padding after the data is not content
                    state = padding > 0 ? .padding(padding) : .header
                } else {
                    state = .data(left: left - Int64(take), padding: padding)
                }
            case let .padding(left):
                let take = min(left, count - i)
                i += take
                state = take == left ? .header : .padding(left - take)
            case .end:
                // Only zero bytes may follow the end-of-archive marker (tar pads to its record size).
                let rest = UnsafeRawBufferPointer(rebasing: chunk[i...])
                if let bad = rest.firstIndex(where: { $0 != 0 }) {
                    throw fail("non-zero bytes follow the end-of-archive marker at offset \(offset + Int64(i + bad))")
                }
                i = count
            }
        }
        try flush(to: count)
        offset += Int64(count)
    }

    private func headerDone(at start: Int64) throws {
        let block = header
        header = []
        if block.allSatisfy({ $0 == 0 }) {
            if zeroBlocks == 0, current.kind != .trailer { try startSection("trailer", .trailer, at: start) }
            zeroBlocks += 1
            try write(block)
            if zeroBlocks == 2 { state = .end }
            return
        }
        guard zeroBlocks == 0 else { throw fail("a member follows a single zero block at offset \(start)") }
        guard Self.checksumMatches(block) else { throw fail("the tar header at offset \(start) has a wrong checksum") }
        let name = Self.name(block)
        guard let size = Self.size(block) else { throw fail("the tar header of \(name) has an unreadable size") }
        guard block[156] == 0x30 || block[156] == 0 else {
            throw fail("member \(name) has tar type '\(Character(Unicode.Scalar(block[156])))'; pg_dump writes regular files only")
        }
        members += 1
        memberName = name
        if members == 1 {
            guard name == "toc.dat" else { throw fail("its first member is \(name), not toc.dat") }
            readingTOC = true
            try write(block)
        } else if name == "toc.dat" {
            throw fail("it holds toc.dat twice")
        } else if let entry = expected[name] {
            guard seen.insert(name).inserted else { throw fail("it holds \(name) twice") }
            if entry.isTableData {
                try startSection(entry.sectionName, .table, at: start)
                try write(block)
                current.content = SHA256Hasher()
            } else {
                if current.kind != .other { try startSection(entry.tag, .other, at: start) }
                try write(block)
            }
        } else if name == "restore.sql" {
            try startSection("trailer", .trailer, at: start)
            try write(block)
        } else {
            // Large objects' own members (blob_OID.dat) and anything else go with their neighbours.
            if current.kind != .other { try startSection("large objects", .other, at: start) }
            try write(block)
        }
        let padding = Int((512 - size % 512) % 512)
        state = size > 0 ? .data(left: size, padding: padding) : .header
        if size == 0, readingTOC { throw fail("toc.dat is empty") }
    }

    private func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { p in
            current.update(p)
            try sink.write(p)
        }
    }

    private func startSection(_ name: String, _ kind: Section.Kind, at start: Int64) throws {
        current.start(name, kind, at: start)
        try sink.markBoundary()
    }

    func finish() throws -> [Section] {
        switch state {
        case .end:
            break
        case .header where zeroBlocks == 1:
            throw fail("it ends after \(offset) bytes, inside the end-of-archive marker")
        case .header where header.isEmpty:
            if members == 0 { throw fail("the stream is empty") }
            if readingTOC || !toc.isComplete { throw fail("toc.dat ends \(toc.position)") }
            let missing = toc.dataEntries.filter { !seen.contains(member(of: $0)) }
            if let first = missing.first {
                throw fail("it ends after \(offset) bytes, before member \(member(of: first)) (the data of \(first.sectionName))")
            }
            throw fail("it ends after \(offset) bytes, without the end-of-archive marker")
        case .header:
            throw fail("it ends after \(offset) bytes, inside a tar header")
        case .data, .padding:
            throw fail("it ends after \(offset) bytes, inside member \(memberName)"
                + (readingTOC ? " (\(toc.position))" : ""))
        }
        let missing = toc.dataEntries.filter { !seen.contains(member(of: $0)) }
        if let first = missing.first {
            throw fail("member \(member(of: first)) (the data of \(first.sectionName)) is missing"
                + (missing.count > 1 ? ", and \(missing.count - 1) more" : ""))
        }
        current.close(at: offset)
        return current.closed
    }

    /// The member that holds an entry's data. Large objects are listed in `blobs.toc` (archive
    /// version 1.16 and later: `blobs_ID.toc`, one per BLOBS entry), whatever the entry's file name.
    private func member(of entry: PgArchiveTOC.Entry) -> String {
        guard entry.desc == "BLOBS" else { return entry.filename }
        return toc.minorVersion >= 16 ? "blobs_\(entry.dumpID).toc" : "blobs.toc"
    }

    // MARK: - ustar headers

    static func checksumMatches(_ h: [UInt8]) -> Bool {
        guard let stored = octal(h[148..<156]) else { return false }
        var unsigned: Int64 = 0, signed: Int64 = 0
        for (i, b) in h.enumerated() {
            let v: UInt8 = (148..<156).contains(i) ? 0x20 : b
            unsigned += Int64(v)
            signed += Int64(Int8(bitPattern: v))
        }
        return stored == unsigned || stored == signed
    }

    static func name(_ h: [UInt8]) -> String {
        func field(_ r: Range<Int>) -> String {
            let bytes = h[r].prefix { $0 != 0 }
            return String(decoding: bytes, as: UTF8.self)
        }
        let name = field(0..<100)
        let isUstar = h[257..<262].elementsEqual("ustar".utf8)
        let prefix = isUstar ? field(345..<500) : ""
        return prefix.isEmpty ? name : prefix + "/" + name
    }

    /// The size field: octal digits, or base-256 (high bit set) for members of 8 GiB and more.
    static func size(_ h: [UInt8]) -> Int64? {
        let field = h[124..<136]
        if field.first! & 0x80 != 0 {
            var v: Int64 = Int64(field.first! & 0x7F)
            for b in field.dropFirst() {
                guard v < Int64.max >> 8 else { return nil }
                v = v << 8 | Int64(b)
            }
            return v
        }
        return octal(field)
    }

    static func octal(_ field: ArraySlice<UInt8>) -> Int64? {
        var v: Int64 = 0
        var digits = 0
        for b in field {
            if b == 0 || b == 0x20 { if digits > 0 { break } else { continue } }
            guard (0x30...0x37).contains(b), v < Int64.max >> 3 else { return nil }
            v = v << 3 | Int64(b - 0x30)
            digits += 1
        }
        return digits > 0 ? v : nil
    }
}
