import Foundation

/// Keep or remove, for one archived log segment, with the reason.
public struct LogSegmentDecision: Codable, Sendable, Equatable {
    public var source: String
    public var segment: String
    public var keep: Bool
    public var reason: String
}

/// Which log segments retention keeps: computed without I/O (`Repository.logRetentionPlan`
/// gathers its inputs, `pruneLogs` carries it out).
///
/// MariaDB binlogs: every segment from the position of the oldest kept dump onwards (what each
/// kept dump needs to reach its successor, and the newest one to reach now), plus every segment
/// with an event within `keepLogs` of `now`. Without `keepLogs`, or without any kept dump that
/// records a position in the chain, nothing is removed. WAL segments are
/// kept (base backups with WAL positions are not planned yet) unless older than `keepLogs`
/// and archived before the oldest kept snapshot.
public enum LogRetentionPlanner {
    public static func plan(segments: [LogSegment], keptPositions: [BinlogPosition], oldestKept: Date?,
                            keepLogs: TimeInterval?, now: Date) -> [LogSegmentDecision] {
        let floor: (base: String, number: Int)? = keptPositions.compactMap { BinlogReader.sequence(of: $0.file) }
            .min { $0.number < $1.number }
        // The parts of one open file are kept or removed together: by the file's newest event.
        var newestOfFile: [String: Date] = [:]
        for s in segments { newestOfFile[s.name] = max(newestOfFile[s.name] ?? .distantPast, s.lastEventAt ?? s.archivedAt) }
        return segments.map { s in
            func decide(_ keep: Bool, _ reason: String) -> LogSegmentDecision {
                LogSegmentDecision(source: s.source, segment: s.objectName, keep: keep, reason: reason)
            }
            let newest = newestOfFile[s.name] ?? s.lastEventAt ?? s.archivedAt
            let floorSequence = BinlogReader.sequence(of: s.name).flatMap { seq in floor.map { seq.base == $0.base && seq.number >= $0.number } }
            if s.kind == .mysqlBinlog, floorSequence == true, let floor {
                return decide(true, "needed by a kept dump to reach its successor (replay starts at \(floor.base).\(String(format: "%06d", floor.number)))")
            }
            if let keepLogs, newest >= now.addingTimeInterval(-keepLogs) {
                return decide(true, "keep-logs: an event within \(Int(keepLogs / 3600))h of now")
            }
            switch s.kind {
            case .mysqlBinlog:
                guard let floor, floorSequence != nil else {
                    return decide(true, keepLogs == nil ? "no keep-logs rule and no kept dump records a binlog position" : "no kept dump records a position in this chain")
                }
                if keepLogs == nil { return decide(true, "older than every kept dump's position, but no keep-logs rule is set") }
                return decide(false, "before the oldest kept dump's position (\(floor.base).\(String(format: "%06d", floor.number))) and no event within keep-logs")
            case .pgWAL:
                if keepLogs != nil, let oldestKept, s.archivedAt < oldestKept {
                    return decide(false, "archived before the oldest kept snapshot and no later than keep-logs")
                }
                return decide(true, "WAL is kept while a kept snapshot may need it")
            }
        }
    }
}

extension Repository {
    /// The decision for every archived segment of every log source, given the snapshot plan
    /// (the dumps it keeps, and their binlog positions).
    public func logRetentionPlan(_ plan: RetentionPlan, policy: RetentionPolicy, now: Date) throws -> [LogSegmentDecision] {
        var positions: [BinlogPosition] = []
        var sealed = false
        for d in plan.keep {
            guard let m = try? manifest(d.id) else { continue }
            if m.isSealed && m.kind == .logical { sealed = true }
            if let p = m.binlogPosition { positions.append(p) }
        }
        // A kept dump whose position is encrypted (no identity here) may need any binlog: none
        // is removed for a position then (keep-logs and WAL rules still apply).
        if sealed { positions = [] }
        let oldestKept = plan.keep.map(\.startedAt).min()
        return try logSources().flatMap { source in
            LogRetentionPlanner.plan(segments: try logSegments(source: source), keptPositions: positions, oldestKept: oldestKept,
                                     keepLogs: policy.keepLogs, now: now)
        }
    }

    /// Removes the segments `decisions` remove (record first, then the data). The caller holds
    /// the writer lease. Crash behaviour: a data object without its record is no segment, and
    /// the next push of that name replaces it.
    @discardableResult
    public func pruneLogs(_ decisions: [LogSegmentDecision]) throws -> Int {
        var removed = 0
        for d in decisions where !d.keep {
            try storage.delete(RepositoryLayout.logRecord(d.source, d.segment))
            try storage.delete(RepositoryLayout.logData(d.source, d.segment))
            try catalog.removeLogSegments(source: d.source, objects: [d.segment])
            removed += 1
        }
        return removed
    }
}
