import Foundation
import Testing
@testable import Backstop

@Suite struct RetentionPlannerTests {
    static let utc = TimeZone(identifier: "UTC")!

    static func snap(_ source: String, _ started: Date, suffix: UInt32 = 0, tags: [String] = [], warnings: Int = 0,
                     duration: TimeInterval = 60) -> CatalogSnapshot {
        CatalogSnapshot(id: SnapshotID(startedAt: started, suffix: suffix), kind: .filesystem, source: source, host: "h", tags: tags,
                        runID: nil, startedAt: started, completedAt: started.addingTimeInterval(duration), bytesIn: 0, bytesStored: 0,
                        entryCount: 0, warningCount: warnings)
    }

    static func date(_ text: String) -> Date { try! TimeParser(timeZone: utc).parse(text) }

    /// Nightly at 02:00 UTC from `from` for `days` days.
    static func nightly(_ source: String, from: String, days: Int) -> [CatalogSnapshot] {
        (0..<days).map { snap(source, date(from).addingTimeInterval(Double($0) * 86400), suffix: UInt32($0)) }
    }

    func plan(_ snaps: [CatalogSnapshot], _ policy: RetentionPolicy, now: Date, events: [Event] = [],
              verified: [SnapshotID: Bool] = [:], zone: TimeZone = utc) -> RetentionPlan {
        let candidates = snaps.map { s in
            RetentionCandidate(snapshot: s, lastVerification: verified[s.id].map {
                VerificationRecord(snapshot: s.id, at: now, mode: .quick, passed: $0, firstProblem: $0 ? nil : "corrupt")
            })
        }
        return RetentionPlanner.plan(candidates: candidates, events: events, policy: policy, timeZone: zone, now: now)
    }

    func keptDays(_ p: RetentionPlan) -> [String] {
        p.keep.map { String(Timestamp.formatSeconds($0.startedAt).prefix(10)) }
    }

    @Test func keepLastAndDaily() {
        let s = Self.nightly("db", from: "2024-04-01T02:00:00Z", days: 10)
        let p = plan(s, RetentionPolicy(keepLast: 2, keepDaily: 4), now: Self.date("2024-04-11"))
        #expect(keptDays(p) == ["2024-04-07", "2024-04-08", "2024-04-09", "2024-04-10"])
        #expect(p.keep.last!.reasons.contains("keep-last (1 of 2)") && p.keep.last!.reasons.contains("keep-daily 2024-04-10 (1 of 4)"))
        #expect(p.remove.first!.reasons == ["no rule keeps it"])
    }

    @Test func weeklyBucketsAreISOWeeksAndCountOnlyWeeksWithSnapshots() {
        // April 2024: Monday the 1st. A gap: nothing from the 8th to the 21st.
        let s = Self.nightly("db", from: "2024-04-01T02:00:00Z", days: 7) + Self.nightly("db", from: "2024-04-22T02:00:00Z", days: 9)
        let p = plan(s, RetentionPolicy(keepWeekly: 3), now: Self.date("2024-05-01"))
        // Newest of week 18 (Apr 30), week 17 (Apr 28), week 14 (Apr 7): the empty weeks 15 and 16 do not count.
        #expect(keptDays(p) == ["2024-04-07", "2024-04-28", "2024-04-30"])
        #expect(p.keep.map(\.reasons.first!) == ["keep-weekly 2024-W14 (3 of 3)", "keep-weekly 2024-W17 (2 of 3)", "keep-weekly 2024-W18 (1 of 3)"])
    }

    @Test func monthlyAndYearlyInThePolicyTimeZone() {
        // 23:30 UTC on March 31 is already April 1 in Berlin.
        let s = [Self.snap("db", Self.date("2024-03-31T23:30:00Z"), suffix: 1), Self.snap("db", Self.date("2024-03-30T10:00:00Z"), suffix: 2)]
        let berlin = TimeZone(identifier: "Europe/Berlin")!
        let p = plan(s, RetentionPolicy(keepMonthly: 2), now: Self.date("2024-04-02"), zone: berlin)
        #expect(p.keep.count == 2)
        #expect(p.keep.map(\.reasons.first!) == ["keep-monthly 2024-03 (2 of 2)", "keep-monthly 2024-04 (1 of 2)"])
        let inUTC = plan(s, RetentionPolicy(keepMonthly: 2), now: Self.date("2024-04-02"))
        #expect(inUTC.keep.count == 1, "both are March in UTC")
    }

