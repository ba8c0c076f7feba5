import Foundation

extension Repository {
    /// Verifies snapshots one after another and records each result in the catalog's history.
    /// Only committed snapshots are seen (never `tmp/`), so a backup running meanwhile is ignored.
    public func verify(_ ids: [SnapshotID], mode: VerificationMode,
                       progress: ((VerificationResult) -> Void)? = nil) throws -> [VerificationResult] {
        var results: [VerificationResult] = []
        for id in ids {
            let result = Verifier(repository: self, id: id).verify(mode: mode)
            if FileSystem.isDirectory(snapshotDirectory(id)) { try catalog.record(result) }
            progress?(result)
            results.append(result)
        }
        return results
    }
}
