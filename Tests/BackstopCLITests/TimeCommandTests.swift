import Foundation
import Testing

/// Times at the edges, end to end (issue 9.10): out of range, before 1970, POSIX `$TZ`.
@Suite struct TimeCommandTests {
    /// Proves: a time beyond what the code can hold was a crash (SIGILL, exit 132) in every
    /// command that takes one, and the crashed backup left its lock behind. Now: 64, the range
    /// stated, nothing written, no lock left.
    @Test func outOfRangeTimesExit64StatingTheRange() throws {
        let s = Scratch()
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        try s.write("t/a", "a\n")
        try s.write("dump.sql", sampleDump())
        try s.write("policy.yaml", "repository: \(s.repo)\njobs:\n  - source: t\n    kind: filesystem\n    paths: [\(s.sub("t"))]\nretention:\n  keep-last: 1\n")
        let commands: [[String]] = [
            ["select", "--at", "@1e20"], ["select", "--at", "@9223372036854775807"], ["select", "--before", "@-1e12"],
            ["backup", s.sub("t"), "--source", "t", "--time", "@1e20"],
            ["backup", "--stdin", "--source", "d", "--time", "10000-01-01"],
            ["event", "add", "x", "--at", "@1e20"],
            ["run", s.sub("policy.yaml"), "--time", "@1e20"],
            ["prune", "--policy", s.sub("policy.yaml"), "--time", "@9223372036854775807"],
        ]
        for args in commands {
            let usesPolicy = args[0] == "run" || args[0] == "prune"
            let r = try CLI.run(args + (usesPolicy ? [] : ["--repo", s.repo]), stdinFile: s.sub("dump.sql"))
            #expect(r.status == 64, "\(args): \(r.status) \(r.stderr.prefix(300))")
            #expect(r.stderr.contains("0001-01-01T00:00:00Z") && r.stderr.contains("9999-12-31T23:59:59.999Z"), "\(args): \(r.stderr.prefix(300))")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: s.repo + "/locks").isEmpty, "no stale lock")
        #expect(try FileManager.default.contentsOfDirectory(atPath: s.repo + "/snapshots").isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: s.repo + "/events").isEmpty)
        // The ends of the range themselves work.
        let first = try CLI.run(["backup", s.sub("t"), "--source", "t", "--time", "@-62135596800", "--repo", s.repo])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.hasPrefix("00010101T000000Z-"))
        let last = try CLI.run(["event", "add", "end", "--at", "9999-12-31T23:59:59.999Z", "--json", "--repo", s.repo])
        #expect((try json(last.stdout) as? [String: Any])?["at"] as? String == "9999-12-31T23:59:59.999Z")
    }

    /// Proves: before 1970 a time keeps its milliseconds (`--time 1969-06-01T00:01:00.777Z` was
    /// recorded as `.776Z`), and `select --at` the completion time `list --json` prints picks
    /// that very snapshot (it picked an older one in 3 of 5 cases).
    @Test func before1970TimesKeepTheirMillisecondsAndSelectExactly() throws {
        let s = Scratch()
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        try s.write("t/a", "a\n")
        let times = ["1901-03-04T05:06:07.001Z", "1950-01-01T00:00:00.999Z", "1969-06-01T00:01:00.777Z",
                     "1969-12-31T23:59:58.123Z", "1969-12-31T23:59:59.999Z"]
        var ids: [String] = []
        for t in times {
            let r = try CLI.run(["backup", s.sub("t"), "--source", "t", "--time", t, "--repo", s.repo])
            #expect(r.status == 0, "\(r.stderr)")
            ids.append(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        let list = try CLI.run(["list", "--json", "--repo", s.repo])
        #expect(list.status == 0, "\(list.stderr)")
        let rows = try #require(((try json(list.stdout) as? [String: Any])?["snapshots"] as? [[String: Any]])
                                ?? (try json(list.stdout) as? [[String: Any]]))
        #expect(rows.compactMap { $0["startedAt"] as? String } == times, "recorded as given")
        for row in rows {
            let id = try #require(row["id"] as? String)
            let completed = try #require(row["completedAt"] as? String)
            let r = try CLI.run(["select", "--at", completed, "--repo", s.repo])
            #expect(r.status == 0 && r.stdout == id + "\n", "--at \(completed): \(r.stdout)\(r.stderr)")
            let show = try CLI.run(["show", id, "--json", "--repo", s.repo])
            #expect((try json(show.stdout) as? [String: Any])?["completedAt"] as? String == completed, "manifest and catalog agree")
        }
        #expect(Set(ids).count == times.count)
    }

    /// Proves: `TZ=UTC+5` means five hours *behind* UTC (POSIX, glibc), so 12:00 local is 17:00Z;
    /// it was read as 07:00Z. `Etc/GMT+5` names the same zone.
    @Test func posixTZOffsetsAreHoursWestOfUTC() throws {
        let s = Scratch()
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        for (tz, local) in [("UTC+5", "2024-03-24T12:00"), ("Etc/GMT+5", "2024-03-24T12:00"), ("EST5", "2024-03-24 12:00")] {
            let r = try CLI.run(["select", "--at", local, "--explain", "--repo", s.repo], environment: ["TZ": tz])
            #expect(r.status == 66)
            #expect(r.stderr.contains("at or before 2024-03-24T17:00:00.000Z"), "TZ=\(tz): \(r.stderr)")
        }
        let rule = try CLI.run(["select", "--at", "2024-03-24T12:00", "--repo", s.repo], environment: ["TZ": "CET-1CEST,M3.5.0,M10.5.0/3"])
        #expect(rule.status == 64 && rule.stderr.contains("daylight saving"), "\(rule.stderr)")
    }
}