    @Test func keepWithinIsRelativeToTheNewestSnapshot() {
        let s = Self.nightly("db", from: "2024-04-01T02:00:00Z", days: 10)
        // "now" a month later does not matter: within 2 days of the newest (Apr 10).
        let p = plan(s, RetentionPolicy(keepWithin: 2 * 86400), now: Self.date("2024-05-10"))
        #expect(keptDays(p) == ["2024-04-08", "2024-04-09", "2024-04-10"])
    }

    @Test func keepTagAndKeepBeforeEvent() {
        var s = Self.nightly("db", from: "2024-04-01T02:00:00Z", days: 10)
        s[2].tags = ["keep-forever"]
        let upgrade = Event(name: "upgrade", at: Self.date("2024-04-05T02:00:30Z"), note: nil)
        let policy = RetentionPolicy(keepLast: 1, keepTags: ["keep-forever"], keepBeforeEvent: 30 * 86400)
        let p = plan(s, policy, now: Self.date("2024-04-20"), events: [upgrade])
        // Apr 5's snapshot was still running at the event (02:00 to 02:01): Apr 4 is the one before it.
        #expect(keptDays(p) == ["2024-04-03", "2024-04-04", "2024-04-10"])
        #expect(p.keep[1].reasons.first!.hasPrefix("keep-before-event upgrade"))
        // Ninety days on, the event's protection has lapsed.
        let later = plan(s, policy, now: Self.date("2024-06-01"), events: [upgrade])
        #expect(keptDays(later) == ["2024-04-03", "2024-04-10"])
    }

    @Test func partialAndKnownBadSnapshotsFillNoSlot() {
        var s = Self.nightly("db", from: "2024-04-01T02:00:00Z", days: 5)
        s[4].warningCount = 2     // Apr 5: partial
        let bad = s[3].id         // Apr 4: failed verification
        let p = plan(s, RetentionPolicy(keepLast: 2), now: Self.date("2024-04-06"), verified: [bad: false, s[1].id: true])
        // keep-last 2 skips Apr 5 and Apr 4 and takes Apr 3 and 2; Apr 2 is also the newest verified.
        #expect(keptDays(p) == ["2024-04-02", "2024-04-03"])
        #expect(p.remove.contains { $0.reasons.first!.contains("partial") })
        #expect(p.remove.contains { $0.reasons.first!.contains("known bad") })
    }

    @Test func theNewestVerifiedSnapshotIsNeverRemoved() {
        let s = Self.nightly("db", from: "2024-04-01T02:00:00Z", days: 10)
        let p = plan(s, RetentionPolicy(keepLast: 1), now: Self.date("2024-04-11"), verified: [s[3].id: true, s[1].id: true])
        #expect(keptDays(p) == ["2024-04-04", "2024-04-10"])
        #expect(p.keep[0].reasons == ["newest verified snapshot of db"])
    }

