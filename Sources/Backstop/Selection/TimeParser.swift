import Foundation

/// Why a time given on the command line was not accepted.
public enum TimeParseError: Error, CustomStringConvertible, ExitStatusProviding, Equatable {
    case unrecognized(String)
    case invalidDate(String)
    case nonexistentLocalTime(String, zone: String)
    case ambiguousLocalTime(String, zone: String, first: String, second: String)
    case unknownZone(String)
    case unsupportedPOSIXZone(String)
    case outOfRange(String)

    public static let acceptedForms = """
    accepted forms: 2024-03-24T22:00:00Z or 2024-03-24T22:00:00+01:00 (RFC 3339), \
    2024-03-24T22:00:00 or "2024-03-24 22:00" (local time in $TZ, default UTC), \
    2024-03-24 (midnight local time), @1711317600 (Unix seconds), \
    from \(Self.acceptedRange)
    """

    /// The range every command accepts, in both spellings.
    public static let acceptedRange = "0001-01-01T00:00:00Z (@-62135596800) to 9999-12-31T23:59:59.999Z (@253402300799.999)"

    public var description: String {
        switch self {
        case let .unrecognized(t): return "\"\(t)\" is not a time; \(Self.acceptedForms)"
        case let .invalidDate(t): return "\"\(t)\" is not a valid calendar date or time; \(Self.acceptedForms)"
        case let .nonexistentLocalTime(t, zone):
            return "\"\(t)\" does not exist in \(zone) (the clocks skipped it for daylight saving time); give the time with an offset, e.g. 2024-03-31T02:30:00+01:00"
        case let .ambiguousLocalTime(t, zone, first, second):
            return "\"\(t)\" happens twice in \(zone) (clocks went back): \(first) or \(second); give the time with an offset or in UTC"
        case let .unknownZone(z): return "unknown time zone \"\(z)\" in TZ; use an IANA name such as Europe/Berlin"
        case let .unsupportedPOSIXZone(z):
            return "TZ=\"\(z)\" is a POSIX rule with daylight saving time, which Backstop does not read; use an IANA name such as America/New_York (or a fixed offset such as UTC+5 or Etc/GMT+5)"
        case let .outOfRange(t): return "\"\(t)\" is outside the times Backstop accepts: \(Self.acceptedRange)"
        }
    }

    public var exitStatus: ExitStatus { .usage }
}

/// Parses every time Backstop accepts on the command line, in one place.
///
/// Times are read into whole milliseconds since 1970 with integer arithmetic (digits beyond the
/// millisecond are dropped), and anything outside `Timestamp.acceptedMilliseconds` is refused.
public struct TimeParser: Sendable {
    public var timeZone: TimeZone

    public init(timeZone: TimeZone) {
        self.timeZone = timeZone
    }

