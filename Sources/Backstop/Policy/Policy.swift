import Foundation

/// A policy file: the repository, the jobs a nightly run takes, retention and verification.
public struct Policy: Sendable {
    public struct Job: Sendable, Equatable {
        public var source: String
        public var kind: SnapshotKind
        public var paths: [String] = []
        public var exclude: [String] = []
        public var command: String?
        public var format: DumpFormatChoice = .auto
        public var tags: [String] = []
        /// Run by `/bin/sh -c` before the job; a failure skips the job.
        public var before: String?
        /// Run by `/bin/sh -c` after the job, whatever happened (even when `before` failed).
        public var after: String?
        /// Filesystem jobs: reuse unchanged files' frames from the source's previous snapshot
        /// without reading them (`files-cache: on`, the default); `off` reads every file.
        public var filesCache = true
        /// `kind: mariabackup` (stored as a filesystem snapshot): how mariadb-backup reaches the
        /// server (`socket`, `host`, `port`, `user`, `defaults-file`).
        public var mariabackup: MariaBackupConnection?
    }

    public struct Verification: Sendable, Equatable {
        /// How to verify each snapshot a run writes; nil means not at all.
        public var afterBackup: VerificationMode? = .quick
        /// How many older snapshots each run verifies (fully), oldest-verified first.
        public var sample: Int = 0
    }

    /// The file it came from, for messages.
    public var file: String
    public var repository: String
    public var timeZone: TimeZone
    public var lockTimeout: TimeInterval
    public var jobs: [Job]
    public var retention: RetentionPolicy?
    public var verification: Verification
    /// `copy-to:`: repositories each run copies the snapshots it took to (with their
    /// verification history, and events), after its jobs and their verification.
    public var copyTo: [String] = []
    /// `metrics-file:`: where `backstop run` writes its Prometheus metrics (`--metrics-file` overrides).
    public var metricsFile: String? = nil
}

/// A mistake in a policy file, with its place.
public struct PolicyIssue: Sendable, Equatable, CustomStringConvertible {
    public var line: Int
    public var column: Int
    public var message: String

    public var description: String { "\(line):\(column): \(message)" }
}

/// Why a policy file was refused. Nothing runs when one is thrown.
public enum PolicyError: Error, CustomStringConvertible, ExitStatusProviding {
    case unreadable(file: String, reason: String)
    case invalid(file: String, issues: [PolicyIssue])

    public var description: String {
        switch self {
        case let .unreadable(file, reason):
            return "cannot read policy \(file): \(reason)"
        case let .invalid(file, issues):
            let lines = issues.map { "\(file):\($0)" }
            return "policy \(file) is invalid; nothing was run:\n" + lines.joined(separator: "\n")
        }
    }

    public var exitStatus: ExitStatus { .usage }
}