    /// Invariants over random histories and random policies.
    @Test func invariants() {
        var rng = SeededBytes(seed: 99)
        for trial in 0..<200 {
            var snaps: [CatalogSnapshot] = []
            var verified: [SnapshotID: Bool] = [:]
            for source in ["a", "b", "c"].prefix(Int(rng.next() % 3) + 1) {
                var t = Self.date("2024-01-01T00:00:00Z").addingTimeInterval(Double(rng.next() % 86400))
                for i in 0..<Int(rng.next() % 60) {
                    t = t.addingTimeInterval(Double(rng.next() % (3 * 86400)) + 60)
                    var s = Self.snap(source, t, suffix: UInt32(i) &+ UInt32(truncatingIfNeeded: rng.next()), warnings: rng.next() % 7 == 0 ? 1 : 0)
                    if rng.next() % 5 == 0 { s.tags = ["keep"] }
                    snaps.append(s)
                    if rng.next() % 3 == 0 { verified[s.id] = rng.next() % 4 != 0 }
                }
            }
            func maybe(_ n: UInt64) -> Int? { rng.next() % 2 == 0 ? Int(rng.next() % n) : nil }
            let policy = RetentionPolicy(keepLast: maybe(5), keepHourly: maybe(10), keepDaily: maybe(10), keepWeekly: maybe(6),
                                         keepMonthly: maybe(4), keepYearly: maybe(2),
                                         keepWithin: rng.next() % 3 == 0 ? Double(rng.next() % 10) * 86400 : nil,
                                         keepTags: rng.next() % 3 == 0 ? ["keep"] : [],
                                         keepBeforeEvent: rng.next() % 3 == 0 ? 60 * 86400 : nil)
            let events = [Event(name: "e", at: Self.date("2024-02-01T00:00:00Z"), note: nil)]
            let p = plan(snaps, policy, now: Self.date("2024-03-15"), events: events, verified: verified)
            #expect(p.decisions.count == snaps.count, "trial \(trial): every snapshot decided")
            #expect(Set(p.decisions.map(\.id)) == Set(snaps.map(\.id)), "trial \(trial): keep ∪ remove is everything, disjoint")
            #expect(p.keep.allSatisfy { !$0.reasons.isEmpty }, "trial \(trial): every kept snapshot has a reason")
            for source in Set(snaps.map(\.source)) {
                let mine = snaps.filter { $0.source == source }.sorted { ($0.startedAt, $0.id) > ($1.startedAt, $1.id) }
                if let newestVerified = mine.first(where: { verified[$0.id] == true }) {
                    #expect(p.keep.contains { $0.id == newestVerified.id }, "trial \(trial): newest verified of \(source) kept")
                }
                if let n = policy.keepLast, policy.keepHourly == nil, policy.keepDaily == nil, policy.keepWeekly == nil,
                   policy.keepMonthly == nil, policy.keepYearly == nil {
                    let countable = mine.filter { $0.warningCount == 0 && verified[$0.id] != false }
                    for s in countable.prefix(n) { #expect(p.keep.contains { $0.id == s.id }) }
                }
            }
            if policy.isEmpty { #expect(p.remove.isEmpty, "trial \(trial): no rules removes nothing") }
        }
        #expect(plan([Self.snap("x", Self.date("2024-01-01"))], RetentionPolicy(), now: Self.date("2024-02-01")).remove.isEmpty)
    }

    /// Golden: a year of nightly snapshots of two sources with gaps, across both DST changes in
    /// Berlin, with two events, under the shipped nightly policy's rules. The expected plan, with
    /// every reason, is Tests/BackstopTests/Retention/golden-year.txt (reviewed by hand).
    @Test func aYearOfNightlySnapshots() throws {
        let berlin = TimeZone(identifier: "Europe/Berlin")!
        var snaps: [CatalogSnapshot] = []
        var t = Self.date("2024-01-01T01:15:00Z")
        var i: UInt32 = 0
        while t < Self.date("2025-01-01T00:00:00Z") {
            let day = Calendar(identifier: .gregorian).ordinality(of: .day, in: .year, for: t)!
            if !(100...110).contains(day) && day % 17 != 0 {      // an 11-day outage and scattered missed nights
                snaps.append(Self.snap("mysql-datadir", t, suffix: i))
                snaps.append(Self.snap("mysql-dump", t.addingTimeInterval(1800), suffix: i, warnings: day % 29 == 0 ? 1 : 0))
            }
            t = t.addingTimeInterval(86400)
            i += 1
        }
        var upgrade = Event(name: "upgrade", at: Self.date("2024-10-27T01:30:00Z"), note: nil)
        upgrade.id = "20241027T013000Z-0000beef"
        var migration = Event(name: "old-migration", at: Self.date("2024-03-31T03:00:00Z"), note: nil)
        migration.id = "20240331T030000Z-0000cafe"
        let events = [upgrade, migration]
        let policy = RetentionPolicy(keepLast: 3, keepDaily: 7, keepWeekly: 4, keepMonthly: 12, keepWithin: 2 * 86400,
                                     keepTags: ["keep-forever"], keepBeforeEvent: 90 * 86400)
        let p = plan(snaps, policy, now: Self.date("2024-12-31T23:00:00Z"), events: events, zone: berlin)
        let golden = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("golden-year.txt").path
        let text = p.keep.map { "\($0.source) \(Timestamp.formatSeconds($0.startedAt)): \($0.reasons.joined(separator: "; "))" }.joined(separator: "\n") + "\n"
        if ProcessInfo.processInfo.environment["BACKSTOP_UPDATE_GOLDEN"] == "1" {
            try text.write(toFile: golden, atomically: true, encoding: .utf8)
        }
        #expect(text == (try String(contentsOfFile: golden, encoding: .utf8)))
        #expect(p.decisions.count == snaps.count)
    }
}
