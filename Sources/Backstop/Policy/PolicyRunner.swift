import Foundation
import Logging

/// What happened to one job of a run.
public struct JobOutcome: Codable, Sendable {
    public enum Status: String, Codable, Sendable { case ok, warnings, failed, skipped }
    public var source: String
    public var kind: SnapshotKind
    public var status: Status
    public var snapshot: SnapshotID?
    public var bytesIn: Int64 = 0
    public var bytesStored: Int64 = 0
    /// Filesystem jobs with the files cache and a parent: files reused without being read.
    public var filesReused: Int?
    public var duration: Double = 0
    public var messages: [String] = []
    /// The exit status this job contributes.
    public var exitCode: Int32
}

/// What one `copy-to:` repository got from a run.
public struct CopyOutcome: Codable, Sendable {
    public var to: String
    /// What was copied, when the copy completed.
    public var report: CopyReport?
    /// Why it did not, if so.
    public var error: String?
    public var exitCode: Int32
}

/// What a `backstop run` did, for its report and exit status.
public struct RunSummary: Codable, Sendable {
    public var runID: RunID
    public var policy: String
    public var dryRun: Bool
    public var startedAt: Date
    public var finishedAt: Date
    /// Seconds from start to finish.
    public var duration: Double
    public var jobs: [JobOutcome]
    public var verified: [VerificationResult]
    public var pruned: [SnapshotID]
    public var plan: RetentionPlan?
    public var sampled: [VerificationResult]
    /// One per `copy-to:` repository (none in a dry run).
    public var copies: [CopyOutcome] = []
    public var exitCode: Int32
}

/// Runs a policy: the cron entry point.
///
/// Under the writer lock: each job with its hooks (a failing `before` skips the job; `after`
/// always runs), verification of what was written, the prune the retention rules call for,
/// verification of a sample of older snapshots. The snapshots of one run share a run ID.
/// With `copy-to:`, the snapshots the run took are copied to each of those repositories (with
/// their verification history, and events) after their verification; a failed copy is reported
/// and counts in the exit status, and the run goes on.
/// SIGINT/SIGTERM stops the run: the job in progress ends, its `after` hook runs (also when the
/// grace period ends the process first), no later job starts, and `Interrupted` is thrown.
/// The exit status is the worst of all steps: 1 (unexpected) > 74 > 65 > 66 > 3 > 0.
public struct PolicyRunner {
    public var policy: Policy
    public var logger: Logger
    /// Opens a repository named in `copy-to:` (the CLI opens it as every command opens one).
    public var openRepository: (String) throws -> Repository
    /// Hears each job's backup progress, with the job's source.
    public var progress: ((_ source: String, _ progress: BackupProgress) -> Void)?

    public init(policy: Policy, logger: Logger, openRepository: @escaping (String) throws -> Repository = { try Repository.open(at: $0) }) {
        self.policy = policy
        self.logger = logger
        self.openRepository = openRepository
    }

    static let severity: [Int32] = [0, 3, 66, 65, 74, 75, 1]

    static func worst(_ codes: [Int32]) -> Int32 {
        codes.max { (severity.firstIndex(of: $0) ?? severity.count) < (severity.firstIndex(of: $1) ?? severity.count) } ?? 0
    }

    /// Runs the policy. `time` is recorded as the snapshots' time and is the "now" of retention.
    public func run(time: Date?, dryRun: Bool) throws -> RunSummary {
        try run(in: Repository.open(location: policy.repository), time: time, dryRun: dryRun)
    }

