import Foundation

/// The IDs that have a snapshot ID's form, a UTC time and 8 hex characters
/// (`20240324T220000Z-1a2b3c4d`), and are that string in JSON: `RunID`, `EventID`. One
/// validation, one coding, for all of them.
public protocol TimestampedID: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible where RawValue == String {
    /// What the ID names, for messages ("run ID").
    static var noun: String { get }
    /// Wraps a string already checked to have the form.
    init(checked rawValue: String)
}

extension TimestampedID {
    /// Nil when `rawValue` does not have a snapshot ID's form.
    public init?(rawValue: String) {
        guard SnapshotID(rawValue) != nil else { return nil }
        self.init(checked: rawValue)
    }

    /// Nil when `text` does not have a snapshot ID's form.
    public init?(_ text: String) {
        self.init(rawValue: text)
    }

    /// A new ID for `date`.
    static func new(at date: Date) -> Self { Self(checked: SnapshotID(startedAt: date).rawValue) }

    public var description: String { rawValue }

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        let text = try c.decode(String.self)
        guard let id = Self(text) else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "not a \(Self.noun): \(text)")
        }
        self = id
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }
}
