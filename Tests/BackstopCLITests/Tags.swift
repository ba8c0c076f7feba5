import Foundation
import Testing

extension Tag {
    /// Needs a live database server (restoring into a server, dumping with the real tools, the
    /// outage drill). Always paired with the `.needsLiveServer` condition, which is what
    /// `scripts/test.sh --fast` acts on: Swift 6.3's `swift test` cannot filter by tag.
    @Tag static var liveServer: Self
    /// Takes minutes (the Galera cluster drill: three servers, state transfers, hot backups). Runs
    /// in the full tier like every live-server test; the tag only names it for whoever reads a
    /// slow run's report.
    @Tag static var slow: Self
}

/// Which tier runs: `scripts/test.sh --fast` sets `BACKSTOP_FAST=1`.
enum TestTier {
    static let isFast = ProcessInfo.processInfo.environment["BACKSTOP_FAST"] == "1"
}

extension Trait where Self == ConditionTrait {
    /// Skips the test or suite, saying why, in the fast tier (`BACKSTOP_FAST=1`); in a full run
    /// it always runs, and fails if its server cannot start.
    static var needsLiveServer: Self {
        .enabled(if: !TestTier.isFast, "needs a live database server: left out of the fast tier (BACKSTOP_FAST=1, scripts/test.sh --fast)")
    }
}
