import Foundation
import Testing

/// The 3 a.m. commands end to end: event, select --explain, restore, diff.
@Suite struct RestoreCommandTests {
    /// A repository with nightly dumps and data-directory snapshots around an upgrade event.
    func outage(_ s: Scratch) throws -> (before: [String: String], after: [String: String]) {
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        var before: [String: String] = [:], after: [String: String] = [:]
        for (day, rows) in [(1, 3), (2, 4)] {
            try s.write("data/ibdata1", "pages of day \(day)\n")
            try s.write("dump.sql", sampleDump(rows: rows))
            let fs = try CLI.run(["backup", s.sub("data"), "--source", "datadir", "--time", "2024-03-0\(day)T02:00:00Z", "--repo", s.repo])
            let dump = try CLI.run(["backup", "--stdin", "--source", "dump", "--time", "2024-03-0\(day)T02:05:00Z", "--repo", s.repo], stdinFile: s.sub("dump.sql"))
            #expect(fs.status == 0 && dump.status == 0)
            before["datadir"] = fs.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            before["dump"] = dump.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        #expect(try CLI.run(["event", "add", "upgrade", "--at", "2024-03-02T22:00:00Z", "--note", "11.4", "--repo", s.repo]).status == 0)
        try s.write("data/ibdata1", "pages after the upgrade\n")
        try s.write("dump.sql", sampleDump(rows: 9).replacingOccurrences(of: "(1,'crm')", with: "(1,'CRM')"))
        after["datadir"] = try CLI.run(["backup", s.sub("data"), "--source", "datadir", "--time", "2024-03-03T02:00:00Z", "--repo", s.repo]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        after["dump"] = try CLI.run(["backup", "--stdin", "--source", "dump", "--time", "2024-03-03T02:05:00Z", "--repo", s.repo], stdinFile: s.sub("dump.sql")).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        return (before, after)
    }

    /// The IDs of `source`'s snapshots, oldest first, from `list --json` (which must succeed).
    func ids(_ s: Scratch, source: String) throws -> [String] {
        let r = try CLI.run(["list", "--json", "--source", source, "--repo", s.repo])
        #expect(r.status == 0, "\(r.stderr)")
        let parsed = try json(r.stdout)
        let rows = try #require((parsed as? [[String: Any]]) ?? ((parsed as? [String: Any])?["snapshots"] as? [[String: Any]]),
                                "list --json: \(r.stdout)")
        return rows.compactMap { $0["id"] as? String }
    }

    @Test func selectBeforeTheUpgradeExplainsAndPrintsOnlyTheID() throws {
        let s = Scratch()
        let (before, after) = try outage(s)
        let r = try CLI.run(["select", "--before", "upgrade", "--source", "datadir", "--explain", "--repo", s.repo])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == before["datadir"]! + "\n")
        #expect(r.stderr.contains("event \"upgrade\""))
        #expect(r.stderr.contains("passed over  \(after["datadir"]!)"))
        #expect(r.stderr.contains("taken        \(before["datadir"]!)"))
        #expect(r.stderr.contains("2024-03-02T22:00:00.000Z"))

        // show and verify take the same selection flags.
        let show = try CLI.run(["show", "--before", "upgrade", "--source", "dump", "--json", "--repo", s.repo])
        #expect((try json(show.stdout) as? [String: Any])?["id"] as? String == before["dump"]!)
        let verify = try CLI.run(["verify", "--before", "upgrade", "--source", "datadir", "--json", "--repo", s.repo])
        #expect(verify.status == 0)
        #expect(((try json(verify.stdout) as? [String: Any])?["results"] as? [[String: Any]])?.first?["snapshot"] as? String == before["datadir"]!)

        // $TZ decides: 03:00 on March 2 in Berlin is 02:00Z, before the day-2 dump (02:05Z), so
        // the day-1 dump; the same reading in UTC is after it.
        let dumps = try ids(s, source: "dump")
        #expect(dumps.count == 3 && dumps[1] == before["dump"]!)
        let berlin = try CLI.run(["select", "--at", "2024-03-02 03:00", "--source", "dump", "--repo", s.repo], environment: ["TZ": "Europe/Berlin"])
        #expect(berlin.status == 0 && berlin.stdout == dumps[0] + "\n", "03:00 in Berlin is 02:00Z: the day-1 dump. \(berlin.stderr)")
        let utc = try CLI.run(["select", "--at", "2024-03-02 03:00", "--source", "dump", "--repo", s.repo], environment: ["TZ": "UTC"])
        #expect(utc.status == 0 && utc.stdout == dumps[1] + "\n", "03:00Z: the day-2 dump. \(utc.stderr)")
    }

    @Test func nothingMatchedExits66AndNeverFallsBackToLatest() throws {
        let s = Scratch()
        _ = try outage(s)
        let r = try CLI.run(["select", "--before", "2024-03-01T00:00:00Z", "--source", "dump", "--repo", s.repo])
        #expect(r.status == 66)
        #expect(r.stdout.isEmpty)
        #expect(r.stderr.contains("never falls back to the latest"))
        let badTime = try CLI.run(["select", "--at", "last tuesday", "--repo", s.repo])
        #expect(badTime.status == 64)
        #expect(badTime.stderr.contains("accepted forms"))
        let noEvent = try CLI.run(["select", "--before", "migration", "--repo", s.repo])
        #expect(noEvent.status == 66)
        #expect(noEvent.stderr.contains("known events: upgrade"))
        let gap = try CLI.run(["select", "--at", "2024-03-31T02:30:00", "--repo", s.repo], environment: ["TZ": "Europe/Berlin"])
        #expect(gap.status == 64)
        #expect(gap.stderr.contains("does not exist in Europe/Berlin"))
    }

