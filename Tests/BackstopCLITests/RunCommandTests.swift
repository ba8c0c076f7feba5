import Foundation
import Testing

/// `backstop run` as cron runs it: policies, hooks, verification, retention, locks, crashes.
@Suite struct RunCommandTests {
    /// A policy over a small data directory and a dump command, in the scratch folder.
    func policy(_ s: Scratch, retention: String = "", extraJobs: String = "", lockTimeout: String = "5s",
                dumpCommand: String? = nil, verify: String = "after-backup: quick") throws -> String {
        try s.write("data/ibdata1", "pages\n")
        try s.write("data/app/t.ibd", "rows\n")
        try s.write("dump.sql", sampleDump())
        let yaml = """
            repository: \(s.repo)
            timezone: UTC
            lock-timeout: \(lockTimeout)
            jobs:
              - source: datadir
                kind: filesystem
                paths: [\(s.sub("data"))]
                tags: [nightly]
                before: echo before >> \(s.sub("hooks.log"))
                after: echo after >> \(s.sub("hooks.log"))
              - source: dump
                kind: logical
                command: \(dumpCommand ?? "cat \(s.sub("dump.sql"))")
                format: mysqldump
            \(extraJobs)
            \(retention)
            verify:
              \(verify)
            """
        try s.write("policy.yaml", yaml)
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        return s.sub("policy.yaml")
    }

    /// This machine's name as gethostname(2) gives it (what a lock records).
    static var hostName: String {
        (try? sh("hostname").trimmingCharacters(in: .whitespacesAndNewlines)) ?? "?"
    }

    /// `list --json`, which must succeed: a failed list is an error, never "no snapshots".
    func snapshots(_ s: Scratch) throws -> [[String: Any]] {
        let r = try CLI.run(["list", "--json", "--repo", s.repo])
        guard r.status == 0 else { throw ShellError(command: "backstop list --json", status: r.status, stderr: r.stderr) }
        let parsed = try json(r.stdout)
        guard let rows = (parsed as? [[String: Any]]) ?? ((parsed as? [String: Any])?["snapshots"] as? [[String: Any]]) else {
            throw ShellError(command: "backstop list --json", status: r.status, stderr: "not a snapshot list: \(r.stdout)")
        }
        return rows
    }

    @Test func aSuccessfulRunIsQuietAndItsSnapshotsShareARunID() throws {
        let s = Scratch()
        let p = try policy(s)
        let r = try CLI.run(["run", p])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.isEmpty && r.stderr.isEmpty, "quiet on success: \(r.stdout)\(r.stderr)")
        let list = try snapshots(s)
        #expect(list.map { $0["source"] as? String } == ["datadir", "dump"])
        let runIDs = Set(list.compactMap { $0["runID"] as? String })
        #expect(runIDs.count == 1)
        #expect(try String(contentsOfFile: s.sub("hooks.log"), encoding: .utf8) == "before\nafter\n")
        #expect(list.allSatisfy { ($0["lastVerification"] as? [String: Any])?["passed"] as? Bool == true })

        let verbose = try CLI.run(["run", p, "--verbose"])
        #expect(verbose.status == 0)
        #expect(verbose.stdout.contains("ok       datadir") && verbose.stdout.contains("verified"))
        #expect(verbose.stderr.contains("Z backstop: info: "), "logs with level and timestamp: \(verbose.stderr)")

