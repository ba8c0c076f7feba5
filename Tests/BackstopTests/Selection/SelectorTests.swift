import Foundation
import Testing
@testable import Backstop

/// Table-driven tests of the selection rules over a catalog of synthetic snapshots.
@Suite struct SelectorTests {
    static let t0 = try! TimeParser(timeZone: TimeZone(identifier: "UTC")!).parse("2024-03-24T00:00:00Z")

    static func at(_ h: Double) -> Date { t0.addingTimeInterval(h * 3600) }

    /// A catalog row, as a committed manifest would give it.
    static func manifest(_ suffix: UInt32, source: String, kind: SnapshotKind = .logical, started: Date, completed: Date,
                         tags: [String] = [], host: String = "db1") -> Manifest {
        Manifest(format: 1, id: SnapshotID(startedAt: started, suffix: suffix), kind: kind, source: source, host: host, tags: tags,
                 runID: nil, paths: [], dumpFormat: nil, startedAt: started, completedAt: completed, bytesIn: 0, bytesStored: 0,
                 entryCount: 0, sha256: SHA256Hasher.digest([]), frames: [], sections: [], files: [], warnings: [], toolVersion: "test")
    }

    /// Nightly dumps at 01:00 (done 01:00:10), 02:00 (done 02:00:10), and one from 03:00 to 03:05.
    static func catalog(_ dir: TemporaryDirectory) throws -> (Catalog, [Manifest]) {
        let c = try Catalog(path: dir.sub("catalog.sqlite"))
        let ms = [
            manifest(1, source: "mysql-dump", started: at(1), completed: at(1).addingTimeInterval(10), tags: ["nightly"]),
            manifest(2, source: "mysql-dump", started: at(2), completed: at(2).addingTimeInterval(10), tags: ["nightly"]),
            manifest(3, source: "mysql-dump", started: at(3), completed: at(3).addingTimeInterval(300), tags: ["nightly", "pre-upgrade"]),
            manifest(4, source: "mysql-datadir", kind: .filesystem, started: at(2.5), completed: at(2.6), host: "db2"),
        ]
        for m in ms { try c.insert(m) }
        return (c, ms)
    }

    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var point: SelectionPoint
        var source: String? = "mysql-dump"
        var expected: UInt32?
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "at exactly a completion takes it", point: .at(at(2).addingTimeInterval(10)), expected: 2),
        Case(name: "at 1 ms before a completion takes the one before", point: .at(at(2).addingTimeInterval(9.999)), expected: 1),
        Case(name: "at 1 ms after a completion takes it", point: .at(at(2).addingTimeInterval(10.001)), expected: 2),
        Case(name: "before exactly a completion is strict", point: .before(at(2).addingTimeInterval(10), event: nil), expected: 1),
        Case(name: "before an event during a running snapshot skips it", point: .before(at(3).addingTimeInterval(60), event: nil), expected: 2),
        Case(name: "before everything matches nothing", point: .before(at(0.5), event: nil), expected: nil),
        Case(name: "latest", point: .latest, expected: 3),
        Case(name: "another source", point: .latest, source: "mysql-datadir", expected: 4),
        Case(name: "unknown source matches nothing", point: .latest, source: "nope", expected: nil),
    ]

    @Test(arguments: cases)
    func rules(c: Case) throws {
        let dir = TemporaryDirectory()
        let (catalog, _) = try Self.catalog(dir)
        let result = try catalog.select(SelectionCriteria(point: c.point, source: c.source))
        #expect(result.chosen?.id.suffix == c.expected.map { String(format: "%08x", $0) }, "\(result.explanation)")
    }

    @Test func theRunningSnapshotIsExplained() throws {
        let dir = TemporaryDirectory()
        let (catalog, ms) = try Self.catalog(dir)
        let result = try catalog.select(SelectionCriteria(point: .before(Self.at(3).addingTimeInterval(60), event: nil), source: "mysql-dump"))
        let running = try #require(result.verdicts.first { $0.id == ms[2].id })
        #expect(running.verdict == .passedOver)
        #expect(running.reason.contains("still running at 2024-03-24T03:01:00.000Z"))
        #expect(result.verdicts.first { $0.id == ms[1].id }?.verdict == .taken)
        #expect(result.verdicts.first { $0.id == ms[0].id }?.verdict == .fallback)
        #expect(result.fallbacks.map(\.id) == [ms[0].id])
        #expect(result.notes.contains { $0.contains("1 snapshots of other sources") })
    }

    @Test func offsetsAndZonesMeanTheSameInstant() throws {
        let dir = TemporaryDirectory()
        let (catalog, ms) = try Self.catalog(dir)
        let berlin = TimeParser(timeZone: TimeZone(identifier: "Europe/Berlin")!)
        // 03:00:10+01:00 == 02:00:10Z: --at takes snapshot 2 whichever way it is written.
        for text in ["2024-03-24T03:00:10+01:00", "2024-03-24T02:00:10Z", "@1711245610"] {
            let r = try catalog.select(SelectionCriteria(point: .at(try berlin.parse(text)), source: "mysql-dump"))
            #expect(r.chosen?.id == ms[1].id, "\(text)")
        }
        let local = try catalog.select(SelectionCriteria(point: .at(try berlin.parse("2024-03-24T03:00:10")), source: "mysql-dump"))
        #expect(local.chosen?.id == ms[1].id)
        #expect(local.explanation.contains("2024-03-24T02:00:10.000Z"), "times echoed in UTC")
    }

    @Test func aKnownBadNewestCandidateIsSkippedWithTheReason() throws {
        let dir = TemporaryDirectory()
        let (catalog, ms) = try Self.catalog(dir)
        try catalog.record(VerificationResult(snapshot: ms[2].id, source: nil, kind: nil, mode: .full, startedAt: Self.at(10), duration: 1,
                                              bytesRead: 0, problems: [VerificationProblem(file: "frames.tsv", location: "frame 3", message: "corrupt")]))
        let r = try catalog.select(SelectionCriteria(point: .latest, source: "mysql-dump"))
        #expect(r.chosen?.id == ms[1].id)
        let bad = try #require(r.verdicts.first { $0.id == ms[2].id })
        #expect(bad.verdict == .passedOver && bad.reason.contains("known bad") && bad.reason.contains("frames.tsv frame 3"))
        // A later passing verification clears it.
        try catalog.record(VerificationResult(snapshot: ms[2].id, source: nil, kind: nil, mode: .full, startedAt: Self.at(11), duration: 1, bytesRead: 0, problems: []))
        #expect(try catalog.select(SelectionCriteria(point: .latest, source: "mysql-dump")).chosen?.id == ms[2].id)
    }

    @Test func verifiedOnlyAndFilters() throws {
        let dir = TemporaryDirectory()
        let (catalog, ms) = try Self.catalog(dir)
        try catalog.record(VerificationResult(snapshot: ms[0].id, source: nil, kind: nil, mode: .quick, startedAt: Self.at(10), duration: 1, bytesRead: 0, problems: []))
        #expect(try catalog.select(SelectionCriteria(point: .latest, source: "mysql-dump", verifiedOnly: true)).chosen?.id == ms[0].id)
        #expect(try catalog.select(SelectionCriteria(point: .latest, tags: ["nightly", "pre-upgrade"])).chosen?.id == ms[2].id)
        #expect(try catalog.select(SelectionCriteria(point: .latest, kind: .filesystem)).chosen?.id == ms[3].id)
        #expect(try catalog.select(SelectionCriteria(point: .latest, host: "db2")).chosen?.id == ms[3].id)
        #expect(try catalog.select(SelectionCriteria(point: .latest, tags: ["nightly", "nope"])).chosen == nil)
    }

    @Test(arguments: Backends.allCases)
    func eventsResolveByNameNewestFirstOrByID(backend: Backends) throws {
        let dir = TemporaryDirectory()
        let t = try backend.makeRepository(dir)
        let repo = t.repo
        let first = try repo.addEvent(name: "upgrade", at: Self.at(1.5), note: nil)
        let second = try repo.addEvent(name: "upgrade", at: Self.at(2.5), note: "retry")
        let parser = TimeParser(timeZone: TimeZone(identifier: "UTC")!)
        #expect(try repo.resolveBefore("upgrade", eventID: nil, parser: parser) == .before(second.at, event: second))
        #expect(try repo.resolveBefore("upgrade", eventID: first.id.rawValue, parser: parser) == .before(first.at, event: first))
        #expect(throws: EventError.self) { try repo.resolveBefore("no-such-event", eventID: nil, parser: parser) }
        // Events survive a catalog rebuild: they live in events/.
        try t.rebuildCatalog()
        let reopened = try t.reopen()
        #expect(try reopened.events().map(\.id) == [first.id, second.id])
        try reopened.removeEvent(first.id.rawValue)
        #expect(try t.reopen().events().map(\.id) == [second.id])
    }
}
