import Foundation

/// A run's metrics in Prometheus text format (0.0.4), for node_exporter's textfile collector.
///
/// Per source of the policy: the last success (the newest snapshot's completion, from the
/// catalog, so a failing night keeps the last good one), this run's attempt, exit code, duration
/// and bytes, the snapshot count, the age of the newest snapshot whose last verification passed,
/// and how many snapshots' last verification failed. Per repository: its total stored and
/// deduplicated sizes. Pure but for reading the catalog; `write(to:)` replaces the file
/// atomically (a temporary file in the same directory, fsynced, renamed over it): a crash leaves
/// the previous file, or the new one, never half of one, and at worst a `.FILE.tmp-PID` beside it.
public struct RunMetrics: Sendable {
    public var text: String

    /// The metrics of `summary`, a run of `policy` on `repo`, as at `now`.
    public init(summary: RunSummary, policy: Policy, repository repo: Repository, now: Date = Date()) throws {
        let snapshots = try repo.snapshots()
        let verifications = try repo.lastVerifications()
        let stats = try repo.stats()
        var families: [(name: String, help: String, type: String, samples: [(labels: [(String, String)], value: Double)])] = []
        func family(_ name: String, _ help: String, _ type: String = "gauge", _ samples: [(labels: [(String, String)], value: Double)]) {
            families.append((name, help, type, samples))
        }
        let sources = policy.jobs.map(\.source)
        let jobs = Dictionary(summary.jobs.map { ($0.source, $0) }, uniquingKeysWith: { a, _ in a })
        let bySource = Dictionary(grouping: snapshots, by: \.source)
        func perSource(_ value: (String) -> Double?) -> [(labels: [(String, String)], value: Double)] {
            sources.compactMap { s in value(s).map { (labels: [("source", s)], value: $0) } }
        }
        let newest = { (s: String) in bySource[s]?.max { $0.completedAt < $1.completedAt } }
        let written = { (s: String) in jobs[s]?.snapshot.flatMap { id in snapshots.first { $0.id == id } } }

        family("backstop_last_success_timestamp_seconds", "Unix time the newest snapshot of the source completed.", "gauge",
               perSource { newest($0).map { $0.completedAt.timeIntervalSince1970 } })
        family("backstop_last_attempt_timestamp_seconds", "Unix time of the last run that tried to back up the source.", "gauge",
               perSource { jobs[$0] == nil ? nil : summary.startedAt.timeIntervalSince1970 })
        family("backstop_last_exit_code", "Exit status the source's job contributed to the last run (0 ok, 3 warnings, ...).", "gauge",
               perSource { jobs[$0].map { Double($0.exitCode) } })
        family("backstop_last_duration_seconds", "How long the source's job took in the last run, hooks included.", "gauge",
               perSource { jobs[$0].map(\.duration) })
        family("backstop_last_bytes_in", "Bytes read from the source in the last run.", "gauge",
               perSource { jobs[$0].map { Double($0.bytesIn) } })
        family("backstop_last_bytes_stored", "Stored bytes of the snapshot the last run took of the source.", "gauge",
               perSource { jobs[$0].map { Double($0.bytesStored) } })
        family("backstop_last_bytes_new", "Bytes of new frames the last run's snapshot of the source added to the repository.", "gauge",
               perSource { s in jobs[s].map { _ in Double(written(s)?.bytesNew ?? 0) } })
        family("backstop_snapshots", "Snapshots of the source in the repository.", "gauge",
               perSource { Double(bySource[$0]?.count ?? 0) })
        family("backstop_newest_verified_snapshot_age_seconds",
               "Seconds since the newest snapshot of the source whose last verification passed completed (+Inf: none).", "gauge",
               perSource { s in
                   let verified = (bySource[s] ?? []).filter { verifications[$0.id]?.passed == true }.map(\.completedAt).max()
                   return verified.map { max(0, now.timeIntervalSince($0)) } ?? .infinity
               })
        family("backstop_verification_failures", "Snapshots of the source whose last verification failed.", "gauge",
               perSource { s in Double((bySource[s] ?? []).filter { verifications[$0.id]?.passed == false }.count) })
        let repoLabel = [("repository", repo.location)]
        family("backstop_repository_stored_bytes", "Total size of the repository if each snapshot kept its own frames.", "gauge",
               [(repoLabel, Double(stats.storedBytes))])
        family("backstop_repository_deduplicated_bytes", "Size of the repository with each frame counted once (what it occupies).", "gauge",
               [(repoLabel, Double(stats.deduplicatedBytes))])
        family("backstop_repository_logical_bytes", "Bytes of all snapshots as they were read.", "gauge",
               [(repoLabel, Double(stats.logicalBytes))])
        family("backstop_run_exit_code", "Exit status of the last run of the policy.", "gauge",
               [([("policy", policy.file)], Double(summary.exitCode))])
        family("backstop_run_timestamp_seconds", "Unix time the last run of the policy finished.", "gauge",
               [([("policy", policy.file)], summary.finishedAt.timeIntervalSince1970)])

        var lines: [String] = []
        for f in families where !f.samples.isEmpty {
            lines.append("# HELP \(f.name) \(f.help)")
            lines.append("# TYPE \(f.name) \(f.type)")
            for s in f.samples {
                let labels = s.labels.map { "\($0.0)=\"\(Self.escape($0.1))\"" }.joined(separator: ",")
                lines.append("\(f.name){\(labels)} \(Self.format(s.value))")
            }
        }
        text = lines.joined(separator: "\n") + "\n"
    }

    /// A label value as the text format wants it: backslash, double quote and newline escaped.
    static func escape(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }

    static func format(_ value: Double) -> String {
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value.isNaN { return "NaN" }
        if value == value.rounded() && abs(value) < 1e15 { return String(Int64(value)) }
        return String(format: "%.3f", value)
    }

    /// Replaces `path` atomically with the metrics (mode 0644, so node_exporter can read it).
    public func write(to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        let temporary = directory + "/." + url.lastPathComponent + ".tmp-\(getpid())"
        guard FileManager.default.createFile(atPath: temporary, contents: Data(text.utf8), attributes: [.posixPermissions: 0o644]) else {
            throw MetricsError.write(path: path, reason: String(cString: strerror(errno)))
        }
        do {
            try FileSystem.sync(temporary)
            try FileSystem.rename(temporary, path)
        } catch {
            try? FileManager.default.removeItem(atPath: temporary)
            throw MetricsError.write(path: path, reason: String(describing: error))
        }
    }
}

/// The metrics file could not be written; the backups themselves are unaffected.
public enum MetricsError: Error, CustomStringConvertible, ExitStatusProviding {
    case write(path: String, reason: String)

    public var description: String {
        switch self {
        case let .write(path, reason):
            return "cannot write the metrics file \(path): \(reason); the run itself completed (see its exit status): "
                + "check that the directory exists and is writable (node_exporter's --collector.textfile.directory)"
        }
    }

    public var exitStatus: ExitStatus { .ioError }
}
