import Foundation

/// The ID that one `backstop run` gives every snapshot it takes (`restore --run`, and
/// `BACKSTOP_RUN_ID` in hooks). Same form as a snapshot ID: the run's UTC time and 8 hex
/// characters, `20240324T220000Z-1a2b3c4d`; in JSON (manifests, reports) it is that string.
public struct RunID: TimestampedID {
    public static let noun = "run ID"
    public let rawValue: String

    public init(checked rawValue: String) { self.rawValue = rawValue }

    /// A new ID for a run at `date`.
    public init(startedAt date: Date) { self = .new(at: date) }
}
