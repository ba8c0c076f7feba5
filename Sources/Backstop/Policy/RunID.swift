import Foundation

/// The ID that one `backstop run` gives every snapshot it takes (`restore --run`, and
/// `BACKSTOP_RUN_ID` in hooks). Same form as a snapshot ID: the run's UTC time and 8 hex
/// characters, `20240324T220000Z-1a2b3c4d`; in JSON (manifests, reports) it is that string.
public struct RunID: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: String

    /// Nil when `rawValue` is not a run ID.
    public init?(rawValue: String) {
        guard SnapshotID(rawValue) != nil else { return nil }
        self.rawValue = rawValue
    }

    /// Nil when `text` is not a run ID.
    public init?(_ text: String) {
        self.init(rawValue: text)
    }

    /// A new ID for a run at `date`.
    public init(startedAt date: Date) {
        rawValue = SnapshotID(startedAt: date).rawValue
    }

    public var description: String { rawValue }

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        let text = try c.decode(String.self)
        guard let id = RunID(text) else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "not a run ID: \(text)")
        }
        self = id
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }
}
