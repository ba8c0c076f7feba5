import Foundation

/// A file time exactly as the filesystem and the tar header hold it: whole seconds since the
/// epoch and nanoseconds (0 ..< 1,000,000,000; a time before 1970 has negative seconds and
/// positive nanoseconds, as in `struct timespec`).
///
/// `Date` is a `Double` and keeps only about a microsecond at today's epochs, so entry lists
/// carry file times as this type. In JSON it is RFC 3339 in UTC with nine fractional digits,
/// `2023-11-14T22:13:20.987654321Z`, read back exactly; fewer digits (entry lists written before
/// nanoseconds were kept have milliseconds) and other offsets are accepted.
public struct FileTime: Codable, Sendable, Hashable, Comparable, CustomStringConvertible {
    public var seconds: Int64
    public var nanoseconds: Int32

    public init(seconds: Int64, nanoseconds: Int32) {
        precondition((0..<1_000_000_000).contains(nanoseconds), "nanoseconds out of range: \(nanoseconds)")
        self.seconds = seconds
        self.nanoseconds = nanoseconds
    }

    public init(_ spec: timespec) {
        self.init(seconds: Int64(spec.tv_sec), nanoseconds: Int32(spec.tv_nsec))
    }

    /// The nearest file time to `date` (which is itself only about a microsecond precise).
    public init(_ date: Date) {
        let t = date.timeIntervalSince1970
        var s = t.rounded(.down)
        var ns = ((t - s) * 1e9).rounded()
        if ns >= 1e9 { s += 1; ns -= 1e9 }
        self.init(seconds: Int64(s), nanoseconds: Int32(ns))
    }

    /// The time as a `Date`, rounded to what a `Double` holds.
    public var date: Date { Date(timeIntervalSince1970: Double(seconds) + Double(nanoseconds) / 1e9) }

    public static func < (a: FileTime, b: FileTime) -> Bool {
        (a.seconds, a.nanoseconds) < (b.seconds, b.nanoseconds)
    }

    /// RFC 3339 in UTC with nine fractional digits.
    public var description: String {
        var t = time_t(seconds)
        var parts = tm()
        gmtime_r(&t, &parts)
        let year = Int(parts.tm_year) + 1900
        return (year < 0 ? "-" : "") + String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%09dZ", abs(year),
                      Int(parts.tm_mon) + 1, Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min),
                      Int(parts.tm_sec), Int(nanoseconds))
    }

    /// Parses RFC 3339 (`YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`) exactly; more than nine
    /// fractional digits are refused rather than rounded. Nil when `text` is not of that form, or
    /// its seconds do not fit in an `Int64` (years beyond about ±292 billion).
    public init?(rfc3339 text: String) {
        var bytes = Array(text.utf8)[...]
        func number(_ digits: Int) -> Int64? {
            guard bytes.count >= digits else { return nil }
            var n: Int64 = 0
            for _ in 0..<digits {
                let b = bytes.removeFirst()
                guard (0x30...0x39).contains(b) else { return nil }
                n = n * 10 + Int64(b - 0x30)
            }
            return n
        }
        func expect(_ c: Character) -> Bool {
            guard bytes.first == c.asciiValue else { return false }
            bytes.removeFirst()
            return true
        }
        let negative = expect("-")
        var yearDigits = 0
        while yearDigits < bytes.count, (0x30...0x39).contains(bytes[bytes.startIndex + yearDigits]) { yearDigits += 1 }
        guard yearDigits >= 4, yearDigits <= 12, let y = number(yearDigits), expect("-"), let mo = number(2), expect("-"),
              let d = number(2), expect("T") || expect("t") || expect(" "), let h = number(2), expect(":"),
              let mi = number(2), expect(":"), let s = number(2),
              (1...12).contains(mo), (1...31).contains(d), h < 24, mi < 60, s <= 60 else { return nil }
        var nanos: Int64 = 0
        if expect(".") {
            var digits = 0
            while let b = bytes.first, (0x30...0x39).contains(b) {
                guard digits < 9 else { return nil }
                nanos = nanos * 10 + Int64(b - 0x30)
                digits += 1
                bytes.removeFirst()
            }
            guard digits > 0 else { return nil }
            for _ in digits..<9 { nanos *= 10 }
        }
        var offset: Int64 = 0
        if expect("Z") || expect("z") {
        } else if let sign = bytes.first, sign == 0x2B || sign == 0x2D {
            bytes.removeFirst()
            guard let oh = number(2), expect(":"), let om = number(2), oh < 24, om < 60 else { return nil }
            offset = (oh * 3600 + om * 60) * (sign == 0x2D ? -1 : 1)
        } else {
            return nil
        }
        guard bytes.isEmpty else { return nil }
        // Days from the civil date (Howard Hinnant's algorithm), exact for any year.
        let year = negative ? -y : y
        let yy = mo <= 2 ? year - 1 : year
        let era = (yy >= 0 ? yy : yy - 399) / 400
        let yoe = yy - era * 400
        let doy = (153 * (mo > 2 ? mo - 3 : mo + 9) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        // Twelve-digit years overflow Int64 seconds: a crafted entry list is refused, not a trap.
        let (daySeconds, o1) = days.multipliedReportingOverflow(by: 86_400)
        let (seconds, o2) = daySeconds.addingReportingOverflow(h * 3600 + mi * 60 + s - offset)
        guard !o1, !o2 else { return nil }
        self.init(seconds: seconds, nanoseconds: Int32(nanos))
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        let text = try c.decode(String.self)
        guard let time = FileTime(rfc3339: text) else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "not an RFC 3339 time: \(text)")
        }
        self = time
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}
