import Foundation

/// A set of snapshots by their fields (for `copy --all`): every cataloged snapshot that matches
/// all the given conditions, oldest first. Unlike `SelectionCriteria`, which chooses one
/// snapshot for a point in time, a filter chooses them all.
public struct SnapshotFilter: Sendable {
    public var source: String?
    public var kind: SnapshotKind?
    public var host: String?
    /// A snapshot must carry every one of these tags.
    public var tags: [String] = []
    /// Completed at or after this time.
    public var completedFrom: Date?
    /// Completed strictly before this time.
    public var completedBefore: Date?
    /// Completed at or before this time.
    public var completedAtOrBefore: Date?
    /// Only snapshots whose last verification passed.
    public var verifiedOnly = false

    public init(source: String? = nil, kind: SnapshotKind? = nil, host: String? = nil, tags: [String] = [],
                completedFrom: Date? = nil, completedBefore: Date? = nil, completedAtOrBefore: Date? = nil, verifiedOnly: Bool = false) {
        self.source = source
        self.kind = kind
        self.host = host
        self.tags = tags
        self.completedFrom = completedFrom
        self.completedBefore = completedBefore
        self.completedAtOrBefore = completedAtOrBefore
        self.verifiedOnly = verifiedOnly
    }

    public func matches(_ s: CatalogSnapshot, lastVerification: VerificationRecord?) -> Bool {
        if let source, s.source != source { return false }
        if let kind, s.kind != kind { return false }
        if let host, s.host != host { return false }
        if !Set(tags).isSubset(of: Set(s.tags)) { return false }
        if let completedFrom, s.completedAt < completedFrom { return false }
        if let completedBefore, s.completedAt >= completedBefore { return false }
        if let completedAtOrBefore, s.completedAt > completedAtOrBefore { return false }
        if verifiedOnly && lastVerification?.passed != true { return false }
        return true
    }
}

extension Repository {
    /// The cataloged snapshots `filter` matches, oldest completed first.
    public func snapshots(matching filter: SnapshotFilter) throws -> [SnapshotID] {
        let verifications = filter.verifiedOnly ? try lastVerifications() : [:]
        return try snapshots().filter { filter.matches($0, lastVerification: verifications[$0.id]) }.map(\.id)
    }
}
