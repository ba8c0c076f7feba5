import Foundation

/// Retention as a pure function from snapshots, events, rules, time zone and now to a plan.
///
/// Semantics (restic's `forget`, per source, plus keep-before-event):
/// - Each source is planned on its own, its snapshots ordered newest first by start time.
/// - **keep-last N**: the N newest snapshots.
/// - **keep-hourly/daily/weekly/monthly/yearly N**: walking newest first, the newest snapshot of
///   each hour/day/ISO week/month/year (in the policy's time zone), for the N newest such periods
///   that have a snapshot. Periods without snapshots do not count; counting starts at the newest
///   snapshot, not at now.
/// - **keep-within D**: every snapshot started within D of the source's newest snapshot.
/// - **keep-tag T…**: every snapshot carrying any of the tags.
/// - **keep-before-event D**: for each event at most D old (at `now`), the newest snapshot of the
///   source that completed before the event and is not known bad.
/// - Rules combine by union: a snapshot is kept if any rule keeps it, and every such rule is
///   listed. Partial snapshots (completed with warnings) and known-bad ones (last verification
///   failed) never fill a keep-last or calendar slot, though other rules may keep them.
/// - Always kept: the newest snapshot of each source whose last verification passed, and, when
///   no snapshot of the source has passed one, its newest snapshot. No rules at all: nothing is
///   removed.
public enum RetentionPlanner {
    public static func plan(candidates: [RetentionCandidate], events: [Event], policy: RetentionPolicy,
                            timeZone: TimeZone, now: Date) -> RetentionPlan {
        var decisions: [RetentionDecision] = []
        let bySource = Dictionary(grouping: candidates, by: \.snapshot.source)
        for source in bySource.keys.sorted() {
            decisions += planSource(bySource[source]!, events: events, policy: policy, timeZone: timeZone, now: now)
        }
        decisions.sort { ($0.startedAt, $0.id) < ($1.startedAt, $1.id) }
        return RetentionPlan(now: now, timeZone: timeZone.identifier, decisions: decisions)
    }

    static func planSource(_ group: [RetentionCandidate], events: [Event], policy: RetentionPolicy,
                           timeZone: TimeZone, now: Date) -> [RetentionDecision] {
        let sorted = group.sorted { ($0.snapshot.startedAt, $0.snapshot.id) > ($1.snapshot.startedAt, $1.snapshot.id) }
        var reasons: [SnapshotID: [String]] = [:]
        func keep(_ c: RetentionCandidate, _ why: String) { reasons[c.snapshot.id, default: []].append(why) }

        if policy.isEmpty {
            for c in sorted { keep(c, "no retention rules") }
        }
        let countable = sorted.filter { !$0.isPartial && !$0.isKnownBad }
        if let n = policy.keepLast {
            for (i, c) in countable.prefix(n).enumerated() { keep(c, "keep-last (\(i + 1) of \(n))") }
        }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        var iso = Calendar(identifier: .iso8601)
        iso.timeZone = timeZone
        let buckets: [(String, Int?, (Date) -> String)] = [
            ("keep-hourly", policy.keepHourly, { d in
                let c = calendar.dateComponents([.year, .month, .day, .hour], from: d)
                return String(format: "%04d-%02d-%02d %02d:00", c.year!, c.month!, c.day!, c.hour!) }),
            ("keep-daily", policy.keepDaily, { d in
                let c = calendar.dateComponents([.year, .month, .day], from: d)
                return String(format: "%04d-%02d-%02d", c.year!, c.month!, c.day!) }),
            ("keep-weekly", policy.keepWeekly, { d in
                let c = iso.dateComponents([.yearForWeekOfYear, .weekOfYear], from: d)
                return String(format: "%04d-W%02d", c.yearForWeekOfYear!, c.weekOfYear!) }),
            ("keep-monthly", policy.keepMonthly, { d in
                let c = calendar.dateComponents([.year, .month], from: d)
                return String(format: "%04d-%02d", c.year!, c.month!) }),
            ("keep-yearly", policy.keepYearly, { d in String(format: "%04d", calendar.component(.year, from: d)) }),
        ]
        for (rule, limit, key) in buckets {
            guard let n = limit, n > 0 else { continue }
            var last: String?
            var used = 0
            for c in countable {
                let k = key(c.snapshot.startedAt)
                if k == last { continue }
                last = k
                used += 1
                if used > n { break }
                keep(c, "\(rule) \(k) (\(used) of \(n))")
            }
        }
        if let within = policy.keepWithin, let newest = sorted.first?.snapshot.startedAt {
            for c in sorted where newest.timeIntervalSince(c.snapshot.startedAt) <= within {
                keep(c, "keep-within \(describe(within)) of the newest snapshot")
            }
        }
        if !policy.keepTags.isEmpty {
            for c in sorted {
                let hit = c.snapshot.tags.filter { policy.keepTags.contains($0) }
                if !hit.isEmpty { keep(c, "keep-tag \(hit.joined(separator: ","))") }
            }
        }
        if let window = policy.keepBeforeEvent {
            for e in events where e.at <= now && now.timeIntervalSince(e.at) <= window {
                if let c = sorted.first(where: { $0.snapshot.completedAt < e.at && !$0.isKnownBad }) {
                    keep(c, "keep-before-event \(e.name) \(e.id) (until \(Timestamp.formatSeconds(e.at.addingTimeInterval(window))))")
                }
            }
        }
        // Never remove the newest snapshot that passed verification, nor (if none passed) the newest.
        if let verified = sorted.first(where: { $0.lastVerification?.passed == true }) {
            keep(verified, "newest verified snapshot of \(verified.snapshot.source)")
        } else if let newest = sorted.first {
            keep(newest, "newest snapshot of \(newest.snapshot.source) (none verified yet)")
        }
        return sorted.map { c in
            if let why = reasons[c.snapshot.id] {
                return RetentionDecision(id: c.snapshot.id, source: c.snapshot.source, startedAt: c.snapshot.startedAt, keep: true, reasons: why)
            }
            var why = "no rule keeps it"
            if c.isPartial { why += " (partial: completed with warnings, so it fills no keep-N slot)" }
            if c.isKnownBad { why += " (known bad: its last verification failed)" }
            return RetentionDecision(id: c.snapshot.id, source: c.snapshot.source, startedAt: c.snapshot.startedAt, keep: false, reasons: [why])
        }
    }

    static func describe(_ seconds: TimeInterval) -> String {
        for (unit, size) in [("y", 31_536_000.0), ("w", 604_800), ("d", 86_400), ("h", 3600), ("m", 60)] where seconds >= size && seconds.truncatingRemainder(dividingBy: size) == 0 {
            return "\(Int(seconds / size))\(unit)"
        }
        return "\(Int(seconds))s"
    }
}
