import Foundation

extension Repository {
    /// The retention plan for every snapshot in the catalog, at `now`.
    public func retentionPlan(_ policy: RetentionPolicy, timeZone: TimeZone, now: Date) throws -> RetentionPlan {
        let verifications = try catalog.lastVerifications()
        let candidates = try catalog.snapshots().map { RetentionCandidate(snapshot: $0, lastVerification: verifications[$0.id]) }
        return RetentionPlanner.plan(candidates: candidates, events: try events(), policy: policy, timeZone: timeZone, now: now)
    }

    /// Removes the plan's `remove` snapshots. The caller holds the writer lock.
    ///
    /// Per snapshot: its folder is renamed into `tmp/` (it leaves `snapshots/` atomically), the
    /// catalog row is dropped, then the files are deleted. A crash at any point leaves a folder
    /// in `tmp/`, which the next writer removes, and a catalog row the next open drops: an
    /// interrupted prune is finished by the next one, and no snapshot is ever half-deleted.
    @discardableResult
    public func prune(_ plan: RetentionPlan) throws -> [SnapshotID] {
        var removed: [SnapshotID] = []
        for d in plan.remove {
            let folder = snapshotDirectory(d.id)
            guard FileSystem.exists(folder) else { continue }
            let doomed = tmpDirectory + "/pruning-" + d.id.rawValue
            try catalog.setMeta("snapshots.fingerprint", "")
            FaultInjection.point("prune-before-rename")
            try FileSystem.rename(folder, doomed)
            try FileSystem.sync(snapshotsDirectory)
            FaultInjection.point("prune-after-rename")
            try catalog.remove(d.id)
            FaultInjection.point("prune-after-catalog")
            try FileSystem.removeTree(doomed)
            FaultInjection.point("prune-after-delete")
            removed.append(d.id)
        }
        return removed
    }
}
