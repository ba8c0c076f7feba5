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

    /// Checks a snapshot's own files before a restore writes anything (see
    /// `Verifier.checkOwnFiles()`), and that `manifest` is the one on disk. Throws
    /// `RestoreError.corrupt` naming the first problem (and how many more there are).
    public func checkBeforeRestore(_ manifest: Manifest) throws {
        let (onDisk, problems) = Verifier(repository: self, id: manifest.id).checkOwnFiles()
        if let first = problems.first {
            let more = problems.count > 1 ? " (and \(problems.count - 1) more problems; see `backstop verify \(manifest.id) --quick`)" : ""
            throw RestoreError.corrupt(snapshot: manifest.id, file: first.file, location: first.location ?? "", reason: first.message + more)
        }
        if onDisk != manifest {
            throw RestoreError.corrupt(snapshot: manifest.id, file: "manifest.json", location: "",
                                       reason: "changed since it was read; run the restore again")
        }
    }
}