    /// Runs the policy on `repo`, opened by the caller (the CLI opens the policy's repository as
    /// every command opens one, and reports what reconciling its catalog could not do).
    public func run(in repo: Repository, time: Date?, dryRun: Bool) throws -> RunSummary {
        let started = Date()
        let now = time ?? started
        let runID = RunID(startedAt: now)
        return try repo.withWriterLock(command: "backstop run \(policy.file)", timeout: policy.lockTimeout, warn: { logger.warning("\($0)") }) {
            var outcomes: [JobOutcome] = []
            for job in policy.jobs {
                outcomes.append(dryRun ? JobOutcome(source: job.source, kind: job.kind, status: .skipped, messages: ["dry run"], exitCode: 0)
                                       : try runJob(job, repo: repo, runID: runID, time: time))
            }
            var verified: [VerificationResult] = []
            // An encrypted repository and no identity (a backup host holds the writer key only):
            // a full verification cannot read the frames; a quick one is what it can do, and
            // that must not be recorded as a failure.
            let canRead = (repo.storage as? EncryptedBackend)?.canDecrypt ?? true
            if var mode = policy.verification.afterBackup {
                if mode == .full && !canRead {
                    logger.warning("verify after-backup: full needs an identity on the encrypted repository \(repo.location) (--identity FILE or $BACKSTOP_IDENTITY); verifying quick instead (the stored ciphertext against SHA256SUMS)")
                    mode = .quick
                }
                let written = outcomes.compactMap(\.snapshot)
                verified = try repo.verify(written, mode: mode, warn: { logger.warning("\($0)") })
                for r in verified where !r.passed { logger.error("\(r.summary)") }
            }
            var copies: [CopyOutcome] = []
            let taken = outcomes.compactMap(\.snapshot)
            if !dryRun && !taken.isEmpty {
                for name in policy.copyTo { copies.append(try copy(taken, from: repo, to: name)) }
            }
            var plan: RetentionPlan?
            var pruned: [SnapshotID] = []
            if let retention = policy.retention {
                let p = try repo.retentionPlan(retention, timeZone: policy.timeZone, now: now)
                plan = p
                if !dryRun {
                    let result = try repo.prune(p, warn: { logger.warning("\($0)") })
                    pruned = result.removed
                    if !pruned.isEmpty { logger.info("pruned \(pruned.count) snapshot\(pruned.count == 1 ? "" : "s"): \(pruned.map(\.rawValue).joined(separator: ", "))") }
                    if result.framesSwept > 0 { logger.info("removed \(result.framesSwept) unused frame\(result.framesSwept == 1 ? "" : "s") (\(result.bytesFreed) bytes)") }
                }
            }
            var sampled: [VerificationResult] = []
            if policy.verification.sample > 0 && !dryRun && !canRead {
                logger.warning("verify sample: \(policy.verification.sample) skipped: a full verification of older snapshots needs an identity on the encrypted repository \(repo.location)")
            }
            if policy.verification.sample > 0 && !dryRun && canRead {
                let fresh = Set(verified.map(\.snapshot))
                let older = try repo.sampleToVerify(policy.verification.sample, excluding: fresh)
                let ledger = FrameLedger()
                sampled = try repo.verify(Array(older.prefix(policy.verification.sample)), mode: .full, ledger: ledger, warn: { logger.warning("\($0)") })
                for r in sampled where !r.passed { logger.error("\(r.summary)") }
                let frames = try repo.verifyFrameSample(ledger: ledger, warn: { logger.warning("\($0)") })
                for b in frames.bad {
                    logger.error("\(b.key): \(b.problem); used by \(b.snapshots.map(\.rawValue).joined(separator: ", "))")
                    for snapshot in b.snapshots {
                        sampled.append(VerificationResult(snapshot: snapshot, source: nil, kind: nil, mode: .quick, startedAt: Date(), duration: 0,
                                                          bytesRead: 0, problems: [VerificationProblem(file: "frames.tsv", location: b.key, message: b.problem)]))
                    }
                }
            }
            let codes = outcomes.map(\.exitCode) + (verified + sampled).map { $0.passed ? 0 : ExitStatus.integrity.rawValue }
                + copies.map(\.exitCode)
            let finished = Date()
            return RunSummary(runID: runID, policy: policy.file, dryRun: dryRun, startedAt: started, finishedAt: finished,
                              duration: finished.timeIntervalSince(started),
                              jobs: outcomes, verified: verified, pruned: pruned, plan: plan, sampled: sampled,
                              copies: copies, exitCode: Self.worst(codes))
        }
    }

    /// Copies the snapshots `ids` of `repo` to the `copy-to:` repository `name`; throws only
    /// `Interrupted` (every other failure is in the outcome).
    func copy(_ ids: [SnapshotID], from repo: Repository, to name: String) throws -> CopyOutcome {
        try Interruption.check()
        do {
            let target = try openRepository(name)
            let options = CopyOptions(lockTimeout: policy.lockTimeout, command: "backstop run \(policy.file) (copy-to)")
            let report = try repo.copy(ids, to: target, options: options, warn: { logger.warning("\($0)") })
            for note in report.notes { logger.info("copy to \(name): \(note)") }
            logger.info("copied \(report.copied.count) snapshots to \(name) (\(report.framesSent) frames, \(report.bytesSent) bytes sent; \(report.framesPresent) frames already there)")
            return CopyOutcome(to: name, report: report, exitCode: 0)
        } catch {
            try Interruption.check()
            let status = ExitStatus(for: error)
            logger.error("copy to \(name) failed (exit \(status.rawValue)): \(error)")
            return CopyOutcome(to: name, error: String(describing: error), exitCode: status.rawValue)
        }
    }

