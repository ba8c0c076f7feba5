import Foundation

/// The data of `backstop report --html`: per source, its snapshots over time with their sizes
/// and verification state, the events, the snapshot `--before EVENT` would pick for each event,
/// and (given retention rules) which snapshots the plan keeps or removes. Read-only: built from
/// the catalog; rendering it is the CLI's job.
public struct TimelineReport: Codable, Sendable {
    public struct Mark: Codable, Sendable {
        public enum Verification: String, Codable, Sendable { case passed, failed, never }
        public var id: String
        public var kind: SnapshotKind
        public var startedAt: Date
        public var completedAt: Date
        public var bytesIn: Int64
        public var bytesStored: Int64
        public var bytesNew: Int64?
        public var verification: Verification
        /// The retention plan's decision (nil without retention rules) and its reasons.
        public var keep: Bool?
        public var reasons: [String]
    }

    /// The snapshot `restore --before EVENT --source SOURCE` would pick.
    public struct Pick: Codable, Sendable {
        public var event: String
        public var eventID: String
        public var snapshot: String
    }

    public struct Source: Codable, Sendable {
        public var name: String
        public var snapshots: [Mark]
        public var picks: [Pick]
    }

    public struct EventMark: Codable, Sendable {
        public var id: String
        public var name: String
        public var at: Date
        public var note: String?
    }

    public var repository: String
    public var generatedAt: Date
    public var since: Date?
    public var sources: [Source]
    public var events: [EventMark]
    /// Whether keep/remove marks come from a retention plan.
    public var hasPlan: Bool
}

extension Repository {
    /// The timeline of `sources` (all when empty) from `since` on; with `retention`, each
    /// snapshot's keep/remove decision as `prune` would make it at `now`.
    public func timelineReport(sources wanted: [String] = [], since: Date? = nil, retention: (RetentionPolicy, TimeZone)? = nil,
                               now: Date = Date()) throws -> TimelineReport {
        let verifications = try lastVerifications()
        let all = try snapshots()
        let plan = try retention.map { try retentionPlan($0.0, timeZone: $0.1, now: now) }
        let decisions = Dictionary((plan?.decisions ?? []).map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        let events = try self.events().filter { since == nil || $0.at >= since! }
        let names = wanted.isEmpty ? Array(Set(all.map(\.source))).sorted() : wanted
        var sources: [TimelineReport.Source] = []
        for name in names {
            let snapshots = all.filter { $0.source == name && (since == nil || $0.completedAt >= since!) }
                .sorted { $0.completedAt < $1.completedAt }
            let marks = snapshots.map { s in
                let v = verifications[s.id]
                let d = decisions[s.id]
                return TimelineReport.Mark(id: s.id.rawValue, kind: s.kind, startedAt: s.startedAt, completedAt: s.completedAt,
                                           bytesIn: s.bytesIn, bytesStored: s.bytesStored, bytesNew: s.bytesNew,
                                           verification: v.map { $0.passed ? .passed : .failed } ?? .never,
                                           keep: d?.keep, reasons: d?.reasons ?? [])
            }
            // The newest event of each name, as `--before NAME` reads it.
            var picks: [TimelineReport.Pick] = []
            let newestOfEachName = Dictionary(grouping: events, by: \.name).compactMap { $0.value.max { $0.at < $1.at } }
            for e in newestOfEachName.sorted(by: { $0.at < $1.at }) {
                let result = try selection(SelectionCriteria(point: .before(e.at, event: e), source: name))
                if let chosen = result.chosen {
                    picks.append(TimelineReport.Pick(event: e.name, eventID: e.id.rawValue, snapshot: chosen.id.rawValue))
                }
            }
            sources.append(TimelineReport.Source(name: name, snapshots: marks, picks: picks))
        }
        return TimelineReport(repository: location, generatedAt: now, since: since, sources: sources,
                              events: events.map { TimelineReport.EventMark(id: $0.id.rawValue, name: $0.name, at: $0.at, note: $0.note) },
                              hasPlan: plan != nil)
    }
}