        // The set comes back together.
        let runID = runIDs.first!
        let restore = try CLI.run(["restore", "--run", runID, "--to", s.sub("set"), "--repo", s.repo])
        #expect(restore.status == 0, "\(restore.stderr)")
        #expect(restore.stderr.contains("(datadir) to \(s.sub("set/datadir"))") && restore.stderr.contains("(dump) to \(s.sub("set/dump.sql"))"), "\(restore.stderr)")
        #expect(try String(contentsOfFile: s.sub("set/datadir/data/ibdata1"), encoding: .utf8) == "pages\n")
        #expect(try String(contentsOfFile: s.sub("set/dump.sql"), encoding: .utf8) == sampleDump())
    }

    /// Proves (issue 11): `run` finds its repository as `prune` does: `$BACKSTOP_REPO` or
    /// `--repo` naming another repository than the policy's is refused (64) before any hook or
    /// job runs, and nothing is written to either; naming the policy's own (through a symlink)
    /// runs.
    @Test func anotherRepositoryInTheEnvironmentOrInRepoIsRefused() throws {
        let s = Scratch()
        let p = try policy(s)
        let other = s.sub("other")
        #expect(try CLI.run(["init", "--repo", other]).status == 0)
        let viaEnvironment = try CLI.run(["run", p], environment: ["BACKSTOP_REPO": other])
        #expect(viaEnvironment.status == 64, "\(viaEnvironment.stdout)\(viaEnvironment.stderr)")
        #expect(viaEnvironment.stderr.contains("$BACKSTOP_REPO (\(other))") && viaEnvironment.stderr.contains(s.repo), "\(viaEnvironment.stderr)")
        let viaOption = try CLI.run(["run", p, "--repo", other])
        #expect(viaOption.status == 64, "\(viaOption.stdout)\(viaOption.stderr)")
        #expect(viaOption.stderr.contains("--repo \(other)"), "\(viaOption.stderr)")
        #expect(!FileManager.default.fileExists(atPath: s.sub("hooks.log")), "no hook ran")
        for repo in [s.repo, other] {
            #expect(try FileManager.default.contentsOfDirectory(atPath: repo + "/snapshots").isEmpty)
        }
        try FileManager.default.createSymbolicLink(atPath: s.sub("link"), withDestinationPath: s.repo)
        let same = try CLI.run(["run", p], environment: ["BACKSTOP_REPO": s.sub("link")])
        #expect(same.status == 0, "\(same.stderr)")
        #expect(try snapshots(s).count == 2)
    }

    /// Proves (issue 11): `run` opens the repository as every command does, so a snapshot left
    /// out of the catalog (its manifest unreadable, then the catalog rebuilt) is said on stderr, as `list` says it.
    @Test func aSnapshotLeftOutOfTheCatalogIsSaid() throws {
        let s = Scratch()
        let p = try policy(s)
        try s.write("t/a", "a\n")
        let b = try CLI.run(["backup", s.sub("t"), "--source", "t", "--repo", s.repo])
        #expect(b.status == 0, "\(b.stderr)")
        let id = b.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try "{\n".write(toFile: s.repo + "/snapshots/\(id)/manifest.json", atomically: false, encoding: .utf8)
        #expect(try CLI.run(["catalog", "rebuild", "--repo", s.repo]).status == 0)
        let r = try CLI.run(["run", p])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("snapshots/\(id) is left out of the catalog"), "\(r.stderr)")
    }

    /// Review finding 14: `restore --run` checks its directory like every restore target (no
    /// FileManager, which follows symlinks): a file at `--to` was a raw NSCocoaError, exit 1.
    @Test func restoreRunRefusesAFileOrFIFOTargetLikeAnyRestore() throws {
        let s = Scratch()
        #expect(try CLI.run(["run", try policy(s)]).status == 0)
        let runID = try #require(try snapshots(s).first?["runID"] as? String)
        try s.write("occupied", "keep me\n")
        let file = try CLI.run(["restore", "--run", runID, "--to", s.sub("occupied"), "--repo", s.repo])
        #expect(file.status == 73, "\(file.stderr)")
        #expect(file.stderr.contains(s.sub("occupied")) && !file.stderr.contains("NSCocoaErrorDomain"), "\(file.stderr)")
        #expect(try String(contentsOfFile: s.sub("occupied"), encoding: .utf8) == "keep me\n")

        #expect(mkfifo(s.sub("fifo"), 0o644) == 0)
        let fifo = try CLI.run(["restore", "--run", runID, "--to", s.sub("fifo"), "--repo", s.repo, "--force"])
        #expect(fifo.status == 64 && fifo.stderr.contains("FIFO"), "\(fifo.stderr)")

        let forced = try CLI.run(["restore", "--run", runID, "--to", s.sub("occupied"), "--repo", s.repo, "--force"])
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(try String(contentsOfFile: s.sub("occupied/dump.sql"), encoding: .utf8) == sampleDump())
        let aside = try #require(try FileManager.default.contentsOfDirectory(atPath: s.path).first { $0.hasPrefix("occupied.before-restore-") })
        #expect(try String(contentsOfFile: s.sub(aside), encoding: .utf8) == "keep me\n")
    }

    @Test func aFailingBeforeHookSkipsItsJobAndTheAfterHookStillRuns() throws {
        let s = Scratch()
        let extra = """
              - source: mounted
                kind: filesystem
                paths: [\(s.sub("nowhere"))]
                before: "echo 'mount: /dev/vg0/snap: special device does not exist' >&2; exit 32"
                after: echo cleanup >> \(s.sub("cleanup.log"))
            """
        let p = try policy(s, extraJobs: extra)
        let r = try CLI.run(["run", p])
        #expect(r.status == 1)
        #expect(r.stderr.contains("before hook of mounted exited 32") && r.stderr.contains("special device does not exist"))
        #expect(r.stdout.contains("skipped  mounted"))
        #expect(try String(contentsOfFile: s.sub("cleanup.log"), encoding: .utf8) == "cleanup\n")
        #expect(try snapshots(s).count == 2, "the other jobs ran")
    }

    @Test func aMissingSourceAndABrokenDumpGiveTheWorstExitCode() throws {
        let s = Scratch()
        let extra = """
              - source: gone
                kind: filesystem
                paths: [\(s.sub("gone"))]
            """
        let p = try policy(s, extraJobs: extra, dumpCommand: "head -c 200 \(s.sub("dump.sql"))")
        let r = try CLI.run(["run", p, "--json"])
        let summary = try #require(try json(r.stdout) as? [String: Any])
        let jobs = try #require(summary["jobs"] as? [[String: Any]])
        #expect(jobs.map { $0["status"] as? String } == ["ok", "failed", "failed"])
        #expect(jobs.map { $0["exitCode"] as? Int } == [0, 65, 66])
        #expect(r.status == 65, "worst of 0, 65, 66 is 65")
    }

    @Test func anInvalidPolicyRunsNothing() throws {
        let s = Scratch()
        let p = try policy(s, retention: "retention:\n  keep-daily: -3")
        let r = try CLI.run(["run", p])
        #expect(r.status == 64)
        #expect(r.stderr.contains("policy.yaml:") && r.stderr.contains("must not be negative"))
        #expect(try snapshots(s).isEmpty)
        #expect(!FileManager.default.fileExists(atPath: s.sub("hooks.log")))
    }

    /// Proves: two runs at once: the second waits for the policy's lock-timeout, then exits 75
    /// naming the holder.
    @Test func aSecondRunWaitsThenExits75() throws {
        let s = Scratch()
        let p = try policy(s, lockTimeout: "1s", dumpCommand: "sleep 4; cat \(s.sub("dump.sql"))")
        let first = try CLI.startHoldingLock(["run", p], repo: s.repo)
        defer { first.waitUntilExit() }
        let start = Date()
        let second = try CLI.run(["run", p])
        #expect(second.status == 75)
        #expect(second.stderr.contains("locked by pid \(first.processIdentifier) on \(Self.hostName) ") && second.stderr.contains("backstop run"),
                "\(second.stderr)")
        #expect(second.stderr.contains("gone from host \(Self.hostName), remove"), "\(second.stderr)")
        #expect(Date().timeIntervalSince(start) >= 1)
        first.waitUntilExit()
        #expect(first.terminationStatus == 0)
    }

    /// Proves: a run that dies at any step of pruning (before the manifest is removed, after it,
    /// after the catalog row is dropped, after the other objects are deleted) leaves a consistent
    /// repository, and the next run finishes the prune. `BACKSTOP_FAULT` makes the process exit
    /// as SIGKILL would. A snapshot whose manifest is gone is incomplete: never listed, selected
    /// or verified, and removed by the next writer.
    @Test(arguments: [("prune-before-uncommit", 0, 4), ("prune-after-uncommit", 1, 3), ("prune-after-catalog", 1, 3), ("prune-after-delete", 0, 3)])
    func aRunKilledDuringPruneIsFinishedByTheNextRun(fault: String, incompleteLeft: Int, snapshotsAfterCrash: Int) throws {
        let s = Scratch()
        let p = try policy(s, retention: "retention:\n  keep-last: 1")
        for day in 1...3 {
            #expect(try CLI.run(["run", p, "--time", "2024-04-0\(day)T02:00:00Z"]).status == 0)
        }
        #expect(try snapshots(s).count == 2, "keep-last 1 per source")
        // Day 4 (two new snapshots, two old ones due): the process dies at the fault point of
        // the first doomed snapshot.
        let crashed = try CLI.run(["run", p, "--time", "2024-04-04T02:00:00Z"], environment: ["BACKSTOP_FAULT": fault])
        #expect(crashed.status == 137, "\(fault): \(crashed.stderr)")
        let folders = try FileManager.default.contentsOfDirectory(atPath: s.repo + "/snapshots").sorted()
        let committed = folders.filter { FileManager.default.fileExists(atPath: s.repo + "/snapshots/\($0)/manifest.json") }
        #expect(folders.count - committed.count == incompleteLeft, "\(fault): \(folders)")
        #expect(committed.count == snapshotsAfterCrash, "\(fault): \(committed)")
        // Consistent: what is committed verifies, and the catalog (reconciled on open) agrees.
        let verify = try CLI.run(["verify", "--all", "--repo", s.repo])
        #expect(verify.status == 0, "\(fault): \(verify.stdout)\(verify.stderr)")
        #expect(try snapshots(s).compactMap { $0["id"] as? String }.sorted() == committed, "\(fault)")
        // The next run removes the leftover and prunes what is still due.
        let next = try CLI.run(["run", p, "--time", "2024-04-05T02:00:00Z"])
        #expect(next.status == 0, "\(fault): \(next.stderr)")
        #expect(next.stderr.contains("incomplete snapshot") == (incompleteLeft > 0), "\(fault): \(next.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: s.repo + "/tmp").isEmpty)
        let left = try snapshots(s)
        #expect(left.count == 2)
        #expect(left.allSatisfy { ($0["startedAt"] as? String)?.hasPrefix("2024-04-05") == true }, "\(fault)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: s.repo + "/snapshots").count == 2)
    }

    /// Proves the README's hook environment: both hooks of a job see the run's ID and the job's
    /// source, the same run ID the snapshots record.
    @Test func hooksSeeTheRunIDAndTheirSource() throws {
        let s = Scratch()
        let log = s.sub("env.log")
        let extra = """
              - source: second
                kind: filesystem
                paths: [\(s.sub("data/app"))]
                before: echo "before $BACKSTOP_SOURCE $BACKSTOP_RUN_ID" >> \(log)
                after: echo "after $BACKSTOP_SOURCE $BACKSTOP_RUN_ID" >> \(log)
            """
        let p = try policy(s, extraJobs: extra)
        let r = try CLI.run(["run", p, "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let runID = try #require((try json(r.stdout) as? [String: Any])?["runID"] as? String)
        let recorded = Set(try snapshots(s).compactMap { $0["runID"] as? String })
        #expect(recorded == [runID])
        #expect(try String(contentsOfFile: log, encoding: .utf8) == "before second \(runID)\nafter second \(runID)\n")
    }

    /// Proves: a month of nightly runs (driven with --time) ends with exactly the snapshots the
    /// rules promise, the last one before the upgrade among them.
    @Test func aSimulatedMonthKeepsWhatThePlanPromises() throws {
        let s = Scratch()
        let retention = """
            retention:
              keep-daily: 7
              keep-weekly: 4
              keep-before-event: 90d
            """
        let p = try policy(s, retention: retention)
        for day in 1...30 {
            if day == 11 {
                #expect(try CLI.run(["event", "add", "upgrade", "--at", "2024-04-10T12:00:00Z", "--repo", s.repo]).status == 0)
            }
            let r = try CLI.run(["run", p, "--time", String(format: "2024-04-%02dT02:00:00Z", day)])
            #expect(r.status == 0, "day \(day): \(r.stderr)")
        }
        // April 2024 starts on a Monday. Daily: the 24th to the 30th. Weekly (ISO weeks, newest
        // of each, 4 weeks with snapshots): the 30th, 28th, 21st and 14th. Before the upgrade
        // (the 10th at 12:00): the 10th's 02:00 snapshot.
        let expectedDays = ["10", "14", "21", "24", "25", "26", "27", "28", "29", "30"]
        for source in ["datadir", "dump"] {
            let days = try snapshots(s).filter { $0["source"] as? String == source }
                .compactMap { ($0["startedAt"] as? String).map { String($0.dropFirst(8).prefix(2)) } }
            #expect(days == expectedDays, "\(source)")
        }
        let pre = try CLI.run(["select", "--before", "upgrade", "--source", "datadir", "--repo", s.repo])
        #expect(pre.stdout.hasPrefix("20240410T020000Z-"))
        let dry = try CLI.run(["prune", "--policy", p, "--dry-run", "--time", "2024-04-30T02:00:00Z"])
        #expect(dry.status == 0)
        #expect(dry.stdout.contains("dry run: 20 kept, 0 would be removed"))
        #expect(dry.stdout.contains("keep-before-event upgrade"))
    }
}
