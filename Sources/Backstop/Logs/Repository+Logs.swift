import Foundation

/// What `pushLog` did with a file.
public enum LogPushOutcome: Sendable, Equatable {
    case archived(LogSegment)
    /// The same bytes were archived before: nothing to do (an idempotent re-push).
    case alreadyArchived(LogSegment)
    /// A partial segment of a file whose whole, closed version is already archived.
    case superseded(LogSegment)

    public var segment: LogSegment {
        switch self {
        case let .archived(s), let .alreadyArchived(s), let .superseded(s): return s
        }
    }
}

/// What `checkLogs` found.
public struct LogCheckReport: Sendable, Codable {
    public var source: String
    public var segments: Int
    public var problems: [String]
}

extension Repository {
    /// Whether `name` may name a log source or segment (one key component, plain characters).
    public static func isValidLogName(_ name: String) -> Bool {
        StorageKey.isValidComponent(name) && !name.hasPrefix(".")
            && name.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) || "._-".unicodeScalars.contains($0) }
    }

    /// Archives the log file at `path` into `logs/<source>/` (see `pushLog(input:…)`), reading
    /// it as a stream: a file of any size is archived in a few MiB of memory.
    @discardableResult
    public func pushLog(path: String, source: String, kind: LogKind, archivedAt: Date = Date()) throws -> LogPushOutcome {
        let input = try LogFileInput(path: path)
        return try pushLog(input: input, name: (path as NSString).lastPathComponent, source: source, kind: kind, archivedAt: archivedAt)
    }

    /// Archives one log file given as bytes (see `pushLog(input:…)`).
    @discardableResult
    public func pushLog(bytes: [UInt8], name: String, source: String, kind: LogKind, archivedAt: Date = Date()) throws -> LogPushOutcome {
        try pushLog(input: LogBytesInput(bytes: bytes, name: name), name: name, source: source, kind: kind, archivedAt: archivedAt)
    }

    /// Archives one log file: its bytes as one zstd frame, then its record (the commit), both
    /// create-only. A binlog file is read for its event times, positions and GTIDs (and every
    /// event checksum checked); one that is still open (no rotate or stop event at its end) is
    /// archived as a partial segment, up to its last whole event.
    ///
    /// Streaming: the file is read in pieces of 1 MiB, never whole. A binlog is read twice (its
    /// events first, for the record's name and fields; then hashed, compressed and stored in
    /// one pass, checked against the first read); a WAL segment once when it is new.
    ///
    /// Idempotent: the same bytes archived before are success (`alreadyArchived`); other bytes
    /// under the same name are `LogError.conflictingSegment` (65) and nothing is replaced.
    /// Archiving a whole file removes its partial segments, which it supersedes.
    ///
    /// Crash behaviour: the data object without its record is not a segment; the next push of
    /// the file replaces it. A crash after the record leaves partial segments that the next
    /// push of the same file (or `logs check`) removes.
    @discardableResult
    func pushLog(input: LogInput, name: String, source: String, kind: LogKind, archivedAt: Date) throws -> LogPushOutcome {
        guard Self.isValidLogName(name) else { throw LogError.badName(name) }
        guard Self.isValidLogName(source) else { throw LogError.badName(source) }
        var segment = LogSegment(source: source, kind: kind, name: name, partial: false, size: input.size,
                                 sha256: SHA256Digest(bytes: [UInt8](repeating: 0, count: 32)), storedSize: 0,
                                 archivedAt: Timestamp.truncatedToMillis(archivedAt))
        var digest: SHA256Digest?
        /// An open binlog: the parts of it archived before (the chain from its start), what the
        /// last one holds hashed again (to compare), and what is new hashed (to store).
        var parts: [LogSegment] = []
        var lastPartDigest: SHA256Digest?
        var newDigest: SHA256Digest?
        if kind == .mysqlBinlog {
            parts = Self.partChain(try logSegments(source: source).filter { $0.name == name && $0.partial })
            let covered = parts.last?.endOffset ?? 0
            let lastStart = parts.last.map { $0.offset ?? 0 } ?? 0
            let scanner = BinlogScanner(name: name)
            let hasher = SHA256Hasher(), lastHasher = SHA256Hasher(), newHasher = SHA256Hasher()
            var position: Int64 = 0
            scanner.complete = { bytes in
                hasher.update(bytes)
                let end = position + Int64(bytes.count)
                if end > lastStart && position < covered {
                    let from = Int(max(0, lastStart - position)), to = Int(min(Int64(bytes.count), covered - position))
                    lastHasher.update(UnsafeRawBufferPointer(rebasing: bytes[from..<to]))
                }
                if end > covered { newHasher.update(UnsafeRawBufferPointer(rebasing: bytes[Int(max(0, covered - position))...])) }
                position = end
            }
            try input.read(upTo: input.size) { try scanner.feed($0) }
            let summary = try scanner.finish()
            segment.partial = !summary.closed
            segment.firstEventAt = summary.firstEventAt
            segment.lastEventAt = summary.lastEventAt
            segment.startPosition = "\(name):4"
            segment.endPosition = "\(name):\(summary.completeLength)"
            segment.gtidStart = summary.gtidStart
            segment.gtidEnd = summary.gtidEnd
            segment.closed = summary.closed
            segment.nextFile = summary.nextFile
            if summary.statementDML > 0 {
                segment.statementEvents = summary.statementDML
                segment.statementExample = summary.statementDMLExample
            }
            segment.size = summary.completeLength
            digest = hasher.finalize()
            if !parts.isEmpty { lastPartDigest = lastHasher.finalize() }
            newDigest = newHasher.finalize()
        }
        if segment.partial, let whole = try storedLogSegment(source: source, object: name) {
            return .superseded(whole)
        }
        var start: Int64 = 0
        if segment.partial, let last = parts.last {
            // Only what the archived parts do not hold is stored: the file from their end on.
            guard segment.size >= last.endOffset, lastPartDigest == last.sha256 else {
                throw LogError.conflictingSegment(source: source, name: last.objectName, stored: last.sha256, given: lastPartDigest ?? digest!)
            }
            if segment.size == last.endOffset {
                try catalog.insert(last)
                return .alreadyArchived(last)
            }
            start = last.endOffset
            segment.offset = start
            segment.size -= start
            digest = newDigest
        }
        let object = segment.objectName
        if let stored = try storedLogSegment(source: source, object: object) {
            let given: SHA256Digest
            if let digest { given = digest } else {
                let hasher = SHA256Hasher()
                try input.read(upTo: segment.size) { hasher.update($0) }
                given = hasher.finalize()
            }
            guard stored.sha256 == given else {
                throw LogError.conflictingSegment(source: source, name: object, stored: stored.sha256, given: given)
            }
            try catalog.insert(stored)
            if !stored.partial && kind == .mysqlBinlog { try removePartials(of: stored) }
            return .alreadyArchived(stored)
        }
        // The data object is not a segment until its record exists: replace what an interrupted push left.
        let stored = try storeLogPayload(RepositoryLayout.logData(source, object), input: input, from: start, size: segment.size)
        if let digest, digest != stored.sha256 {
            throw LogError.unreadableFile(path: input.name, reason: "its bytes \(start)…\(start + segment.size) changed while it was being archived (a binlog file is only ever appended to: is another program writing it?); push it again")
        }
        segment.sha256 = stored.sha256
        segment.storedSize = stored.compressedSize
        let record = Array(try Timestamp.jsonEncoder().encode(segment)) + [0x0A]
        if try storage.put(RepositoryLayout.logRecord(source, object), record, mode: .createOnly) == .alreadyPresent {
            // Another pusher won the race: its record decides.
            guard let stored = try storedLogSegment(source: source, object: object), stored.sha256 == segment.sha256 else {
                let other = try storedLogSegment(source: source, object: object)
                throw LogError.conflictingSegment(source: source, name: object, stored: other?.sha256 ?? segment.sha256, given: segment.sha256)
            }
            return .alreadyArchived(stored)
        }
        try catalog.insert(segment)
        if !segment.partial && kind == .mysqlBinlog { try removePartials(of: segment) }
        return .archived(segment)
    }

    /// The chain of parts of one open file, from its start: each part starts where the one before
    /// ends (the longest such chain; a part that starts at 0 is a whole prefix, as earlier
    /// versions archived them).
    static func partChain(_ partials: [LogSegment]) -> [LogSegment] {
        var chain: [LogSegment] = []
        var end: Int64 = 0
        while let next = partials.filter({ ($0.offset ?? 0) == end && $0.endOffset > end }).max(by: { $0.endOffset < $1.endOffset }) {
            chain.append(next)
            end = next.endOffset
        }
        return chain
    }

    /// The bytes of the file `segment` belongs to, from its start to the segment's end: a whole
    /// segment's own, or the chain of parts up to a partial one (each checked against its record).
    public func logFileBytes(_ segment: LogSegment) throws -> [UInt8] {
        guard segment.partial else { return try readLogSegment(segment) }
        let chain = Self.partChain(try logSegments(source: segment.source).filter { $0.name == segment.name && $0.partial && $0.endOffset <= segment.endOffset })
        guard chain.last?.endOffset == segment.endOffset else {
            let reached = chain.last?.endOffset ?? 0
            throw LogError.corruptSegment(name: "logs/\(segment.source)/\(segment.objectName)", reason: "the part of \(segment.name) holding its bytes \(reached)… is missing (archived parts reach byte \(reached) only)")
        }
        var bytes: [UInt8] = []
        for part in chain { bytes += try readLogSegment(part) }
        return bytes
    }

    /// Where a segment's bytes become a stored object, in one streaming pass: the first `size`
    /// bytes of `input` hashed, compressed into one zstd frame (with its checksum) and written
    /// through the storage seam's streaming writer (which encrypts on an encrypted repository,
    /// as it does frames). Returns their SHA-256 and the compressed size.
    func storeLogPayload(_ key: StorageKey, input: LogInput, from start: Int64 = 0, size: Int64) throws -> (sha256: SHA256Digest, compressedSize: Int64) {
        let writer = try storage.makeWriter(for: key)
        do {
            let compressor = try ZstdStreamCompressor(level: config.compression.level, pledgedSize: size, downstream: writer)
            let hashing = HashingSink(compressor)
            try input.read(from: start, upTo: start + size) { try hashing.write($0) }
            guard hashing.count == size else {
                throw LogError.unreadableFile(path: input.name, reason: "it shrank from \(size) to \(hashing.count) bytes while it was being archived; push it again")
            }
            try hashing.finish()
            try writer.commit(mode: .replace)
            return (hashing.digest!, compressor.compressedCount)
        } catch {
            writer.abort()
            throw error
        }
    }

    /// One segment payload compressed in memory (one zstd frame with its checksum), as
    /// `storeLogPayload` streams it.
    func compressLogPayload(_ bytes: [UInt8]) throws -> [UInt8] {
        let compressor = try ZstdCompressor(level: config.compression.level)
        var out: [UInt8] = []
        let n = try bytes.withUnsafeBytes { try compressor.compressFrame($0, into: &out) }
        return Array(out[0..<n])
    }

    /// A segment's bytes, checked against its record's size and SHA-256 (65 when they differ).
    public func readLogSegment(_ segment: LogSegment) throws -> [UInt8] {
        let key = RepositoryLayout.logData(segment.source, segment.objectName)
        guard try storage.exists(key) else {
            throw LogError.corruptSegment(name: "logs/\(segment.source)/\(segment.objectName)", reason: "its data object \(key) is missing")
        }
        let stored = try storage.read(key)
        let bytes: [UInt8]
        do {
            bytes = try stored.withUnsafeBytes { try ZstdDecompressor().decompressFrame($0, expectedSize: Int(segment.size)) }
        } catch {
            throw LogError.corruptSegment(name: "logs/\(segment.source)/\(segment.objectName)", reason: "\(error)")
        }
        guard SHA256Hasher.digest(bytes) == segment.sha256 else {
            throw LogError.corruptSegment(name: "logs/\(segment.source)/\(segment.objectName)", reason: "its SHA-256 differs from the one recorded when it was archived")
        }
        return bytes
    }

    /// `logs get`: writes segment `name` (the whole file; for a binlog never archived whole, its
    /// longest partial segment) to `path`, atomically (a temporary file renamed into place).
    @discardableResult
    public func getLog(source: String, name: String, to path: String) throws -> LogSegment {
        guard let segment = try logSegments(source: source).filter({ $0.name == name }).max(by: { ($0.partial ? 0 : 1, $0.endOffset) < ($1.partial ? 0 : 1, $1.endOffset) }) else {
            throw LogError.notFound(source: source, name: name)
        }
        let bytes = try logFileBytes(segment)
        let temp = path + ".backstop-\(getpid())"
        do {
            let sink = try FileSink(path: temp)
            try bytes.withUnsafeBytes { try sink.write($0) }
            try sink.finish()
            try FileSystem.rename(temp, path)
        } catch {
            unlink(temp)
            throw LogError.unreadableFile(path: path, reason: "cannot write it: \(error)")
        }
        return segment
    }

    /// The names below `logs/`: every log source archived here.
    public func logSources() throws -> [String] {
        try storage.children(of: RepositoryLayout.logs).filter(Self.isValidLogName)
    }

    /// The archived segments of `source`, in log order (binlogs by file number; partial segments
    /// before the whole file), the catalog reconciled with a listing of `logs/<source>/` first.
    public func logSegments(source: String) throws -> [LogSegment] {
        guard Self.isValidLogName(source) else { throw LogError.badName(source) }
        let keys = try storage.list(under: RepositoryLayout.logSource(source))
        let objects = Set(keys.compactMap { key -> String? in
            let n = key.name
            return key.components.count == 3 && n.hasSuffix(".json") ? String(n.dropLast(5)) : nil
        })
        var known = try catalog.logSegments(source: source)
        try catalog.removeLogSegments(source: source, objects: known.keys.filter { !objects.contains($0) })
        for object in objects where known[object] == nil {
            guard let s = try storedLogSegment(source: source, object: object) else { continue }
            try? catalog.insert(s)
            known[object] = s
        }
        return known.filter { objects.contains($0.key) }.values.sorted(by: Self.logOrder)
    }

    static func logOrder(_ a: LogSegment, _ b: LogSegment) -> Bool {
        if a.name != b.name {
            if let x = BinlogReader.sequence(of: a.name), let y = BinlogReader.sequence(of: b.name), x.base == y.base { return x.number < y.number }
            return a.name < b.name
        }
        if a.partial != b.partial { return a.partial }
        return a.endOffset < b.endOffset
    }

    /// A segment's record as stored, or nil when it has none.
    func storedLogSegment(source: String, object: String) throws -> LogSegment? {
        let key = RepositoryLayout.logRecord(source, object)
        guard try storage.exists(key) else { return nil }
        do {
            return try Timestamp.jsonDecoder().decode(LogSegment.self, from: Data(storage.read(key)))
        } catch where ExitStatus.isReadFailure(error) {
            throw error
        } catch {
            throw LogError.corruptSegment(name: "logs/\(source)/\(object)", reason: "its record \(key) cannot be read: \(error)")
        }
    }

    /// Removes the partial segments `newer` supersedes: all of its file's for a whole file, the
    /// shorter ones for a partial (record first: without it, the data object is no segment).
    func removePartials(of newer: LogSegment) throws {
        let whole = newer
        let prefix = whole.name + ".partial."
        let keys = try storage.list(under: RepositoryLayout.logSource(whole.source))
        let partials = Set(keys.map(\.name).filter { $0.hasPrefix(prefix) }.map { ($0 as NSString).deletingPathExtension })
            .filter { !newer.partial || (Int64($0.dropFirst(prefix.count)) ?? Int64.max) < newer.endOffset }
        for object in partials.sorted() {
            try storage.delete(RepositoryLayout.logRecord(whole.source, object))
            try storage.delete(RepositoryLayout.logData(whole.source, object))
        }
        try catalog.removeLogSegments(source: whole.source, objects: Array(partials))
    }

    /// `logs check`: reads every segment of `source` (digest checked, binlogs parsed again with
    /// their event checksums) and looks for gaps in the chain: a missing file number, a rotate
    /// naming a file that is not archived, a partial segment followed by later files.
    public func checkLogs(source: String) throws -> LogCheckReport {
        let segments = try logSegments(source: source)
        guard !segments.isEmpty else {
            throw LogError.noSegments(source: source, hint: "nothing under logs/\(source)/; sources here: \((try? logSources())?.joined(separator: ", ") ?? "none")")
        }
        var problems: [String] = []
        for s in segments {
            do {
                let bytes = try readLogSegment(s)
                // A later part of an open file is no binlog on its own: read with its file below.
                if s.kind == .mysqlBinlog && (s.offset ?? 0) == 0 { _ = try BinlogReader.summarize(bytes, name: "logs/\(source)/\(s.objectName)") }
            } catch let e as LogError {
                problems.append("\(e)")
            }
        }
        if segments.first?.kind == .mysqlBinlog {
            // Each open file archived in parts: the parts chain from its start, and read together
            // they are a binlog.
            for s in Self.chainView(segments) where s.partial && (s.offset ?? 0) > 0 {
                do {
                    _ = try BinlogReader.summarize(try logFileBytes(s), name: "logs/\(source)/\(s.name) (its parts up to byte \(s.endOffset))")
                } catch let e as LogError {
                    problems.append("\(e)")
                }
            }
        }
        if segments.first?.kind == .mysqlBinlog { problems += Self.binlogGaps(Self.chainView(segments)) }
        return LogCheckReport(source: source, segments: segments.count, problems: problems)
    }

    /// One segment per binlog file: the whole file if archived, else its longest partial.
    static func chainView(_ segments: [LogSegment]) -> [LogSegment] {
        var byName: [String: LogSegment] = [:]
        for s in segments {
            if let o = byName[s.name], !o.partial || (s.partial && o.endOffset >= s.endOffset) { continue }
            byName[s.name] = s
        }
        return byName.values.sorted(by: logOrder)
    }

    /// Gaps between consecutive binlog files of a chain view.
    static func binlogGaps(_ chain: [LogSegment]) -> [String] {
        var problems: [String] = []
        for (a, b) in zip(chain, chain.dropFirst()) {
            if let gap = gapBetween(a, b) { problems.append(gap) }
        }
        return problems
    }

    static func gapBetween(_ a: LogSegment, _ b: LogSegment) -> String? {
        let last = a.lastEventAt.map { " (its last event at \(Timestamp.format($0)))" } ?? ""
        if a.partial || a.closed == false {
            return "\(a.name) is archived only up to byte \(a.endOffset)\(last), but later files follow: the rest of it is missing (archive the whole file: backstop logs push)"
        }
        if let next = a.nextFile, next != b.name {
            return "\(a.name)\(last) rotates to \(next), which is not archived (the next archived file is \(b.name))"
        }
        if let x = BinlogReader.sequence(of: a.name), let y = BinlogReader.sequence(of: b.name), x.base == y.base, y.number != x.number + 1 {
            return "missing \(x.base).\(String(format: "%06d", x.number + 1))\(y.number > x.number + 2 ? "…\(String(format: "%06d", y.number - 1))" : "") between \(a.name)\(last) and \(b.name)"
        }
        return nil
    }
}

