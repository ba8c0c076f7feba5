import Foundation

/// A candidate's verdict in a selection's explanation.
public struct CandidateVerdict: Codable, Sendable, Equatable {
    public enum Verdict: String, Codable, Sendable {
        case taken
        case passedOver = "passed over"
        case fallback
    }

    public var id: SnapshotID
    public var source: String
    public var kind: SnapshotKind
    public var startedAt: Date
    public var completedAt: Date
    public var verdict: Verdict
    public var reason: String
}

/// The outcome of a selection: the chosen snapshot, the older candidates a `--fallback` restore
/// would try next, and a verdict for every candidate considered.
public struct SelectionResult: Sendable {
    public var criteria: SelectionCriteria
    public var chosen: CatalogSnapshot?
    /// Older acceptable candidates, newest first.
    public var fallbacks: [CatalogSnapshot]
    public var verdicts: [CandidateVerdict]
    /// Counts and notes: snapshots not considered, newer ones left out of the listing.
    public var notes: [String]

    /// Every considered candidate, one line each, then the notes.
    public var explanation: String {
        var lines = ["selecting \(criteria.description):"]
        for v in verdicts {
            let label = v.verdict.rawValue.padding(toLength: 11, withPad: " ", startingAt: 0)
            lines.append("  \(label)  \(v.id)  \(v.source)  completed \(Timestamp.format(v.completedAt)): \(v.reason)")
        }
        if verdicts.isEmpty { lines.append("  (no candidates)") }
        for n in notes { lines.append("  \(n)") }
        return lines.joined(separator: "\n")
    }
}
