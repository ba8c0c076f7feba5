import Foundation

/// The selection rules, as pure functions over candidates (the catalog supplies them).
///
/// - `--at T`: completedAt ≤ T. `--before T|EVENT`: completedAt < T, so a snapshot still running
///   when the event happened is not "before" it. `--latest`: no time bound.
/// - A snapshot whose last verification failed is passed over, with the reason; with
///   `--verified`, so is one never verified.
/// - Nothing acceptable: no choice. There is never a fallback to the latest snapshot.
/// - Fallbacks (the older candidates `restore --fallback` tries) share the chosen snapshot's
///   source and kind, even when the selection did not name a source.
public enum Selector {
    /// Why `snapshot` cannot be chosen regardless of time, or nil if it can.
    static func rejection(_ snapshot: CatalogSnapshot, _ verification: VerificationRecord?, _ criteria: SelectionCriteria) -> String? {
        if let v = verification, !v.passed {
            return "known bad: its last verification (\(v.mode.rawValue), \(Timestamp.formatSeconds(v.at))) failed: \(v.firstProblem ?? "see backstop verify")"
        }
        if criteria.verifiedOnly && verification == nil {
            return "never verified, and --verified accepts only snapshots that passed verification"
        }
        return nil
    }

    static func decide(criteria: SelectionCriteria, cutoff: Date?, tooNew: [CatalogSnapshot], tooNewCount: Int,
                       olderNewestFirst: [(CatalogSnapshot, VerificationRecord?)], notConsidered: Int,
                       fallbackLimit: Int) -> SelectionResult {
        var verdicts: [CandidateVerdict] = []
        var notes: [String] = []
        func verdict(_ s: CatalogSnapshot, _ v: CandidateVerdict.Verdict, _ reason: String) -> CandidateVerdict {
            CandidateVerdict(id: s.id, source: s.source, kind: s.kind, startedAt: s.startedAt, completedAt: s.completedAt, verdict: v, reason: reason)
        }
        // Newest first in the explanation: the too-new ones (farthest first), then the rest.
        if let cutoff {
            let point = Timestamp.format(cutoff)
            for s in tooNew.reversed() {
                let reason: String
                if s.startedAt < cutoff {
                    reason = "still running at \(point) (started \(Timestamp.format(s.startedAt)))"
                } else if case .at = criteria.point {
                    reason = "completed after \(point)"
                } else {
                    reason = s.completedAt == cutoff ? "completed exactly at \(point), not before it" : "completed after \(point)"
                }
                verdicts.append(verdict(s, .passedOver, reason))
            }
            if tooNewCount > tooNew.count {
                notes.append("\(tooNewCount - tooNew.count) more snapshots completed after \(point) (not listed)")
            }
        }
        var chosen: CatalogSnapshot?
        var fallbacks: [CatalogSnapshot] = []
        var otherSource = 0
        for (s, v) in olderNewestFirst {
            if let reason = rejection(s, v, criteria) {
                verdicts.append(verdict(s, .passedOver, reason))
            } else if chosen == nil {
                chosen = s
                let verified = v.map { " (last verified \($0.mode.rawValue) \(Timestamp.formatSeconds($0.at)))" } ?? " (never verified)"
                verdicts.append(verdict(s, .taken, "newest that matches" + verified))
            } else if let c = chosen, s.source != c.source || s.kind != c.kind {
                // A fallback restores the same thing, older: never another source's stream.
                otherSource += 1
            } else if fallbacks.count < fallbackLimit {
                fallbacks.append(s)
                verdicts.append(verdict(s, .fallback, "older; tried next by restore --fallback"))
            }
        }
        if let c = chosen, otherSource > 0 {
            notes.append("\(otherSource) older snapshots of other sources or kinds are not fallbacks: --fallback stays within \(c.source) (\(c.kind.rawValue))")
        }
        if notConsidered > 0 {
            notes.append("\(notConsidered) snapshots of other sources, kinds, tags or hosts not considered")
        }
        return SelectionResult(criteria: criteria, chosen: chosen, fallbacks: fallbacks, verdicts: verdicts, notes: notes)
    }
}

extension Repository {
    /// Resolves `--before`'s argument: a time, or the name of an event (its newest occurrence,
    /// or the one with `eventID`).
    public func resolveBefore(_ text: String, eventID: String?, parser: TimeParser) throws -> SelectionPoint {
        if let eventID {
            guard let e = try events().first(where: { $0.id.rawValue == eventID || $0.id.rawValue.hasSuffix(eventID) }) else {
                throw EventError.notFound(eventID)
            }
            return .before(e.at, event: e)
        }
        do {
            return .before(try parser.parse(text), event: nil)
        } catch let timeError as TimeParseError {
            let all = try events()
            if let e = all.last(where: { $0.name == text }) { return .before(e.at, event: e) }
            if case .unrecognized = timeError { throw EventError.noSuchEventName(text, known: Array(Set(all.map(\.name))).sorted()) }
            throw timeError
        }
    }

    /// Selects a snapshot; throws `SelectionError.noMatch` (exit 66) with the explanation when none fits.
    public func select(_ criteria: SelectionCriteria) throws -> SelectionResult {
        let result = try catalog.select(criteria)
        if result.chosen == nil { throw SelectionError.noMatch(result) }
        return result
    }
}
