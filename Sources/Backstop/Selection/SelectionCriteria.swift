import Foundation

/// Which point in time a selection is about.
public enum SelectionPoint: Sendable, Equatable {
    /// The newest snapshot with completedAt ≤ the time.
    case at(Date)
    /// The newest snapshot with completedAt < the time; `event` names where the time came from.
    case before(Date, event: Event?)
    /// The newest snapshot.
    case latest
}

/// What a selection asks for: a point in time and filters.
public struct SelectionCriteria: Sendable {
    public var point: SelectionPoint
    public var source: String?
    public var kind: SnapshotKind?
    /// A snapshot must carry every one of these tags.
    public var tags: [String]
    public var host: String?
    /// Accept only snapshots whose last verification passed.
    public var verifiedOnly: Bool

    public init(point: SelectionPoint, source: String? = nil, kind: SnapshotKind? = nil, tags: [String] = [],
                host: String? = nil, verifiedOnly: Bool = false) {
        self.point = point
        self.source = source
        self.kind = kind
        self.tags = tags
        self.host = host
        self.verifiedOnly = verifiedOnly
    }

    /// One sentence saying what is selected, times in UTC.
    public var description: String {
        var s: String
        switch point {
        case let .at(t): s = "the newest snapshot that completed at or before \(Timestamp.format(t))"
        case let .before(t, event):
            s = "the newest snapshot that completed before \(Timestamp.format(t))"
            if let event { s += " (event \"\(event.name)\" \(event.id))" }
        case .latest: s = "the newest snapshot"
        }
        var filters: [String] = []
        if let source { filters.append("source \(source)") }
        if let kind { filters.append("kind \(kind.rawValue)") }
        if !tags.isEmpty { filters.append("tags \(tags.joined(separator: ", "))") }
        if let host { filters.append("host \(host)") }
        if verifiedOnly { filters.append("verified") }
        if !filters.isEmpty { s += ", " + filters.joined(separator: ", ") }
        return s
    }
}

/// Why a selection chose nothing, with the whole explanation.
public enum SelectionError: Error, CustomStringConvertible, ExitStatusProviding {
    /// Nothing matched; the description includes the explanation.
    case noMatch(SelectionResult)
    /// Nothing matched, and the explanation was already shown.
    case noMatchExplained(SelectionResult)

    public var description: String {
        switch self {
        case let .noMatch(result):
            return "no snapshot matches: \(result.criteria.description). Backstop never falls back to the latest snapshot.\n"
                + result.explanation
        case let .noMatchExplained(result):
            return "no snapshot matches: \(result.criteria.description) (see the explanation above). Backstop never falls back to the latest snapshot."
        }
    }

    public var exitStatus: ExitStatus { .noMatch }
}
