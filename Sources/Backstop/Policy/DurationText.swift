import Foundation

/// Durations as policies and flags write them: `90s`, `10m`, `36h`, `30d`, `2w`, `1y` (365 days),
/// or several of these, largest unit first, each unit once: `1h30m`, `1d12h`, `2w3d`.
public enum DurationText {
    static let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604_800, "y": 31_536_000]

    /// Seconds, or nil when `text` is not one or more non-negative whole numbers each followed
    /// by a unit, the units strictly decreasing (`1h30m`; not `30m1h`, not `1h1h`).
    public static func seconds(_ text: String) -> TimeInterval? {
        var total = 0.0
        var previousUnit = Double.infinity
        var number = ""
        for c in text {
            if c.isASCII && c.isNumber {
                number.append(c)
            } else if let unit = units[c], !number.isEmpty, unit < previousUnit, let n = Int(number) {
                total += Double(n) * unit
                previousUnit = unit
                number = ""
            } else {
                return nil
            }
        }
        guard number.isEmpty, previousUnit.isFinite else { return nil }
        return total
    }
}
