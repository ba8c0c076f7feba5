import Foundation

/// Keep or remove, for one snapshot, with every rule that decided.
public struct RetentionDecision: Codable, Sendable, Equatable {
    public var id: SnapshotID
    public var source: String
    public var startedAt: Date
    public var keep: Bool
    /// Every rule that keeps it; for a removed snapshot, why nothing did.
    public var reasons: [String]
}

/// A retention plan: a decision for every snapshot. Computed without I/O; `prune` carries it out.
public struct RetentionPlan: Codable, Sendable {
    public var now: Date
    public var timeZone: String
    public var decisions: [RetentionDecision]

    public var keep: [RetentionDecision] { decisions.filter(\.keep) }
    public var remove: [RetentionDecision] { decisions.filter { !$0.keep } }

    /// One line per snapshot: `keep    ID  source  reasons`.
    public var text: String {
        decisions.map { d in
            "\(d.keep ? "keep  " : "remove")  \(d.id)  \(d.source)  \(d.reasons.joined(separator: "; "))"
        }.joined(separator: "\n")
    }
}

/// What retention needs to know about a snapshot.
public struct RetentionCandidate: Sendable {
    public var snapshot: CatalogSnapshot
    public var lastVerification: VerificationRecord?

    public init(snapshot: CatalogSnapshot, lastVerification: VerificationRecord?) {
        self.snapshot = snapshot
        self.lastVerification = lastVerification
    }

    /// Completed with warnings (files skipped or changed): not a full copy.
    var isPartial: Bool { snapshot.warningCount > 0 }
    var isKnownBad: Bool { lastVerification?.passed == false }
}
