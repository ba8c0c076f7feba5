import Foundation
import Testing

/// Usage errors as a script sees them: JSON when --json was asked for, and messages that name
/// the real mistake.
@Suite struct UsageInputTests {
    // Item 11: every failure is a JSON object on stdout under --json, usage errors included
    // (those found by validate() and ArgumentParser's own parse errors).
    @Test(arguments: [
        (["select", "--json"], "give --at TIME"),
        (["select", "--json", "--latest", "--no-such-flag"], "no-such-flag"),
        (["verify", "--json", "--sample", "0"], "--sample must be at least 1"),
        (["list", "--json"], "no repository given"),
    ])
    func usageErrorsAreJSONUnderJSON(arguments: [String], message: String) throws {
        let s = Scratch()
        let repo = arguments.first == "list" ? [] : ["--repo", s.repo]
        let r = try CLI.run(arguments + repo)
        #expect(r.status == 64, "\(r.stderr)")
        let object = try #require(try json(r.stdout) as? [String: Any], "stdout: \(r.stdout)")
        #expect((object["exitCode"] as? NSNumber)?.intValue == 64)
        #expect((object["error"] as? String)?.contains(message) == true, "\(object)")
        #expect(r.stderr.contains(message), "the message still goes to stderr too")
        let help = try CLI.run(["select", "--help", "--json"])
        #expect(help.status == 0 && !help.stdout.contains("\"exitCode\""), "help is not a failure")
    }

    // Item 12: an event named like a time would never be found by --before NAME.
    @Test func anEventNameThatReadsAsATimeIsRefused() throws {
        let s = Scratch()
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        for name in ["2024-03-25", "2025-12-31"] {
            let r = try CLI.run(["event", "add", name, "--repo", s.repo])
            #expect(r.status == 64, "\(name): \(r.stderr)")
            #expect(r.stderr.contains("reads as a time"), "\(r.stderr)")
        }
        #expect(try CLI.run(["event", "add", "upgrade-2024-03-25", "--repo", s.repo]).status == 0)
        #expect(try CLI.run(["event", "list", "--json", "--repo", s.repo]).stdout.components(separatedBy: "\"name\"").count == 2, "one event only")
    }

    // Item 12: an ambiguous prefix lists the events it matches instead of "no event has ID".
    @Test func anAmbiguousEventPrefixListsTheMatches() throws {
        let s = Scratch()
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        var ids: [String] = []
        for (name, at) in [("upgrade", "2024-03-24T22:00:00Z"), ("rollback", "2024-03-24T23:00:00Z")] {
            let r = try CLI.run(["event", "add", name, "--at", at, "--json", "--repo", s.repo])
            ids.append(try #require((try json(r.stdout) as? [String: Any])?["id"] as? String))
        }
        let r = try CLI.run(["event", "remove", "2024", "--repo", s.repo])
        #expect(r.status == 64, "\(r.stderr)")
        #expect(r.stderr.contains("matches 2 events") && r.stderr.contains(ids[0]) && r.stderr.contains(ids[1]), "\(r.stderr)")
        #expect(!r.stderr.contains("no event has ID"))
        #expect(try CLI.run(["event", "list", "--json", "--repo", s.repo]).stdout.contains("rollback"), "nothing removed")
        #expect(try CLI.run(["event", "remove", "nope", "--repo", s.repo]).status == 66)
    }

    // Item 12: `--sample -1` says what is wrong with the number, not "Missing value".
    @Test func aNegativeSampleIsExplained() throws {
        let s = Scratch()
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        let r = try CLI.run(["verify", "--sample", "-1", "--repo", s.repo])
        #expect(r.status == 64)
        #expect(r.stderr.contains("--sample must be at least 1") && !r.stderr.contains("Missing value"), "\(r.stderr)")
    }
}
