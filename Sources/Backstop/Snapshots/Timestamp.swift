import Foundation

/// RFC 3339 in UTC, the one way Backstop writes times: `2024-03-24T22:00:00.123Z`.
///
/// Every time Backstop stores (snapshot start and completion, events, verifications, the
/// catalog's `…Ms` columns) is a whole number of milliseconds since 1970-01-01T00:00:00Z. A
/// `Date` only carries that number: `Date(millisecondsSince1970:)` makes it and
/// `millisecondsSince1970` gives it back unchanged, before 1970 as after, and formatting,
/// parsing and comparisons go through those integers, never through rounded floating point.
public enum Timestamp {
    /// The times Backstop accepts: four-digit years, 0001-01-01T00:00:00.000Z to
    /// 9999-12-31T23:59:59.999Z, as milliseconds since 1970.
    public static let acceptedMilliseconds: ClosedRange<Int64> = -62_135_596_800_000...253_402_300_799_999

    /// Formats `date` in UTC with millisecond precision.
    public static func format(_ date: Date) -> String {
        format(milliseconds: date.millisecondsSince1970)
    }

    /// Formats a time given in milliseconds since 1970, in UTC: `2024-03-24T22:00:00.123Z`.
    public static func format(milliseconds ms: Int64) -> String {
        let (seconds, millis) = floorDivide(ms, 1000)
        let c = civil(seconds: seconds)
        return String(format: "%04lld-%02d-%02dT%02d:%02d:%02d.%03dZ", c.year, c.month, c.day, c.hour, c.minute, c.second, Int(millis))
    }

    /// Formats `date` in UTC, whole seconds (rounded down): `2024-03-24T22:00:00Z`.
    public static func formatSeconds(_ date: Date) -> String {
        let c = civil(seconds: floorDivide(date.millisecondsSince1970, 1000).quotient)
        return String(format: "%04lld-%02d-%02dT%02d:%02d:%02dZ", c.year, c.month, c.day, c.hour, c.minute, c.second)
    }

    /// Parses what `format` writes (and RFC 3339 with any offset, with or without a fraction;
    /// digits beyond milliseconds are dropped). Nil for anything else, such as a time without
    /// an offset.
    public static func parse(_ text: String) -> Date? {
        guard let fields = try? TimeFields(text), let offset = fields.offsetSeconds,
              let ms = fields.milliseconds(offsetSeconds: offset) else { return nil }
        return Date(millisecondsSince1970: ms)
    }

    public static let encoderStrategy: JSONEncoder.DateEncodingStrategy = .custom { date, encoder in
        var c = encoder.singleValueContainer()
        try c.encode(format(date))
    }

    public static let decoderStrategy: JSONDecoder.DateDecodingStrategy = .custom { decoder in
        let c = try decoder.singleValueContainer()
        let text = try c.decode(String.self)
        guard let date = parse(text) else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "not an RFC 3339 time: \(text)")
        }
        return date
    }

    /// The encoder every Backstop JSON file and `--json` output uses: sorted keys, RFC 3339 times.
    public static func jsonEncoder(pretty: Bool = true) -> JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        e.dateEncodingStrategy = encoderStrategy
        return e
    }

    public static func jsonDecoder() -> JSONDecoder {
        let d = JSONDecoder()
        d.dateDecodingStrategy = decoderStrategy
        return d
    }

    /// `date` rounded down to a whole millisecond (for clock readings; a date already on a
    /// millisecond is returned as it is).
    public static func truncatedToMillis(_ date: Date) -> Date {
        Date(millisecondsSince1970: date.millisecondsSince1970)
    }

    // MARK: - Integer calendar arithmetic (proleptic Gregorian, as gmtime and RFC 3339 count)

    /// Quotient and remainder rounded towards negative infinity (`-1 ms` is second `-1`, ms 999).
    static func floorDivide(_ a: Int64, _ b: Int64) -> (quotient: Int64, remainder: Int64) {
        let q = a / b, r = a % b
        return r < 0 ? (q - 1, r + b) : (q, r)
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
    static func days(year: Int64, month: Int, day: Int) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = floorDivide(y, 400).quotient
        let yoe = y - era * 400
        let m = Int64(month)
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + Int64(day) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    struct Civil: Equatable {
        var year: Int64
        var month, day, hour, minute, second: Int
    }

    /// The UTC calendar reading of `seconds` since 1970 (Hinnant's `civil_from_days`).
    static func civil(seconds: Int64) -> Civil {
        let (days, secs) = floorDivide(seconds, 86_400)
        let z = days + 719_468
        let era = floorDivide(z, 146_097).quotient
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = Int(doy - (153 * mp + 2) / 5 + 1)
        let month = Int(mp < 10 ? mp + 3 : mp - 9)
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        return Civil(year: year, month: month, day: day, hour: Int(secs / 3600), minute: Int(secs % 3600 / 60), second: Int(secs % 60))
    }
}

