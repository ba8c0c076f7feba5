import Foundation

/// RFC 3339 in UTC, the one way Backstop writes times: `2024-03-24T22:00:00.123Z`.
public enum Timestamp {
    /// Formats `date` in UTC with millisecond precision.
    public static func format(_ date: Date) -> String {
        let ms = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        let seconds = ms >= 0 ? ms / 1000 : (ms - 999) / 1000
        let millis = Int(ms - seconds * 1000)
        var t = time_t(seconds)
        var parts = tm()
        gmtime_r(&t, &parts)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                      Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
                      Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), millis)
    }

    /// Formats `date` in UTC, whole seconds: `2024-03-24T22:00:00Z`.
    public static func formatSeconds(_ date: Date) -> String {
        var t = time_t(Int64(date.timeIntervalSince1970.rounded(.down)))
        var parts = tm()
        gmtime_r(&t, &parts)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02dZ",
                      Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
                      Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec))
    }

    /// Parses what `format` writes (and RFC 3339 with any offset, with or without fractions).
    public static func parse(_ text: String) -> Date? {
        let style = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
        if let d = try? style.parse(text) { return d }
        return try? Date.ISO8601FormatStyle().parse(text)
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
}
