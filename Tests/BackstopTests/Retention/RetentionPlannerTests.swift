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

    /// Rule by rule over random histories and random policies (UTC), each against an oracle
    /// written here from the rule's definition in the README, not from the planner's code:
    /// - keep-last N: exactly the N newest snapshots that are neither partial nor known bad;
    /// - keep-hourly/daily/monthly/yearly N: exactly the newest countable snapshot of each of the
    ///   N newest periods that have one (periods read off the UTC text of the start time), at
    ///   most N, one per period; keep-weekly: at most N, one per ISO week;
    /// - no partial or known-bad snapshot ever fills a keep-last or calendar slot;
    /// - keep-within D, keep-tag: exactly the snapshots they name; the newest verified is kept;
    /// - a removed snapshot has no keep reason, and no rules remove nothing.
    @Test func everyRuleKeepsWhatItsDefinitionSays() {
        var rng = SeededBytes(seed: 99)
        var checkedSlots = 0
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
            let decision = Dictionary(uniqueKeysWithValues: p.decisions.map { ($0.id, $0) })
            #expect(decision.count == snaps.count, "trial \(trial): every snapshot decided once")
            func kept(by rule: String) -> Set<SnapshotID> {
                Set(p.keep.filter { $0.reasons.contains { $0.hasPrefix(rule + " ") || $0 == rule } }.map(\.id))
            }
            func reasons(_ rule: String, _ mine: [CatalogSnapshot]) -> [String] {
                mine.flatMap { decision[$0.id]!.reasons.filter { $0.hasPrefix(rule + " ") } }
            }
            for d in p.remove { #expect(d.reasons.count == 1 && d.reasons[0].hasPrefix("no rule keeps it"), "trial \(trial)") }
            for source in Set(snaps.map(\.source)) {
                let mine = snaps.filter { $0.source == source }.sorted { $0.startedAt > $1.startedAt }
                let countable = mine.filter { $0.warningCount == 0 && verified[$0.id] != false }
                let uncountable = Set(mine.map(\.id)).subtracting(countable.map(\.id))
                let ids = Set(mine.map(\.id))
                if let n = policy.keepLast {
                    #expect(kept(by: "keep-last").intersection(ids) == Set(countable.prefix(n).map(\.id)), "trial \(trial): keep-last \(n) of \(source)")
                }
                // Periods from the UTC text: "2024-03-05T07:…" → hour "2024-03-05T07", day "2024-03-05", …
                for (rule, limit, prefix) in [("keep-hourly", policy.keepHourly, 13), ("keep-daily", policy.keepDaily, 10),
                                              ("keep-monthly", policy.keepMonthly, 7), ("keep-yearly", policy.keepYearly, 4)] {
                    let got = kept(by: rule).intersection(ids)
                    guard let n = limit, n > 0 else { #expect(got.isEmpty, "trial \(trial): \(rule) unset keeps nothing"); continue }
                    var newestPerPeriod: [String: CatalogSnapshot] = [:]
                    var order: [String] = []
                    for s in countable {
                        let period = String(Timestamp.format(s.startedAt).prefix(prefix))
                        if newestPerPeriod[period] == nil { newestPerPeriod[period] = s; order.append(period) }
                    }
                    let want = Set(order.prefix(n).map { newestPerPeriod[$0]!.id })
                    #expect(got == want, "trial \(trial): \(rule) \(n) of \(source)")
                    #expect(got.isDisjoint(with: uncountable), "trial \(trial): \(rule) filled by a partial or known-bad snapshot")
                    #expect(reasons(rule, mine).count == got.count && got.count <= n, "trial \(trial): \(rule): one slot each, at most \(n)")
                    checkedSlots += got.count
                }
                if let n = policy.keepWeekly {
                    let got = kept(by: "keep-weekly").intersection(ids)
                    let weeks = reasons("keep-weekly", mine).map { $0.split(separator: " ")[1] }
                    #expect(got.count <= n && Set(weeks).count == weeks.count, "trial \(trial): keep-weekly \(n): \(weeks)")
                    #expect(got.isDisjoint(with: uncountable), "trial \(trial): keep-weekly filled by a partial or known-bad snapshot")
                }
                if let within = policy.keepWithin, let newest = mine.first?.startedAt {
                    let want = Set(mine.filter { newest.timeIntervalSince($0.startedAt) <= within }.map(\.id))
                    #expect(kept(by: "keep-within").intersection(ids) == want, "trial \(trial): keep-within of \(source)")
                }
                if !policy.keepTags.isEmpty {
                    #expect(kept(by: "keep-tag").intersection(ids) == Set(mine.filter { $0.tags.contains("keep") }.map(\.id)))
                }
                if let newestVerified = mine.first(where: { verified[$0.id] == true }) {
                    #expect(decision[newestVerified.id]!.keep, "trial \(trial): newest verified of \(source) kept")
                }
            }
            if policy.isEmpty { #expect(p.remove.isEmpty, "trial \(trial): no rules removes nothing") }
        }
        #expect(checkedSlots > 500, "the random policies exercised the calendar rules: \(checkedSlots) slots")
        #expect(plan([Self.snap("x", Self.date("2024-01-01"))], RetentionPolicy(), now: Self.date("2024-02-01")).remove.isEmpty)
    }

    /// Proves: days are the policy zone's days across both DST changes. Snapshots at 22:30 and
    /// 23:30 UTC fall on the next day in Berlin (UTC+1 in winter, UTC+2 in summer), except
    /// 22:30Z in winter. Expected sets derived by hand:
    ///
    ///     spring (CET → CEST on Mar 31 at 01:00Z)      autumn (CEST → CET on Oct 27 at 01:00Z)
    ///     S1 Mar 29 22:30Z  Berlin Mar 29 23:30        A1 Oct 25 22:30Z  Berlin Oct 26 00:30
    ///     S2 Mar 29 23:30Z  Berlin Mar 30 00:30        A2 Oct 26 22:30Z  Berlin Oct 27 00:30 (CEST)
    ///     S3 Mar 30 22:30Z  Berlin Mar 30 23:30        A3 Oct 26 23:30Z  Berlin Oct 27 01:30 (CEST)
    ///     S4 Mar 30 23:30Z  Berlin Mar 31 00:30 (CET)  A4 Oct 27 22:30Z  Berlin Oct 27 23:30 (CET)
    ///     S5 Mar 31 22:30Z  Berlin Apr 1 00:30 (CEST)  A5 Oct 27 23:30Z  Berlin Oct 28 00:30
    ///     S6 Mar 31 23:30Z  Berlin Apr 1 01:30
    ///     S7 Apr 1 22:30Z   Berlin Apr 2 00:30
    ///
    /// keep-daily, newest of each day: UTC keeps S2 S4 S6 S7 and A1 A3 A5; Berlin keeps S1 S3 S4
    /// S6 S7 and A1 A4 A5.
    @Test func keepDailyUsesThePolicyZoneAcrossBothDSTChanges() {
        let berlin = TimeZone(identifier: "Europe/Berlin")!
        let spring = ["2024-03-29T22:30:00Z", "2024-03-29T23:30:00Z", "2024-03-30T22:30:00Z", "2024-03-30T23:30:00Z",
                      "2024-03-31T22:30:00Z", "2024-03-31T23:30:00Z", "2024-04-01T22:30:00Z"]
        let autumn = ["2024-10-25T22:30:00Z", "2024-10-26T22:30:00Z", "2024-10-26T23:30:00Z", "2024-10-27T22:30:00Z", "2024-10-27T23:30:00Z"]
        for (times, utcKeeps, berlinKeeps, berlinReasons) in [
            (spring, [1, 3, 5, 6], [0, 2, 3, 5, 6],
             ["keep-daily 2024-03-29 (5 of 10)", "keep-daily 2024-03-30 (4 of 10)", "keep-daily 2024-03-31 (3 of 10)",
              "keep-daily 2024-04-01 (2 of 10)", "keep-daily 2024-04-02 (1 of 10)"]),
            (autumn, [0, 2, 4], [0, 3, 4],
             ["keep-daily 2024-10-26 (3 of 10)", "keep-daily 2024-10-27 (2 of 10)", "keep-daily 2024-10-28 (1 of 10)"]),
        ] {
            let s = times.enumerated().map { Self.snap("db", Self.date($1), suffix: UInt32($0)) }
            let policy = RetentionPolicy(keepDaily: 10)
            let now = Self.date("2024-12-31")
            let inUTC = plan(s, policy, now: now)
            let inBerlin = plan(s, policy, now: now, zone: berlin)
            #expect(inUTC.keep.map(\.id) == utcKeeps.map { s[$0].id }, "UTC: \(keptDays(inUTC))")
            #expect(inBerlin.keep.map(\.id) == berlinKeeps.map { s[$0].id }, "Berlin: \(inBerlin.keep.map(\.reasons))")
            #expect(inBerlin.keep.map { $0.reasons.first! } == berlinReasons)
            #expect(inUTC.keep.map(\.id) != inBerlin.keep.map(\.id))
        }
    }

    /// Proves: a keep-before-event window far beyond year 9999 (`keep-before-event: 9999999999999y`
    /// is a valid policy) no longer crashes the planner while it formats the reason (SIGILL).
    @Test func aHugeKeepBeforeEventWindowDoesNotCrash() {
        let s = Self.nightly("db", from: "2024-04-01T02:00:00Z", days: 3)
        let upgrade = Event(name: "upgrade", at: Self.date("2024-04-02T12:00:00Z"), note: nil)
        let p = plan(s, RetentionPolicy(keepLast: 1, keepBeforeEvent: 9_999_999_999_999 * 31_536_000), now: Self.date("2024-05-01"), events: [upgrade])
        #expect(keptDays(p) == ["2024-04-02", "2024-04-03"])
        #expect(p.keep[0].reasons.first?.hasPrefix("keep-before-event upgrade") == true)
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
        upgrade.id = EventID("20241027T013000Z-0000beef")!
        var migration = Event(name: "old-migration", at: Self.date("2024-03-31T03:00:00Z"), note: nil)
        migration.id = EventID("20240331T030000Z-0000cafe")!
        let events = [upgrade, migration]
        let policy = RetentionPolicy(keepLast: 3, keepDaily: 7, keepWeekly: 4, keepMonthly: 12, keepWithin: 2 * 86400,
                                     keepTags: ["keep-forever"], keepBeforeEvent: 90 * 86400)
        let p = plan(snaps, policy, now: Self.date("2024-12-31T23:00:00Z"), events: events, zone: berlin)
        let golden = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("golden-year.txt").path
        let text = p.keep.map { "\($0.source) \(Timestamp.formatSeconds($0.startedAt)): \($0.reasons.joined(separator: "; "))" }.joined(separator: "\n") + "\n"
        // Derived by hand from the rules, independent of the golden file (day N of 2024 is
        // missing when N is in 100...110 or a multiple of 17; Dec 22 is day 357 = 21 × 17):
        // keep-monthly 12: the last night of each month (all present: Jan 31 is day 31, …, Nov 30
        // day 335); keep-weekly 4: 2025-W01 Dec 31, W52 Dec 29, W51 Dec 21 (Dec 22 missing), W50
        // Dec 15; keep-daily 7 / keep-last 3 / keep-within 2d: Dec 25 to 31; keep-before-event
        // 90d: the upgrade (Oct 27 01:30Z) is 65 days old, so the datadir of Oct 27 01:15Z
        // (done 01:16Z) and the dump of Oct 26 01:45Z (Oct 27's starts after the event); the
        // old migration (Mar 31) is 275 days old, past its 90 days.
        let months = ["01-31", "02-29", "03-31", "04-30", "05-31", "06-30", "07-31", "08-31", "09-30", "10-31", "11-30"]
        let december = ["12-15", "12-21", "12-25", "12-26", "12-27", "12-28", "12-29", "12-30", "12-31"]
        for (source, event) in [("mysql-datadir", "10-27"), ("mysql-dump", "10-26")] {
            let days = p.keep.filter { $0.source == source }.map { String(Timestamp.formatSeconds($0.startedAt).dropFirst(5).prefix(5)) }
            #expect(days == (months + [event] + december).sorted(), "\(source)")
        }
        // Rewriting the golden file is a review step, never a passing run: refused under CI, and
        // locally the run that rewrites it fails so that the diff gets read.
        let env = ProcessInfo.processInfo.environment
        if env["BACKSTOP_UPDATE_GOLDEN"] == "1" {
            if let ci = env["CI"], !ci.isEmpty, ci != "0", ci != "false" {
                Issue.record("BACKSTOP_UPDATE_GOLDEN=1 is refused under CI: the golden file must be the reviewed expectation, not this run's output")
            } else {
                try text.write(toFile: golden, atomically: true, encoding: .utf8)
                Issue.record("rewrote \(golden): review `git diff` and run again without BACKSTOP_UPDATE_GOLDEN")
            }
            return
        }
        #expect(text == (try String(contentsOfFile: golden, encoding: .utf8)))
        #expect(p.decisions.count == snaps.count)
    }
}
