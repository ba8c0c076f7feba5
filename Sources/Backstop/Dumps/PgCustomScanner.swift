import Foundation

/// Splits a pg_dump custom-format archive (`pg_dump -Fc`) into sections as it passes through,
/// and refuses one that is incomplete.
///
/// Sections: the `preamble` (header and table of contents), then one section per data block, in
/// stream order: a `table` section named `schema.table` for each table's data, an `other`
/// section for large objects. A data block is its type byte (1 data, 3 large objects), the
/// entry's dump ID, then length-prefixed chunks ending with a zero length (large objects: an OID
/// before each object's chunks, and a zero OID after the last). A frame boundary is marked where
/// each block starts, so restoring one table decodes only its frames and the preamble's. A
/// section's `contentSHA256` covers its chunks without the block header, so the digest does not
/// change when another object's dump ID shifts.
///
/// Complete means: the header and table of contents parse, every entry that has data (offset
/// flag "set" or "not set") has exactly one block, the stream ends right after a whole block,
/// and nothing follows the last one. Memory: the table of contents' data entries and one integer.
final class PgCustomScanner: SectionScanner {
    private let sink: ByteSink
    private let toc = PgArchiveTOC(container: .custom, format: .pgdumpCustom)
    private var offset: Int64 = 0
    private var current = PgArchiveSections()
    private var expected: [Int64: PgArchiveTOC.Entry] = [:]
    private var seen = Set<Int64>()

    private enum State { case toc, blockType, blockID, chunkLength, chunkBody(Int64), objectID }
    private var state = State.toc
    private var isLargeObjects = false
    private var block = PgArchiveTOC.Entry()
    private var scratch: [UInt8] = []

    init(sink: ByteSink) {
        self.sink = sink
    }

    private func fail(_ reason: String) -> BackupError {
        BackupError.damagedArchive(format: .pgdumpCustom, reason: reason)
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
            case .toc:
                i += try toc.consume(UnsafeRawBufferPointer(rebasing: chunk[i...]))
                if toc.isComplete {
                    for e in toc.dataEntries {
                        guard expected.updateValue(e, forKey: e.dumpID) == nil else {
                            throw fail("the table of contents lists dump ID \(e.dumpID) twice")
                        }
                    }
                    state = .blockType
                }
            case .blockType:
                guard seen.count < expected.count else {
                    throw fail("\(count - i) or more bytes follow the last data block at offset \(offset + Int64(i))")
                }
                try flush(to: i)
                try startSection(at: offset + Int64(i))
                let type = chunk[i]
                i += 1
                guard type == 1 || type == 3 else {
                    throw fail("a data block at offset \(offset + Int64(i) - 1) has type \(type) (1 or 3 expected)")
                }
                isLargeObjects = type == 3
                state = .blockID
            case .blockID, .chunkLength, .objectID:
                let size = 1 + toc.intSize
                if scratch.isEmpty, count - i >= size {
                    // The common case: the whole integer is in this chunk.
                    let value = PgArchiveTOC.integer(chunk, at: i, size: size)
                    i += size
                    if try integerDone(value) { try flush(to: i); current.content = SHA256Hasher() }
                    break
                }
                let need = size - scratch.count
                let take = min(need, count - i)
                scratch.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[i..<(i + take)]))
                i += take
                guard take == need else { break }
                let value = PgArchiveTOC.integer(scratch)
                scratch = []
                if try integerDone(value) { try flush(to: i); current.content = SHA256Hasher() }
            case let .chunkBody(left):
                let take = Int(min(left, Int64(count - i)))
                i += take
                state = left == Int64(take) ? .chunkLength : .chunkBody(left - Int64(take))
            }
        }
        try flush(to: count)
        offset += Int64(count)
    }

    /// Takes the integer just read; true when the block's content (digested apart) starts here.
    private func integerDone(_ value: Int64) throws -> Bool {
        switch state {
        case .blockID:
            guard let entry = expected[value] else {
                throw fail("a data block names dump ID \(value), which has no data in the table of contents")
            }
            guard !seen.contains(value) else { throw fail("the data of \(entry.sectionName) appears twice") }
            block = entry
            current.name = entry.isTableData ? entry.sectionName : entry.tag
            current.kind = entry.isTableData ? .table : .other
            state = isLargeObjects ? .objectID : .chunkLength
            // The content digest starts after the block header.
            return true
        case .chunkLength:
            guard value >= 0 else { throw fail("the data of \(block.sectionName) has a chunk of length \(value)") }
            if value > 0 {
                state = .chunkBody(value)
            } else if isLargeObjects {
                state = .objectID
            } else {
                seen.insert(block.dumpID)
                state = .blockType
            }
        case .objectID:
            if value == 0 {
                seen.insert(block.dumpID)
                state = .blockType
            } else {
                state = .chunkLength
            }
        default:
            preconditionFailure("integerDone in state \(state)")
        }
        return false
    }

    private func startSection(at start: Int64) throws {
        current.start("", .other, at: start)
        try sink.markBoundary()
    }

    func finish() throws -> [Section] {
        guard toc.isComplete else {
            throw fail(offset == 0 ? "the stream is empty" : "it ends \(toc.position), after \(offset) bytes")
        }
        switch state {
        case .blockType:
            break
        case .blockID:
            throw fail("it ends inside a data block header, after \(offset) bytes")
        default:
            throw fail("it ends inside the data of \(block.isTableData ? "table " : "")\(block.sectionName), after \(offset) bytes")
        }
        let missing = toc.dataEntries.filter { !seen.contains($0.dumpID) }
        if let first = missing.first {
            throw fail("it ends after \(offset) bytes, before the data of \(first.sectionName)"
                + (missing.count > 1 ? " and \(missing.count - 1) more entries" : ""))
        }
        current.close(at: offset)
        return current.closed
    }
}
