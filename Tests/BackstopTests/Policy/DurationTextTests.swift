import Foundation
import Testing
@testable import Backstop

@Suite struct DurationTextTests {
    @Test(arguments: [("90s", 90.0), ("10m", 600), ("36h", 129_600), ("0s", 0), ("2w", 1_209_600), ("1y", 31_536_000),
                      ("1h30m", 5400), ("1d12h", 129_600), ("2w3d", 1_468_800), ("1h0m30s", 3630)])
    func acceptsSimpleAndCompoundDurations(_ text: String, _ seconds: Double) {
        #expect(DurationText.seconds(text) == seconds, "\(text)")
    }

    /// A unit twice or out of order, a missing number or unit, a sign, spaces: refused.
    @Test(arguments: ["", "h", "30", "1h30", "30m1h", "1h1h", "-1h", "1.5h", "1 h", "1h 30m", "1x", "１h"])
    func refusesWhatIsNotADuration(_ text: String) {
        #expect(DurationText.seconds(text) == nil, "\(text)")
    }
}
