import Foundation

extension Repository {
    /// The retention plan for every snapshot in the catalog, at `now`.
    public func retentionPlan(_ policy: RetentionPolicy, timeZone: TimeZone, now: Date) throws -> RetentionPlan {
        let verifications = try catalog.lastVerifications()
        let candidates = try catalog.snapshots().map { RetentionCandidate(snapshot: $0, lastVerification: verifications[$0.id]) }
        return RetentionPlanner.plan(candidates: candidates, events: try events(), policy: policy, timeZone: timeZone, now: now)
    }

    /// Removes the plan's `remove` snapshots, then sweeps the frames no snapshot uses any more.
    /// The caller holds the writer lease.
    ///
    /// Per snapshot: its manifest is deleted first (the snapshot is then incomplete, no longer
    /// committed), the catalog row is dropped with its frames counted out, then its other
    /// objects and its verification history. A crash at any point leaves a whole snapshot or an
    /// incomplete one, which the next writer removes, and a catalog row the next open drops: an
    /// interrupted prune is finished by the next one, and no snapshot is ever half-deleted while
    /// still committed. Then `sweepFrames`.
    @discardableResult
    /// `progress` hears how many of the plan's removals are done, of how many, and which is next.
    public func prune(_ plan: RetentionPlan, warn: (String) -> Void = { _ in },
                      progress: ((_ done: Int, _ total: Int, _ current: SnapshotID) -> Void)? = nil) throws -> PruneResult {
        var result = PruneResult()
        var ownBytes: Int64 = 0
        for (n, d) in plan.remove.enumerated() {
            progress?(n, plan.remove.count, d.id)
            guard try storage.exists(RepositoryLayout.manifest(d.id)) else { continue }
            let frames = try? FrameList.decode(storage.read(RepositoryLayout.snapshotFile(d.id, "frames.tsv")), snapshot: d.id)
            try catalog.setMeta("snapshots.fingerprint", "")
            FaultInjection.point("prune-before-uncommit")
            try storage.delete(RepositoryLayout.manifest(d.id))
            FaultInjection.point("prune-after-uncommit")
            try catalog.removeIndexed(d.id, frames)
            FaultInjection.point("prune-after-catalog")
            for key in try storage.list(under: RepositoryLayout.snapshot(d.id)) {
                ownBytes += (try? storage.size(of: key)).flatMap { $0 } ?? 0
                try storage.delete(key)
            }
            try removeVerifications(of: d.id)
            FaultInjection.point("prune-after-delete")
            result.removed.append(d.id)
        }
        let swept = try sweepFrames(warn: warn)
        result.framesSwept = swept.frames
        result.bytesFreed = swept.bytes + ownBytes
        return result
    }

    /// Removes every frame object that no committed snapshot lists (mark and sweep: the mark is
    /// the catalog's frame index, brought up to date from every snapshot's `frames.tsv` first).
    /// The caller holds the writer lease, so no backup is writing frames meanwhile (a backup
    /// holds the lease too); frames a killed backup left are swept here.
    ///
    /// Refused, with a warning and nothing removed, while a snapshot's manifest or frame list
    /// cannot be read: its frames cannot be told from unused ones.
    ///
    /// Crash behaviour: deleting an unused frame is always safe; an interrupted sweep leaves
    /// unused frames, which the next one removes.
    public func sweepFrames(warn: (String) -> Void) throws -> (frames: Int, bytes: Int64) {
        let report = try Self.reconcile(catalog, storage: storage, force: true)
        if !report.unreadable.isEmpty {
            warn("unused frames were not removed: the manifest of \(report.unreadable.map(\.id).joined(separator: ", ")) cannot be read, so the frames it uses are unknown; run `backstop verify` on it, and remove it by hand if it is lost")
            return (0, 0)
        }
        let unindexed = try catalog.unindexedSnapshots()
        if !unindexed.isEmpty {
            warn("unused frames were not removed: the frame list of \(unindexed.map(\.rawValue).joined(separator: ", ")) cannot be read; run `backstop verify` on it")
            return (0, 0)
        }
        var swept = 0
        var bytes: Int64 = 0
        for folder in try storage.children(of: RepositoryLayout.frames) {
            let keys = try storage.list(under: RepositoryLayout.frames.appending(folder))
            let ids = keys.compactMap { key in SHA256Digest(hex: key.name).map { (key, $0) } }
            let used = try catalog.usedFrames(among: ids.map(\.1))
            for (key, id) in ids where !used.contains(id) {
                try Interruption.check()
                bytes += (try? storage.size(of: key)).flatMap { $0 } ?? 0
                try storage.delete(key)
                swept += 1
                FaultInjection.point("gc-after-delete")
            }
        }
        try catalog.dropUnusedFrames()
        return (swept, bytes)
    }

    /// What removing the plan's `remove` snapshots would free: the frames only they use, and
    /// their own files. For `prune --dry-run`.
    public func bytesFreed(by plan: RetentionPlan) throws -> (frames: Int, bytes: Int64) {
        var lists: [SnapshotID: [FrameRef]] = [:]
        var own: Int64 = 0
        for d in plan.remove {
            guard let m = try? manifest(d.id) else { continue }
            own += m.files.reduce(0) { $0 + $1.size }
            lists[d.id] = try? SnapshotReader(repository: self, manifest: m).frameList()
        }
        let frames = try catalog.bytesOnlyUsed(by: lists)
        return (frames.frames, frames.bytes + own)
    }
}

/// What a prune removed.
public struct PruneResult: Sendable, Encodable {
    public init() {}
    public var removed: [SnapshotID] = []
    /// Frame objects no remaining snapshot used; the bytes freed are theirs and the removed
    /// snapshots' own files'.
    public var framesSwept = 0
    public var bytesFreed: Int64 = 0
}
