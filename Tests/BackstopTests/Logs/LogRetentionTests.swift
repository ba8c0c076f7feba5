import Foundation
import Testing
@testable import Backstop

/// Which archived binlog segments retention keeps.
@Suite struct LogRetentionTests {
    func segment(_ n: Int, daysAgo: Double, now: Date) -> LogSegment {
        let at = now.addingTimeInterval(-daysAgo * 86400)
        return LogSegment(source: "mysql-binlog", kind: .mysqlBinlog, name: String(format: "mysql-bin.%06d", n), partial: false, size: 100,
                          sha256: SHA256Hasher.digest([UInt8(n)]), storedSize: 50, archivedAt: at, firstEventAt: at, lastEventAt: at,
                          closed: true)
    }

    /// Proves: every segment from the oldest kept dump's position on is kept (a kept dump must
    /// reach its successor and now), older ones only within keep-logs, and without keep-logs
    /// nothing is removed; each decision says why.
    @Test func keepsWhatKeptDumpsNeedAndKeepLogs() throws {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let segments = [segment(1, daysAgo: 30, now: now), segment(2, daysAgo: 20, now: now), segment(3, daysAgo: 3, now: now),
                        segment(4, daysAgo: 2, now: now), segment(5, daysAgo: 1, now: now)]
        // The oldest kept dump was taken while mysql-bin.000004 was current; 000003 is within 7 days.
        let kept = [BinlogPosition(file: "mysql-bin.000005", position: 400), BinlogPosition(file: "mysql-bin.000004", position: 1234)]
        let plan = LogRetentionPlanner.plan(segments: segments, keptPositions: kept, oldestKept: nil, keepLogs: 7 * 86400, now: now)
        #expect(plan.map(\.keep) == [false, false, true, true, true])
        #expect(plan[0].reason.contains("mysql-bin.000004"))
        #expect(plan[2].reason.contains("keep-logs"))
        #expect(plan[3].reason.contains("needed by a kept dump"))
        let noRule = LogRetentionPlanner.plan(segments: segments, keptPositions: kept, oldestKept: nil, keepLogs: nil, now: now)
        #expect(noRule.allSatisfy { $0.keep })
        // No kept dump records a position: only keep-logs decides.
        let noDump = LogRetentionPlanner.plan(segments: segments, keptPositions: [], oldestKept: nil, keepLogs: 7 * 86400, now: now)
        #expect(noDump.map(\.keep) == [true, true, true, true, true])
    }
}
