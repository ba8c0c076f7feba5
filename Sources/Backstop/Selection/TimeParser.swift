import Foundation

/// Why a time given on the command line was not accepted.
public enum TimeParseError: Error, CustomStringConvertible, ExitStatusProviding, Equatable {
    case unrecognized(String)
    case invalidDate(String)
    case nonexistentLocalTime(String, zone: String)
    case ambiguousLocalTime(String, zone: String, first: String, second: String)
    case unknownZone(String)

    public static let acceptedForms = """
    accepted forms: 2024-03-24T22:00:00Z or 2024-03-24T22:00:00+01:00 (RFC 3339), \
    2024-03-24T22:00:00 or "2024-03-24 22:00" (local time in $TZ, default UTC), \
    2024-03-24 (midnight local time), @1711317600 (Unix seconds)
    """

    public var description: String {
        switch self {
        case let .unrecognized(t): return "\"\(t)\" is not a time; \(Self.acceptedForms)"
        case let .invalidDate(t): return "\"\(t)\" is not a valid calendar date or time; \(Self.acceptedForms)"
        case let .nonexistentLocalTime(t, zone):
            return "\"\(t)\" does not exist in \(zone) (the clocks skipped it for daylight saving time); give the time with an offset, e.g. 2024-03-31T02:30:00+01:00"
        case let .ambiguousLocalTime(t, zone, first, second):
            return "\"\(t)\" happens twice in \(zone) (clocks went back): \(first) or \(second); give the time with an offset or in UTC"
        case let .unknownZone(z): return "unknown time zone \"\(z)\" in TZ; use an IANA name such as Europe/Berlin"
        }
    }

    public var exitStatus: ExitStatus { .usage }
}

/// Parses every time Backstop accepts on the command line, in one place.
public struct TimeParser: Sendable {
    public var timeZone: TimeZone

    public init(timeZone: TimeZone) {
        self.timeZone = timeZone
    }

    /// The zone of `$TZ` (default UTC).
    public static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) throws -> TimeParser {
        guard var name = env["TZ"], !name.isEmpty else { return TimeParser(timeZone: TimeZone(identifier: "UTC")!) }
        if name.hasPrefix(":") { name.removeFirst() }
        guard let zone = TimeZone(identifier: name) else { throw TimeParseError.unknownZone(name) }
        return TimeParser(timeZone: zone)
    }

    public func parse(_ raw: String) throws -> Date {
        let text = raw.trimmingCharacters(in: .whitespaces)
        if text.hasPrefix("@") {
            guard let seconds = Double(text.dropFirst()), seconds.isFinite else { throw TimeParseError.unrecognized(raw) }
            return Date(timeIntervalSince1970: seconds)
        }
        let b = Array(text.utf8)
        func digits(_ from: Int, _ count: Int) -> Int? {
            guard from + count <= b.count else { return nil }
            var v = 0
            for i in from..<(from + count) {
                guard b[i] >= 48 && b[i] <= 57 else { return nil }
                v = v * 10 + Int(b[i] - 48)
            }
            return v
        }
        guard let year = digits(0, 4), b.count >= 10, b[4] == 45, let month = digits(5, 2), b[7] == 45,
              let day = digits(8, 2) else { throw TimeParseError.unrecognized(raw) }
        var hour = 0, minute = 0, second = 0
        var fraction = 0.0
        var offset: Int? = nil
        var i = 10
        if i < b.count {
            guard b[i] == 84 || b[i] == 116 || b[i] == 32, let h = digits(i + 1, 2), i + 3 < b.count, b[i + 3] == 58,
                  let m = digits(i + 4, 2) else { throw TimeParseError.unrecognized(raw) }
            hour = h
            minute = m
            i += 6
            if i < b.count, b[i] == 58 {
                guard let s = digits(i + 1, 2) else { throw TimeParseError.unrecognized(raw) }
                second = s
                i += 3
                if i < b.count, b[i] == 46 || b[i] == 44 {
                    var j = i + 1
                    var scale = 0.1
                    while j < b.count, b[j] >= 48, b[j] <= 57 {
                        fraction += Double(b[j] - 48) * scale
                        scale /= 10
                        j += 1
                    }
                    guard j > i + 1 else { throw TimeParseError.unrecognized(raw) }
                    i = j
                }
            }
            if i < b.count {
                if b[i] == 90 || b[i] == 122, i + 1 == b.count {
                    offset = 0
                } else if b[i] == 43 || b[i] == 45, let oh = digits(i + 1, 2), i + 3 < b.count, b[i + 3] == 58,
                          let om = digits(i + 4, 2), i + 6 == b.count, oh < 24, om < 60 {
                    offset = (b[i] == 45 ? -1 : 1) * (oh * 3600 + om * 60)
                } else {
                    throw TimeParseError.unrecognized(raw)
                }
            }
        }
        guard (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61 else {
            throw TimeParseError.invalidDate(raw)
        }
        var utc = Calendar(identifier: .gregorian)
        utc.timeZone = TimeZone(identifier: "UTC")!
        let parts = DateComponents(year: year, month: month, day: day, hour: hour, minute: minute, second: second)
        guard let naive = utc.date(from: parts),
              utc.dateComponents([.year, .month, .day], from: naive) == DateComponents(year: year, month: month, day: day)
        else { throw TimeParseError.invalidDate(raw) }
        if let offset {
            return naive.addingTimeInterval(fraction - Double(offset))
        }
        // Local time: every instant whose local reading is `naive`. None is a gap, two a fold.
        var offsets = Set<Int>()
        for probe in stride(from: -36.0, through: 36.0, by: 12.0) {
            offsets.insert(timeZone.secondsFromGMT(for: naive.addingTimeInterval(probe * 3600)))
        }
        let candidates = offsets.map { naive.addingTimeInterval(-Double($0)) }
            .filter { Double(timeZone.secondsFromGMT(for: $0)) == naive.timeIntervalSince($0) }
            .sorted()
        let zoneName = timeZone.identifier
        switch candidates.count {
        case 0: throw TimeParseError.nonexistentLocalTime(raw, zone: zoneName)
        case 1: return candidates[0].addingTimeInterval(fraction)
        default:
            throw TimeParseError.ambiguousLocalTime(raw, zone: zoneName, first: Timestamp.formatSeconds(candidates[0]),
                                                    second: Timestamp.formatSeconds(candidates[candidates.count - 1]))
        }
    }
}