/// The fields of `YYYY-MM-DD[( |T)hh:mm[:ss[.fff…]]][Z|±hh:mm]`, read as integers.
struct TimeFields {
    enum Failure: Error { case unrecognized, invalidDate }

    var year: Int64
    var month, day, hour, minute, second: Int
    /// The fraction of a second, in whole milliseconds (further digits are dropped).
    var millis: Int
    /// Seconds east of UTC when the text gives `Z` or an offset; nil for a local time.
    var offsetSeconds: Int?

    init(_ text: String) throws(Failure) {
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
        // Four digits; five for times a long backup carried past 9999 (read back, never accepted).
        var y = 0
        while y < b.count, y < 5, b[y] >= 48, b[y] <= 57 { y += 1 }
        guard y >= 4, let year = digits(0, y), b.count >= y + 6, b[y] == 45, let month = digits(y + 1, 2), b[y + 3] == 45,
              let day = digits(y + 4, 2) else { throw .unrecognized }
        self.year = Int64(year)
        self.month = month
        self.day = day
        hour = 0; minute = 0; second = 0; millis = 0
        offsetSeconds = nil
        var i = y + 6
        if i < b.count {
            guard b[i] == 84 || b[i] == 116 || b[i] == 32, let h = digits(i + 1, 2), i + 3 < b.count, b[i + 3] == 58,
                  let m = digits(i + 4, 2) else { throw .unrecognized }
            hour = h
            minute = m
            i += 6
            if i < b.count, b[i] == 58 {
                guard let s = digits(i + 1, 2) else { throw .unrecognized }
                second = s
                i += 3
                if i < b.count, b[i] == 46 || b[i] == 44 {
                    var j = i + 1
                    while j < b.count, b[j] >= 48, b[j] <= 57 {
                        if j - i <= 3 { millis = millis * 10 + Int(b[j] - 48) }
                        j += 1
                    }
                    guard j > i + 1 else { throw .unrecognized }
                    for _ in min(j - i - 1, 3)..<3 { millis *= 10 }
                    i = j
                }
            }
            if i < b.count {
                if b[i] == 90 || b[i] == 122, i + 1 == b.count {
                    offsetSeconds = 0
                } else if b[i] == 43 || b[i] == 45, let oh = digits(i + 1, 2), i + 3 < b.count, b[i + 3] == 58,
                          let om = digits(i + 4, 2), i + 6 == b.count, oh < 24, om < 60 {
                    offsetSeconds = (b[i] == 45 ? -1 : 1) * (oh * 3600 + om * 60)
                } else {
                    throw .unrecognized
                }
            }
        }
        let monthDays = [31, year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        guard (1...12).contains(month), (1...monthDays[month - 1]).contains(day), hour < 24, minute < 60, second < 61 else {
            throw .invalidDate
        }
    }

    /// Milliseconds since 1970 of the calendar reading itself (as if it were UTC), seconds only.
    var naiveSeconds: Int64 {
        Timestamp.days(year: year, month: month, day: day) * 86_400 + Int64(hour * 3600 + minute * 60 + second)
    }

    /// Milliseconds since 1970 at `offsetSeconds` east of UTC; nil if that overflows.
    func milliseconds(offsetSeconds: Int) -> Int64? {
        let (s, o1) = naiveSeconds.subtractingReportingOverflow(Int64(offsetSeconds))
        let (ms, o2) = s.multipliedReportingOverflow(by: 1000)
        guard !o1, !o2 else { return nil }
        return ms + Int64(millis)
    }
}

extension Date {
    /// The date `ms` milliseconds after 1970-01-01T00:00:00Z, made in one rounding from the
    /// integer, so that `millisecondsSince1970` gives `ms` back exactly.
    public init(millisecondsSince1970 ms: Int64) {
        self.init(timeIntervalSinceReferenceDate: Double(ms - Date.referenceDateMilliseconds) / 1000)
    }

    /// Whole milliseconds since 1970-01-01T00:00:00Z, rounded down. Exact for every date made
    /// by `init(millisecondsSince1970:)`: a date within a few units in the last place of a
    /// millisecond counts as on it. Saturates at ±2^53 (some 285,000 years) instead of trapping.
    public var millisecondsSince1970: Int64 {
        let x = timeIntervalSinceReferenceDate * 1000
        let limit = 9_007_199_254_740_992.0    // 2^53
        guard x.isFinite, x.magnitude < limit else { return x > 0 ? Int64(limit) : -Int64(limit) }
        let floored = (x + Swift.max(0.001, 4 * x.ulp)).rounded(.down)
        return Int64(floored) + Date.referenceDateMilliseconds
    }

    /// 2001-01-01T00:00:00Z, where `Date` counts from, in milliseconds since 1970.
    static let referenceDateMilliseconds: Int64 = 978_307_200_000
}
