import Foundation

/// Durations as policies and flags write them: `90s`, `10m`, `36h`, `30d`, `2w`, `1y` (365 days).
public enum DurationText {
    static let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604_800, "y": 31_536_000]

    /// Seconds, or nil when `text` is not a non-negative whole number followed by a unit.
    public static func seconds(_ text: String) -> TimeInterval? {
        guard let unit = text.last.flatMap({ units[$0] }) else { return nil }
        let number = text.dropLast()
        guard !number.isEmpty, number.allSatisfy(\.isASCII), let n = Int(number), n >= 0 else { return nil }
        return Double(n) * unit
    }
}