    /// Runs one job; throws only `Interrupted` (every other failure is in the outcome).
    func runJob(_ job: Policy.Job, repo: Repository, runID: RunID, time: Date?) throws -> JobOutcome {
        try Interruption.check()
        let started = Date()
        var outcome = JobOutcome(source: job.source, kind: job.kind, status: .ok, exitCode: 0)
        var hookEnvironment = ProcessInfo.processInfo.environment
        hookEnvironment["BACKSTOP_RUN_ID"] = runID.rawValue
        hookEnvironment["BACKSTOP_SOURCE"] = job.source
        // The after hook runs once: on the way out, or by the interruption watcher when the grace
        // period ends the process first (a backup blocked reading a dump command).
        let environment = hookEnvironment
        let afterHook = job.after.map { after in OnceHook { Hook.run(after, environment: environment) } }
        let runAfterOnSignal = afterHook.map { hook in Interruption.register { _ = hook.run() } }
        defer {
            if let after = job.after, let result = afterHook?.run() {
                let (status, tail) = result
                if status != 0 {
                    let message = "after hook of \(job.source) exited \(status): `\(after)`\(tail.isEmpty ? "" : "\n" + tail)"
                    logger.error("\(message)")
                    outcome.messages.append(message)
                    if outcome.exitCode == 0 || outcome.exitCode == 3 { outcome.exitCode = ExitStatus.failure.rawValue }
                }
            }
            runAfterOnSignal.map(Interruption.unregister)
            outcome.duration = Date().timeIntervalSince(started)
        }
        if let before = job.before {
            let (status, tail) = Hook.run(before, environment: hookEnvironment)
            if status != 0 {
                let message = "before hook of \(job.source) exited \(status), so the job was skipped: `\(before)`\(tail.isEmpty ? "" : "\n" + tail)"
                logger.error("\(message)")
                outcome.status = .skipped
                outcome.messages.append(message)
                outcome.exitCode = ExitStatus.failure.rawValue
                return outcome
            }
        }
        var options = BackupOptions(source: job.source, tags: job.tags, runID: runID)
        options.time = time
        options.filesCache = job.filesCache
        do {
            let manifest: Manifest
            switch job.kind {
            case .filesystem where job.mariabackup != nil:
                manifest = try MariaBackupSnapshotWriter(connection: job.mariabackup!, options: options,
                                                         progress: progress.map { p in { p(job.source, $0) } }).write(to: repo)
            case .filesystem:
                manifest = try FilesystemSnapshotWriter(paths: job.paths, excludes: job.exclude, options: options,
                                                        progress: progress.map { p in { p(job.source, $0) } }).write(to: repo)
            case .logical:
                manifest = try LogicalSnapshotWriter(input: .command(job.command ?? "false"), format: job.format, options: options,
                                                 progress: progress.map { p in { p(job.source, $0) } },
                                                 warn: { logger.warning("\(job.source): \($0)") }).write(to: repo)
            }
            outcome.snapshot = manifest.id
            outcome.bytesIn = manifest.bytesIn
            outcome.bytesStored = manifest.bytesStored
            outcome.filesReused = manifest.filesReused
            if !manifest.warnings.isEmpty {
                outcome.status = .warnings
                outcome.exitCode = ExitStatus.warnings.rawValue
                outcome.messages += manifest.warnings
                for w in manifest.warnings { logger.warning("\(job.source): \(w)") }
            }
            logger.info("\(job.source): snapshot \(manifest.id), \(manifest.bytesIn) bytes in, \(manifest.bytesStored) stored")
        } catch {
            try Interruption.check()   // stop the run: not a failure of this job
            outcome.status = .failed
            outcome.messages.append(String(describing: error))
            outcome.exitCode = ExitStatus(for: error).rawValue
            logger.error("\(job.source): \(error)")
        }
        return outcome
    }
}

/// A hook that runs at most once, from whichever thread claims it first (the job, or the
/// interruption watcher). Nobody waits for it under a lock: a hook already started completes
/// on its own, as a child process, even when the process ends.
final class OnceHook: @unchecked Sendable {
    private let lock = NSLock()
    private var claimed = false
    private let body: () -> (Int32, String)

    init(_ body: @escaping () -> (Int32, String)) { self.body = body }

    /// Its exit status and output tail, or nil when it was already run.
    func run() -> (Int32, String)? {
        lock.lock()
        let mine = !claimed
        claimed = true
        lock.unlock()
        return mine ? body() : nil
    }
}

/// Runs a hook with `/bin/sh -c`, returning its exit status and the tail of its output.
enum Hook {
    static func run(_ command: String, environment: [String: String]) -> (Int32, String) {
        do {
            let child = try ShellCommand(command, stdout: .sameAsStderr, environment: environment)
            let (status, _) = child.wait()
            return (status, child.tail)
        } catch {
            return (127, "\(error)")
        }
    }
}

extension Repository {
    /// Snapshots taken by one `backstop run`, oldest first.
    public func snapshots(ofRun runID: RunID) throws -> [CatalogSnapshot] {
        try catalog.snapshots().filter { $0.runID == runID.rawValue }
    }
}
