import Foundation

/// One verification as the repository stores it (`verifications/<snapshot-id>/<time>-<random>.json`),
/// so a rebuilt catalog, or the catalog of another host sharing the repository, knows which
/// snapshots were verified and which were found bad. The catalog mirrors these objects.
struct StoredVerification: Codable {
    var format = 1
    var snapshot: SnapshotID
    var startedAt: Date
    var mode: VerificationMode
    var passed: Bool
    var firstProblem: String?
    /// Every problem, as reported (absent in records exported from an older catalog).
    var problems: [String]?
    var duration: Double?
    var bytesRead: Int64?
    var host: String
    var toolVersion: String

    init(_ result: VerificationResult) {
        snapshot = result.snapshot
        startedAt = result.startedAt
        mode = result.mode
        passed = result.passed
        firstProblem = result.problems.first.map(String.init(describing:))
        problems = result.problems.map(String.init(describing:))
        duration = result.duration
        bytesRead = result.bytesRead
        host = ProcessIdentity.hostName
        toolVersion = BackstopVersion.current
    }

    init(_ record: VerificationRecord) {
        snapshot = record.snapshot
        startedAt = record.at
        mode = record.mode
        passed = record.passed
        firstProblem = record.firstProblem
        host = ProcessIdentity.hostName
        toolVersion = BackstopVersion.current
    }

    var record: VerificationRecord {
        VerificationRecord(snapshot: snapshot, at: startedAt, mode: mode, passed: passed, firstProblem: firstProblem)
    }

    /// `20261127T234501.123Z-1a2b3c4d.json`: sorted by time, never two alike.
    static func objectName(startedAt: Date) -> String {
        let ms = startedAt.millisecondsSince1970
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyyMMdd'T'HHmmss"
        let seconds = f.string(from: Date(timeIntervalSince1970: TimeInterval(ms.floorDiv(1000))))
        let millis = String(format: "%03d", Int(ms.floorMod(1000)))
        return "\(seconds).\(millis)Z-\(String(format: "%08x", UInt32.random(in: 0...UInt32.max))).json"
    }
}

extension Int64 {
    fileprivate func floorDiv(_ d: Int64) -> Int64 { self >= 0 ? self / d : (self - d + 1) / d }
    fileprivate func floorMod(_ d: Int64) -> Int64 { self - floorDiv(d) * d }
}

extension Repository {
    /// Stores a verification in the repository, then mirrors it in the catalog. Throws when
    /// either cannot be written (a read-only or full repository): the caller reports the result
    /// anyway.
    func recordVerification(_ result: VerificationResult) throws {
        try Interruption.check()
        let stored = StoredVerification(result)
        let key = RepositoryLayout.verification(result.snapshot, name: StoredVerification.objectName(startedAt: result.startedAt))
        let bytes = Array(try Timestamp.jsonEncoder().encode(stored)) + [0x0A]
        try putNew(key, bytes)
        try catalog.recordIfCataloged(result, storedAs: key)
    }

    /// Makes the catalog's verification history agree with `verifications/`: imports the
    /// objects it lacks, and stores the rows it holds from before history was stored (so a
    /// rebuild keeps them). An object that cannot be read is left out (and left in place).
    static func reconcileVerifications(_ catalog: Catalog, storage: StorageBackend) throws {
        let known = try catalog.storedVerificationKeys()
        let decoder = Timestamp.jsonDecoder()
        var fresh: [(key: StorageKey, record: VerificationRecord)] = []
        for key in try storage.list(under: RepositoryLayout.verifications)
        where !known.contains(key.rawValue) && key.name.hasSuffix(".json") {
            guard let bytes = try? storage.read(key),
                  let stored = try? decoder.decode(StoredVerification.self, from: Data(bytes)),
                  key.components.count == 3, key.components[1] == stored.snapshot.rawValue else { continue }
            fresh.append((key, stored.record))
        }
        fresh.sort { ($0.record.at, $0.key) < ($1.record.at, $1.key) }
        try catalog.importVerifications(fresh)

        // Rows from before: stored once, best effort (a read-only repository keeps them local).
        for (rowid, record) in try catalog.unstoredVerifications() {
            let stored = StoredVerification(record)
            let key = RepositoryLayout.verification(record.snapshot, name: StoredVerification.objectName(startedAt: record.at))
            guard let bytes = try? Timestamp.jsonEncoder().encode(stored),
                  (try? storage.put(key, Array(bytes) + [0x0A], mode: .createOnly)) == .stored else { break }
            try catalog.markStored(rowid: rowid, as: key)
        }
    }

    /// Removes the stored history of `id` (a pruned snapshot's).
    func removeVerifications(of id: SnapshotID) throws {
        for key in try storage.list(under: RepositoryLayout.verifications(of: id)) { try storage.delete(key) }
    }
}
