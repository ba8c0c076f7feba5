import Foundation

extension Repository {
    /// Verifies snapshots one after another and records each result in the repository's
    /// history (`verifications/`), mirrored in the catalog.
    /// Only committed snapshots are seen (never `tmp/`), so a backup running meanwhile is ignored.
    ///
    /// The results are what matters: when the history cannot be saved (a full disk, a read-only
    /// repository), `warn` hears it once and verification goes on. A snapshot that is not in the
    /// catalog (its manifest could not be read when the catalog was built) is verified and
    /// reported like any other; there is no catalog row to attach its history to.
    public func verify(_ ids: [SnapshotID], mode: VerificationMode, ledger: FrameLedger = FrameLedger(), warn: ((String) -> Void)? = nil,
                       progress: ((VerificationResult) -> Void)? = nil) throws -> [VerificationResult] {
        var results: [VerificationResult] = []
        var historyFailed = false
        let structureVerified = mode == .full ? (try? catalog.structureVerified()) ?? [] : []
        for id in ids {
            try Interruption.check()
            let result = Verifier(repository: self, id: id).verify(mode: mode, ledger: ledger, structure: !structureVerified.contains(id))
            try Interruption.check()   // a check cut short proves nothing: report nothing about it
            if result.hadReadFailure {
                // An I/O error says nothing about the stored data: not recorded, so the
                // snapshot is not marked bad (here or on hosts that share the history).
                warn?("snapshot \(id) could not be read in full (an I/O error of \(location)); its result is reported but not recorded")
            } else if !historyFailed && (try? storage.exists(RepositoryLayout.manifest(id))) == true {
                do {
                    try recordVerification(result)
                } catch let error as Interrupted {
                    throw error
                } catch {
                    historyFailed = true
                    warn?("the verification history could not be saved in \(location): \(Catalog.explain(error)); "
                        + "the results are reported but not recorded, so selection and `verify --sample` do not know them yet")
                }
            }
            progress?(result)
            results.append(result)
        }
        return results
    }

    /// The `count` snapshots to verify next: `verify --sample N` and a policy's `sample` (which
    /// passes what it just verified as `excluding`). The catalog's least recently verified
    /// (never verified first), except that snapshot folders the catalog lacks (their manifest
    /// could not be read, so no history can be recorded for them) take at most half of the
    /// sample, rounded down, in turns by day (`now`), so they neither starve the others nor are
    /// forgotten. They fill the rest when the catalog has fewer snapshots than asked.
    public func sampleToVerify(_ count: Int, excluding: Set<SnapshotID> = [], now: Date = Date()) throws -> [SnapshotID] {
        guard count > 0 else { return [] }
        let cataloged = try catalog.snapshotIDs()
        let missing = try snapshotIDs().filter { !cataloged.contains($0) && !excluding.contains($0) }.sorted()
        let share = min(missing.count, count / 2)
        var uncataloged: [SnapshotID] = []
        if share > 0 {
            let day = Int((now.timeIntervalSince1970 / 86_400).rounded(.down))
            let start = ((day * share) % missing.count + missing.count) % missing.count
            uncataloged = (0..<share).map { missing[(start + $0) % missing.count] }
        }
        let fromCatalog = try catalog.leastRecentlyVerified(count + excluding.count).filter { !excluding.contains($0) }
        var chosen = uncataloged + fromCatalog.prefix(count - share)
        if chosen.count < count {
            chosen += missing.filter { !uncataloged.contains($0) }.prefix(count - chosen.count)
        }
        return chosen
    }

    /// Checks a snapshot's own files before a restore writes anything (see
    /// `Verifier.checkOwnFiles()`), and that `manifest` is the one on disk. Throws
    /// `RestoreError.corrupt` naming the first problem (and how many more there are).
    ///
    /// The frames are not read here: every restore checks each frame it reads against its ID,
    /// before the target is renamed into place (or, for `--to -`, before the first byte goes
    /// out), and checks the entry or section digests of what it restores.
    public func checkBeforeRestore(_ manifest: Manifest) throws {
        try requireIdentity(for: "a restore of \(manifest.id)", snapshot: manifest.id)
        let (onDisk, problems) = Verifier(repository: self, id: manifest.id).checkOwnFiles()
        if let failure = problems.first(where: \.isReadFailure) {
            throw RestoreError.unreadable(snapshot: manifest.id, file: failure.file, location: failure.location ?? "", reason: failure.message)
        }
        if let first = problems.first {
            let more = problems.count > 1 ? " (and \(problems.count - 1) more problems; see `backstop verify \(manifest.id) --quick`)" : ""
            throw RestoreError.corrupt(snapshot: manifest.id, file: first.file, location: first.location ?? "", reason: first.message + more)
        }
        // What the restore relies on (times are left out: a date read back may differ from the
        // one written below a millisecond).
        func restoreFields(_ m: Manifest) -> some Equatable {
            [m.id.rawValue, m.kind.rawValue, m.sha256?.hex ?? "", "\(m.bytesIn)", "\(m.entryCount)", "\(m.files)", "\(String(describing: m.frameCount))",
             "\(m.sections)", "\(String(describing: m.dumpFormat))"]
        }
        if onDisk.map(restoreFields) != restoreFields(manifest) {
            throw RestoreError.corrupt(snapshot: manifest.id, file: "manifest.json", location: "",
                                       reason: "changed since it was read; run the restore again")
        }
    }
}
