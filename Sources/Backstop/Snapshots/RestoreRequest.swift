import Foundation

/// What to restore and where; the snapshot comes from an ID or a selection.
public struct RestoreRequest: Sendable {
    /// A directory (filesystem snapshots), or a file or `-` (logical snapshots).
    public var target: String
    public var includes: [String] = []
    public var database: String?
    public var table: String?
    public var force = false
    /// Filesystem restores: never restore owners / drop special mode bits and apply the umask
    /// (GNU tar's `--no-same-owner` and `--no-same-permissions`).
    public var noSameOwner = false
    public var noSamePermissions = false

    public init(target: String, includes: [String] = [], database: String? = nil, table: String? = nil, force: Bool = false,
                noSameOwner: Bool = false, noSamePermissions: Bool = false) {
        self.target = target
        self.includes = includes
        self.database = database
        self.table = table
        self.force = force
        self.noSameOwner = noSameOwner
        self.noSamePermissions = noSamePermissions
    }
}

extension Repository {
    /// Restores the first of `candidates` that proves intact.
    ///
    /// Every restore verifies as it goes. When a candidate proves corrupt, the failure is recorded
    /// in the catalog's verification history (so later selections pass it over) and, with
    /// `fallback`, the next candidate is tried and `notice` says so; without it, the error is thrown.
    public func restore(candidates: [SnapshotID], request: RestoreRequest, fallback: Bool,
                        notice: (String) -> Void) throws -> RestoreReport {
        precondition(!candidates.isEmpty)
        var lastError: Error?
        for (n, id) in candidates.enumerated() {
            let started = Date()
            do {
                let m = try manifest(id)
                switch m.kind {
                case .filesystem:
                    return try FilesystemRestore(repository: self, manifest: m, includes: request.includes, force: request.force,
                                                 noSameOwner: request.noSameOwner, noSamePermissions: request.noSamePermissions).run(to: request.target)
                case .logical:
                    if request.noSameOwner || request.noSamePermissions {
                        throw RestoreError.wrongKind(snapshot: id, wanted: "a filesystem snapshot (--no-same-owner and --no-same-permissions apply to trees)")
                    }
                    return try LogicalRestore(repository: self, manifest: m, database: request.database, table: request.table,
                                              force: request.force).run(to: request.target)
                }
            } catch let error as RestoreError where error.isIntegrityFailure {
                try? catalog.record(VerificationResult(
                    snapshot: id, source: nil, kind: nil, mode: .full, startedAt: started, duration: Date().timeIntervalSince(started),
                    bytesRead: 0, problems: [VerificationProblem(file: "restore", message: error.description)]))
                lastError = error
                guard fallback, n + 1 < candidates.count else { throw error }
                notice("\(error)")
                notice("falling back to the next older candidate, \(candidates[n + 1])")
            }
        }
        throw lastError!
    }
}