/// A log file being archived, read from its start as often as needed.
protocol LogInput {
    /// The file's name or path, for messages.
    var name: String { get }
    /// Its size when it was opened (a file still being written is read up to there).
    var size: Int64 { get }
    /// Passes its bytes from `start` to `limit` (fewer if it has fewer) to `body`, in pieces of
    /// at most 1 MiB.
    func read(from start: Int64, upTo limit: Int64, _ body: (UnsafeRawBufferPointer) throws -> Void) throws
}

extension LogInput {
    func read(upTo limit: Int64, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        try read(from: 0, upTo: limit, body)
    }
}

/// A log file on disk, read with `pread` into one reused 1 MiB buffer.
final class LogFileInput: LogInput {
    let name: String
    let size: Int64
    private let fd: Int32

    init(path: String) throws {
        name = path
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw LogError.unreadableFile(path: path, reason: String(cString: strerror(errno))) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = errno
            close(fd)
            throw LogError.unreadableFile(path: path, reason: String(cString: strerror(e)))
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw LogError.unreadableFile(path: path, reason: "not a regular file")
        }
        size = Int64(st.st_size)
    }

    deinit { close(fd) }

    func read(from start: Int64, upTo limit: Int64, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        var buffer = [UInt8](repeating: 0, count: BinlogScanner.chunkSize)
        var offset = start
        while offset < limit {
            let want = Int(min(Int64(buffer.count), limit - offset))
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, want, off_t(offset)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw LogError.unreadableFile(path: name, reason: String(cString: strerror(errno)))
            }
            if n == 0 { return }
            try buffer.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            offset += Int64(n)
        }
    }
}

/// A log file given as bytes.
struct LogBytesInput: LogInput {
    let bytes: [UInt8]
    let name: String
    var size: Int64 { Int64(bytes.count) }

    func read(from start: Int64, upTo limit: Int64, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let end = Int(min(limit, size))
        try bytes.withUnsafeBytes { all in
            var offset = Int(min(start, size))
            while offset < end {
                let n = min(BinlogScanner.chunkSize, end - offset)
                try body(UnsafeRawBufferPointer(rebasing: all[offset..<(offset + n)]))
                offset += n
            }
        }
    }
}