    @Test func restoreTheDataDirectoryAndOneDatabaseFromBeforeTheUpgrade() throws {
        let s = Scratch()
        let (before, after) = try outage(s)
        let r = try CLI.run(["restore", "--before", "upgrade", "--source", "datadir", "--to", s.sub("restored"), "--repo", s.repo])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("selected \(before["datadir"]!)"))
        #expect(try String(contentsOfFile: s.sub("restored/data/ibdata1"), encoding: .utf8) == "pages of day 2\n")

        let again = try CLI.run(["restore", "--before", "upgrade", "--source", "datadir", "--to", s.sub("restored"), "--repo", s.repo])
        #expect(again.status == 73)
        #expect(again.stderr.contains("not empty"))

        let db = try CLI.run(["restore", "--before", "upgrade", "--source", "dump", "--database", "crm", "--to", "-", "--repo", s.repo])
        #expect(db.status == 0, "\(db.stderr)")
        #expect(db.stdout.contains("Current Database: `crm`") && !db.stdout.contains("Current Database: `shop`"))
        #expect(db.stdout.hasPrefix("-- MariaDB dump") && db.stdout.hasSuffix("-- Dump completed on 2024-03-24 22:00:00\n"))

        let diff = try CLI.run(["diff", before["dump"]!, after["dump"]!, "--json", "--repo", s.repo])
        let changed = ((try json(diff.stdout) as? [String: Any])?["changed"] as? [[String: Any]])?.compactMap { $0["path"] as? String }
        #expect(changed == ["crm", "shop"])
        let unchanged = try CLI.run(["diff", before["datadir"]!, before["datadir"]!, "--repo", s.repo])
        #expect(unchanged.stdout.contains("0 added, 0 removed, 0 changed"))
    }

    @Test func aCorruptChoiceExits65AndFallbackSaysSo() throws {
        let s = Scratch()
        let (before, _) = try outage(s)
        // Format 2: damage a frame object that only this dump uses (day 1's dump shares the rest).
        let frame = try ownFrame(s.repo, before["dump"]!, notIn: try ids(s, source: "dump").filter { $0 != before["dump"]! })
        let size = try Data(contentsOf: URL(fileURLWithPath: framePath(s.repo, frame))).count
        try flipFrameByte(s.repo, frame, at: size / 4, mask: 0x20)
        // --quiet hides the routine notices, never the failure and the fallback.
        let f = try CLI.run(["restore", "--before", "upgrade", "--source", "dump", "--to", s.sub("dump.sql.out"), "--fallback", "--quiet", "--repo", s.repo])
        #expect(f.status == 0, "\(f.stderr)")
        #expect(f.stderr.contains(before["dump"]!) && f.stderr.contains("frames.tsv frame \(frame.index)"))
        #expect(f.stderr.contains("falling back to the next older candidate"))
        #expect(!f.stderr.contains("selected ") && !f.stderr.contains("restored "), "\(f.stderr)")
        #expect(try String(contentsOfFile: s.sub("dump.sql.out"), encoding: .utf8) == sampleDump(rows: 3))
        // Named explicitly, the corrupt snapshot fails with 65 and leaves the target untouched.
        let r = try CLI.run(["restore", before["dump"]!, "--to", s.sub("again.sql"), "--repo", s.repo])
        #expect(r.status == 65)
        #expect(r.stderr.contains("failed verification while restoring: frames.tsv frame \(frame.index)"))
        #expect(!FileManager.default.fileExists(atPath: s.sub("again.sql")))
        // The failure is remembered: a later selection passes over the bad snapshot and takes the
        // one before it (day 1).
        let dumps = try ids(s, source: "dump")
        #expect(dumps.count == 3 && dumps[1] == before["dump"]!)
        let sel = try CLI.run(["select", "--before", "upgrade", "--source", "dump", "--explain", "--repo", s.repo])
        #expect(sel.status == 0, "\(sel.stderr)")
        #expect(sel.stdout == dumps[0] + "\n", "\(sel.stderr)")
        #expect(sel.stderr.contains("passed over  \(before["dump"]!)") && sel.stderr.contains("known bad"), "\(sel.stderr)")
    }

    @Test func eventsAreListedAndRemoved() throws {
        let s = Scratch()
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        let add = try CLI.run(["event", "add", "upgrade", "--at", "@1711317600", "--json", "--repo", s.repo])
        let event = try #require(try json(add.stdout) as? [String: Any])
        #expect(event["at"] as? String == "2024-03-24T22:00:00.000Z")
        let list = try CLI.run(["event", "list", "--repo", s.repo])
        #expect(list.stdout.contains("upgrade"))
        #expect(try CLI.run(["event", "remove", event["id"] as! String, "--repo", s.repo]).status == 0)
        #expect(try CLI.run(["event", "remove", "nope", "--repo", s.repo]).status == 66)
        #expect(try CLI.run(["event", "add", "bad name", "--repo", s.repo]).status == 64)
    }
}
