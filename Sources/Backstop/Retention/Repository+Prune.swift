import Foundation

extension Repository {
    /// The retention plan for every snapshot in the catalog, at `now`.
    public func retentionPlan(_ policy: RetentionPolicy, timeZone: TimeZone, now: Date) throws -> RetentionPlan {
        let verifications = try catalog.lastVerifications()
        let candidates = try catalog.snapshots().map { RetentionCandidate(snapshot: $0, lastVerification: verifications[$0.id]) }
        return RetentionPlanner.plan(candidates: candidates, events: try events(), policy: policy, timeZone: timeZone, now: now)
    }

    /// Removes the plan's `remove` snapshots. The caller holds the writer lease.
    ///
    /// Per snapshot: its manifest is deleted first (the snapshot is then incomplete, no longer
    /// committed), the catalog row is dropped, then its other objects and its verification
    /// history. A crash at any point leaves a whole snapshot or an incomplete one, which the next
    /// writer removes, and a catalog row the next open drops: an interrupted prune is finished by
    /// the next one, and no snapshot is ever half-deleted while still committed.
    @discardableResult
    public func prune(_ plan: RetentionPlan) throws -> [SnapshotID] {
        var removed: [SnapshotID] = []
        for d in plan.remove {
            guard try storage.exists(RepositoryLayout.manifest(d.id)) else { continue }
            try catalog.setMeta("snapshots.fingerprint", "")
            FaultInjection.point("prune-before-uncommit")
            try storage.delete(RepositoryLayout.manifest(d.id))
            FaultInjection.point("prune-after-uncommit")
            try catalog.remove(d.id)
            FaultInjection.point("prune-after-catalog")
            for key in try storage.list(under: RepositoryLayout.snapshot(d.id)) { try storage.delete(key) }
            try removeVerifications(of: d.id)
            FaultInjection.point("prune-after-delete")
            removed.append(d.id)
        }
        return removed
    }
}