    /// The zone of `$TZ` (default UTC), read as the C library reads it: a zone file name
    /// (`Europe/Berlin`, `:Europe/Berlin`), else a POSIX rule, whose offset counts hours *west*
    /// of UTC (`UTC+5` and `EST5` are five hours behind UTC, like `Etc/GMT+5`).
    public static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) throws -> TimeParser {
        guard var name = env["TZ"], !name.isEmpty else { return TimeParser(timeZone: TimeZone(identifier: "UTC")!) }
        if name.hasPrefix(":") { name.removeFirst() }
        let directory = env["TZDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/usr/share/zoneinfo"
        if name.hasPrefix("/") {    // a zone file named by path, such as /etc/localtime
            let real = URL(fileURLWithPath: name).resolvingSymlinksInPath().path
            if real.hasPrefix(directory + "/") { name = String(real.dropFirst(directory.count + 1)) }
        }
        if name.isEmpty { return TimeParser(timeZone: TimeZone(identifier: "UTC")!) }
        var st = stat()
        let isZoneFile = !name.hasPrefix("/") && !name.split(separator: "/").contains("..")
            && stat(directory + "/" + name, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
        if isZoneFile, let zone = TimeZone(identifier: name) { return TimeParser(timeZone: zone) }
        if let rule = POSIXZoneRule(name) {
            if !rule.hasDaylightSaving {
                guard let zone = TimeZone(secondsFromGMT: -rule.secondsWest) else { throw TimeParseError.unknownZone(name) }
                return TimeParser(timeZone: zone)
            }
            if let zone = TimeZone(identifier: name) { return TimeParser(timeZone: zone) }
            throw TimeParseError.unsupportedPOSIXZone(name)
        }
        guard let zone = TimeZone(identifier: name) else { throw TimeParseError.unknownZone(name) }
        return TimeParser(timeZone: zone)
    }

    public func parse(_ raw: String) throws -> Date {
        Date(millisecondsSince1970: try parseMilliseconds(raw))
    }

    /// Milliseconds since 1970 of `raw`, within `Timestamp.acceptedMilliseconds`.
    public func parseMilliseconds(_ raw: String) throws -> Int64 {
        let text = raw.trimmingCharacters(in: .whitespaces)
        let ms: Int64?
        if text.hasPrefix("@") {
            ms = try Self.unixMilliseconds(text.dropFirst(), raw: raw)
        } else {
            let fields: TimeFields
            do { fields = try TimeFields(text) } catch {
                throw error == .invalidDate ? TimeParseError.invalidDate(raw) : TimeParseError.unrecognized(raw)
            }
            if let offset = fields.offsetSeconds {
                ms = fields.milliseconds(offsetSeconds: offset)
            } else {
                ms = try local(fields, raw: raw)
            }
        }
        guard let ms, Timestamp.acceptedMilliseconds.contains(ms) else { throw TimeParseError.outOfRange(raw) }
        return ms
    }

    /// `@SECONDS`: digits with an optional sign and fraction are read exactly; other numbers
    /// (`1.7e9`) through `Double`. Nil when out of range.
    static func unixMilliseconds(_ number: Substring, raw: String) throws -> Int64? {
        let b = Array(number.utf8)
        guard !b.isEmpty, b.allSatisfy({ ($0 >= 48 && $0 <= 57) || $0 == 43 || $0 == 45 || $0 == 46 || $0 == 69 || $0 == 101 }),
              let value = Double(String(number)) else { throw TimeParseError.unrecognized(raw) }
        let limit = Double(Timestamp.acceptedMilliseconds.upperBound / 1000 + 1)
        guard value.magnitude < limit else { return nil }
        var i = 0
        let negative = b[0] == 45
        if b[0] == 45 || b[0] == 43 { i = 1 }
        var whole: Int64 = 0, millis: Int64 = 0, fractionDigits = 0, droppedNonZero = false
        while i < b.count, b[i] >= 48, b[i] <= 57 { whole = whole * 10 + Int64(b[i] - 48); i += 1 }
        if i < b.count, b[i] == 46 {
            i += 1
            while i < b.count, b[i] >= 48, b[i] <= 57 {
                if fractionDigits < 3 {
                    millis = millis * 10 + Int64(b[i] - 48)
                    fractionDigits += 1
                } else if b[i] != 48 {
                    droppedNonZero = true
                }
                i += 1
            }
        }
        guard i == b.count else {
            return Int64((value * 1000).rounded(.down))    // with an exponent: as precise as a number written that way
        }
        for _ in fractionDigits..<3 { millis *= 10 }
        let magnitude = whole * 1000 + millis
        // Rounded down, like every other time: -1.0005 s is -1001 ms.
        return negative ? -magnitude - (droppedNonZero ? 1 : 0) : magnitude
    }

    /// A local time in `timeZone`: every instant whose local reading is the one given. None is a
    /// gap, two a fold.
    func local(_ fields: TimeFields, raw: String) throws -> Int64? {
        let naive = fields.naiveSeconds
        guard (Timestamp.acceptedMilliseconds.lowerBound / 1000 - 86_400...Timestamp.acceptedMilliseconds.upperBound / 1000 + 86_400)
            .contains(naive) else { return nil }
        func offset(at seconds: Int64) -> Int64 {
            Int64(timeZone.secondsFromGMT(for: Date(millisecondsSince1970: seconds * 1000)))
        }
        var offsets = Set<Int64>()
        for probe in stride(from: Int64(-36), through: 36, by: 12) {
            offsets.insert(offset(at: naive + probe * 3600))
        }
        let candidates = offsets.map { naive - $0 }.filter { offset(at: $0) == naive - $0 }.sorted()
        let zoneName = timeZone.identifier
        switch candidates.count {
        case 0: throw TimeParseError.nonexistentLocalTime(raw, zone: zoneName)
        case 1: return candidates[0] * 1000 + Int64(fields.millis)
        default:
            throw TimeParseError.ambiguousLocalTime(raw, zone: zoneName,
                                                    first: Timestamp.formatSeconds(Date(millisecondsSince1970: candidates[0] * 1000)),
                                                    second: Timestamp.formatSeconds(Date(millisecondsSince1970: candidates[candidates.count - 1] * 1000)))
        }
    }
}

/// A POSIX `TZ` rule, `std offset [dst [offset] [,start,end]]` (`UTC+5`, `<+0530>-5:30`,
/// `EST5EDT,M3.2.0,M11.1.0`). Only what choosing a zone needs: the standard offset, west of
/// UTC as POSIX counts it, and whether a daylight-saving part follows.
struct POSIXZoneRule {
    var secondsWest: Int
    var hasDaylightSaving: Bool

    init?(_ text: String) {
        let b = Array(text.utf8)
        var i = 0
        func isAlpha(_ c: UInt8) -> Bool { (c >= 65 && c <= 90) || (c >= 97 && c <= 122) }
        func isDigit(_ c: UInt8) -> Bool { c >= 48 && c <= 57 }
        if b.first == 60 {    // <…>
            guard let close = b.firstIndex(of: 62), close >= 4,
                  b[1..<close].allSatisfy({ isAlpha($0) || isDigit($0) || $0 == 43 || $0 == 45 }) else { return nil }
            i = close + 1
        } else {
            while i < b.count, isAlpha(b[i]) { i += 1 }
            guard i >= 3 else { return nil }
        }
        var sign = 1
        if i < b.count, b[i] == 43 || b[i] == 45 { sign = b[i] == 45 ? -1 : 1; i += 1 }
        var parts: [Int] = []
        while parts.count < 3 {
            var digits = 0, value = 0
            while i < b.count, isDigit(b[i]), digits < 2 { value = value * 10 + Int(b[i] - 48); digits += 1; i += 1 }
            guard digits > 0 else { return nil }
            parts.append(value)
            guard i < b.count, b[i] == 58 else { break }
            i += 1
        }
        guard parts[0] <= 24, parts.dropFirst().allSatisfy({ $0 < 60 }) else { return nil }
        secondsWest = sign * (parts[0] * 3600 + (parts.count > 1 ? parts[1] * 60 : 0) + (parts.count > 2 ? parts[2] : 0))
        hasDaylightSaving = i < b.count
        if hasDaylightSaving, !(isAlpha(b[i]) || b[i] == 60) { return nil }
    }
}
