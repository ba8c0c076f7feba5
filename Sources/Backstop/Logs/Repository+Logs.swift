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

    /// Archives the log file at `path` into `logs/<source>/` (see `pushLog(bytes:…)`).
    @discardableResult
    public func pushLog(path: String, source: String, kind: LogKind) throws -> LogPushOutcome {
        let bytes: [UInt8]
        do {
            bytes = try FileSystem.readFile(path)
        } catch {
            throw LogError.unreadableFile(path: path, reason: "\(error)")
        }
        return try pushLog(bytes: bytes, name: (path as NSString).lastPathComponent, source: source, kind: kind)
    }

    /// Archives one log file: its bytes as one zstd frame, then its record (the commit), both
    /// create-only. A binlog file is read for its event times, positions and GTIDs (and every
    /// event checksum checked); one that is still open (no rotate or stop event at its end) is
    /// archived as a partial segment, up to its last whole event.
    ///
    /// Idempotent: the same bytes archived before are success (`alreadyArchived`); other bytes
    /// under the same name are `LogError.conflictingSegment` (65) and nothing is replaced.
    /// Archiving a whole file removes its partial segments, which it supersedes.
    ///
    /// Crash behaviour: the data object without its record is not a segment; the next push of
    /// the file replaces it. A crash after the record leaves partial segments that the next
    /// push of the same file (or `logs check`) removes.
    @discardableResult
    public func pushLog(bytes input: [UInt8], name: String, source: String, kind: LogKind, archivedAt: Date = Date()) throws -> LogPushOutcome {
        guard Self.isValidLogName(name) else { throw LogError.badName(name) }
        guard Self.isValidLogName(source) else { throw LogError.badName(source) }
        var bytes = input
        var segment = LogSegment(source: source, kind: kind, name: name, partial: false, size: 0,
                                 sha256: SHA256Hasher.digest(bytes), storedSize: 0, archivedAt: Timestamp.truncatedToMillis(archivedAt))
        if kind == .mysqlBinlog {
            let summary = try BinlogReader.summarize(bytes, name: name)
            if !summary.closed {
                segment.partial = true
                if Int64(bytes.count) != summary.completeLength { bytes = Array(bytes[0..<Int(summary.completeLength)]) }
            }
            segment.firstEventAt = summary.firstEventAt
            segment.lastEventAt = summary.lastEventAt
            segment.startPosition = "\(name):4"
            segment.endPosition = "\(name):\(summary.completeLength)"
            segment.gtidStart = summary.gtidStart
            segment.gtidEnd = summary.gtidEnd
            segment.closed = summary.closed
            segment.nextFile = summary.nextFile
        }
        segment.size = Int64(bytes.count)
        segment.sha256 = SHA256Hasher.digest(bytes)
        let object = segment.objectName
        if segment.partial, let whole = try storedLogSegment(source: source, object: name) {
            return .superseded(whole)
        }
        if let stored = try storedLogSegment(source: source, object: object) {
            guard stored.sha256 == segment.sha256 else {
                throw LogError.conflictingSegment(source: source, name: object, stored: stored.sha256, given: segment.sha256)
            }
            try catalog.insert(stored)
            if !stored.partial { try removePartials(of: stored) }
            return .alreadyArchived(stored)
        }
        let payload = try compressLogPayload(bytes)
        segment.storedSize = Int64(payload.count)
        // The data object is not a segment until its record exists: replace what an interrupted push left.
        try storeLogPayload(RepositoryLayout.logData(source, object), payload)
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
        try removePartials(of: segment)
        return .archived(segment)
    }

    /// Where a segment's bytes become a stored object: the one place, so that encryption at rest
    /// (issue #14) wraps segments as it wraps frames. Today: one zstd frame with its checksum.
    func compressLogPayload(_ bytes: [UInt8]) throws -> [UInt8] {
        let compressor = try ZstdCompressor(level: config.compression.level)
        var out: [UInt8] = []
        let n = try bytes.withUnsafeBytes { try compressor.compressFrame($0, into: &out) }
        return Array(out[0..<n])
    }

    func storeLogPayload(_ key: StorageKey, _ payload: [UInt8]) throws {
        try storage.put(key, payload, mode: .replace)
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
        guard let segment = try logSegments(source: source).filter({ $0.name == name }).max(by: { ($0.partial ? 0 : 1, $0.size) < ($1.partial ? 0 : 1, $1.size) }) else {
            throw LogError.notFound(source: source, name: name)
        }
        let bytes = try readLogSegment(segment)
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
        return a.size < b.size
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
            .filter { !newer.partial || (Int64($0.dropFirst(prefix.count)) ?? Int64.max) < newer.size }
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
                if s.kind == .mysqlBinlog { _ = try BinlogReader.summarize(bytes, name: "logs/\(source)/\(s.objectName)") }
            } catch let e as LogError {
                problems.append("\(e)")
            }
        }
        if segments.first?.kind == .mysqlBinlog { problems += Self.binlogGaps(Self.chainView(segments)) }
        return LogCheckReport(source: source, segments: segments.count, problems: problems)
    }

    /// One segment per binlog file: the whole file if archived, else its longest partial.
    static func chainView(_ segments: [LogSegment]) -> [LogSegment] {
        var byName: [String: LogSegment] = [:]
        for s in segments {
            if let o = byName[s.name], !o.partial || (s.partial && o.size >= s.size) { continue }
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
            return "\(a.name) is archived only up to byte \(a.size)\(last), but later files follow: the rest of it is missing (archive the whole file: backstop logs push)"
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
