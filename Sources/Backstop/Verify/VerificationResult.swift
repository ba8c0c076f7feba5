import Foundation

/// How thoroughly to verify: `quick` hashes the stored files; `full` also decodes everything.
public enum VerificationMode: String, Codable, Sendable, CaseIterable {
    case quick, full
}

/// One thing wrong with a snapshot: which file, where in it, and what.
public struct VerificationProblem: Codable, Sendable, Equatable, CustomStringConvertible {
    /// The stored file (`data.tar.zst`, `manifest.json`, …).
    public var file: String
    /// Where in it: `frame 12`, `entry mysql/ibdata1`, `section app1`, or nil for the whole file.
    public var location: String?
    public var message: String
    /// The file could not be read (an I/O error of the repository's storage): no evidence about
    /// the data, so not recorded as a failed verification. Not part of the JSON report.
    public var isReadFailure: Bool

    enum CodingKeys: String, CodingKey { case file, location, message }

    public init(file: String, location: String? = nil, message: String, isReadFailure: Bool = false) {
        self.file = file
        self.location = location
        self.message = message
        self.isReadFailure = isReadFailure
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        file = try c.decode(String.self, forKey: .file)
        location = try c.decodeIfPresent(String.self, forKey: .location)
        message = try c.decode(String.self, forKey: .message)
        isReadFailure = false
    }

    public var description: String { "\(file)\(location.map { " \($0)" } ?? ""): \(message)" }
}

/// The outcome of verifying one snapshot.
public struct VerificationResult: Codable, Sendable {
    public var snapshot: SnapshotID
    public var source: String?
    public var kind: SnapshotKind?
    public var mode: VerificationMode
    public var startedAt: Date
    /// Seconds.
    public var duration: Double
    /// Bytes read from the repository.
    public var bytesRead: Int64
    public var problems: [VerificationProblem]

    public var passed: Bool { problems.isEmpty }

    /// Some file could not be read (an I/O error): the result says nothing sure about the data.
    public var hadReadFailure: Bool { problems.contains { $0.isReadFailure } }

    enum CodingKeys: String, CodingKey {
        case snapshot, source, kind, mode, startedAt, duration, bytesRead, problems, status
    }

    public init(snapshot: SnapshotID, source: String?, kind: SnapshotKind?, mode: VerificationMode, startedAt: Date,
                duration: Double, bytesRead: Int64, problems: [VerificationProblem]) {
        self.snapshot = snapshot
        self.source = source
        self.kind = kind
        self.mode = mode
        self.startedAt = startedAt
        self.duration = duration
        self.bytesRead = bytesRead
        self.problems = problems
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        snapshot = try c.decode(SnapshotID.self, forKey: .snapshot)
        source = try c.decodeIfPresent(String.self, forKey: .source)
        kind = try c.decodeIfPresent(SnapshotKind.self, forKey: .kind)
        mode = try c.decode(VerificationMode.self, forKey: .mode)
        startedAt = try c.decode(Date.self, forKey: .startedAt)
        duration = try c.decode(Double.self, forKey: .duration)
        bytesRead = try c.decode(Int64.self, forKey: .bytesRead)
        problems = try c.decode([VerificationProblem].self, forKey: .problems)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(snapshot, forKey: .snapshot)
        try c.encodeIfPresent(source, forKey: .source)
        try c.encodeIfPresent(kind, forKey: .kind)
        try c.encode(mode, forKey: .mode)
        try c.encode(startedAt, forKey: .startedAt)
        try c.encode((duration * 1000).rounded() / 1000, forKey: .duration)
        try c.encode(bytesRead, forKey: .bytesRead)
        try c.encode(problems, forKey: .problems)
        try c.encode(passed ? "passed" : "failed", forKey: .status)
    }

    /// The first problem as one sentence that says what to do next.
    public var summary: String {
        guard let first = problems.first else { return "snapshot \(snapshot) passed \(mode.rawValue) verification" }
        return "snapshot \(snapshot) failed verification: \(first); the stored file is corrupt — restore from an older snapshot (backstop select --before … --explain)"
    }
}

/// The last verification of a snapshot, as the catalog keeps it.
public struct VerificationRecord: Sendable, Equatable {
    public var snapshot: SnapshotID
    public var at: Date
    public var mode: VerificationMode
    public var passed: Bool
    public var firstProblem: String?
}
