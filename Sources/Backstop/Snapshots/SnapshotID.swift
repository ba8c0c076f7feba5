import Foundation

/// A snapshot's identity: its UTC start time and 8 random hex characters,
/// `20240324T220000Z-1a2b3c4d`. IDs sort by time.
public struct SnapshotID: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: String

    /// Parses a whole ID; nil when `text` is not one (including one naming a time that does not exist).
    public init?(_ text: String) {
        let b = Array(text.utf8)
        guard b.count == 25, b[8] == UInt8(ascii: "T"), b[15] == UInt8(ascii: "Z"), b[16] == UInt8(ascii: "-") else { return nil }
        let digits = b[0..<8] + b[9..<15]
        guard digits.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        guard b[17...].allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }) else { return nil }
        // A time that exists (no month 13, February 30 or second 60): the calendar reading of
        // the second it names gives back the same fields.
        func number(_ r: Range<Int>) -> Int { r.reduce(0) { $0 * 10 + Int(b[$1] - 48) } }
        let named = Timestamp.Civil(year: Int64(number(0..<4)), month: number(4..<6), day: number(6..<8),
                                    hour: number(9..<11), minute: number(11..<13), second: number(13..<15))
        guard (1...12).contains(named.month), (1...31).contains(named.day),
              named.hour < 24, named.minute < 60, named.second < 60 else { return nil }
        let seconds = Timestamp.days(year: named.year, month: named.month, day: named.day) * 86_400
            + Int64(named.hour * 3600 + named.minute * 60 + named.second)
        guard Timestamp.civil(seconds: seconds) == named else { return nil }
        rawValue = text
    }

    /// A new ID for a snapshot started at `date`.
    public init(startedAt date: Date, suffix: UInt32 = UInt32.random(in: 0...UInt32.max)) {
        let p = Timestamp.civil(seconds: Timestamp.floorDivide(date.millisecondsSince1970, 1000).quotient)
        rawValue = String(format: "%04lld%02d%02dT%02d%02d%02dZ-%08x", p.year, p.month, p.day, p.hour, p.minute, p.second, suffix)
    }

    /// The 8 hex characters after the time.
    public var suffix: String { String(rawValue.suffix(8)) }

    public var description: String { rawValue }

    public static func < (a: SnapshotID, b: SnapshotID) -> Bool { a.rawValue < b.rawValue }

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        let text = try c.decode(String.self)
        guard let id = SnapshotID(text) else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "not a snapshot ID: \(text)")
        }
        self = id
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }
}
