import Foundation
import Testing

/// Progress on stderr: drawn under a terminal (a pseudo-terminal from util-linux's `script`),
/// never into a pipe, JSON status lines with `--json --progress`.
@Suite struct ProgressTests {
    /// Runs `backstop ARGS…` under a pseudo-terminal; returns what the terminal received
    /// (stdout and stderr together, as a user sees them).
    func onTerminal(_ arguments: [String], environment: [String: String] = [:]) throws -> CLI.Result {
        let command = ([CLI.binary] + arguments).map { "'\($0)'" }.joined(separator: " ")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/script")
        p.arguments = ["-qefc", "stty cols 200; exec \(command)", "/dev/null"]
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "BACKSTOP_REPO")
        env["NO_COLOR"] = "1"
        for (k, v) in environment { env[k] = v }
        p.environment = env
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return CLI.Result(status: p.terminationStatus, stdout: String(decoding: data, as: UTF8.self), stderr: "").withoutBinary()
    }

    /// A repository with one 24 MiB file backed up once, then changed (same size): the next
    /// backup reads it again and knows its total from the parent.
    func repositoryWithParent(_ s: Scratch) throws {
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        try sh("mkdir -p '\(s.sub("data"))' && head -c 25165824 /dev/urandom > '\(s.sub("data/big.bin"))'")
        #expect(try CLI.run(["backup", s.sub("data"), "--source", "big", "--repo", s.repo]).status == 0)
        try sh("head -c 25165824 /dev/urandom > '\(s.sub("data/big.bin"))'")
    }

    /// Proves: a backup on a terminal draws elapsed time, done of the parent's total, the
    /// percentage, the rate, the ETA and the current file, in place (\r), and clears it at the end.
    @Test func aBackupDrawsProgressOnATerminal() throws {
        let s = Scratch()
        try repositoryWithParent(s)
        let r = try onTerminal(["backup", s.sub("data"), "--source", "big", "--repo", s.repo], environment: ["NO_COLOR": "1"])
        #expect(r.status == 0, "\(r.stdout)")
        let drawn = r.stdout
        #expect(drawn.contains("\r\u{1B}[K[0:0"), "redrawn in place: \(drawn.debugDescription)")
        #expect(drawn.contains("  backup  "), "\(drawn.debugDescription)")
        #expect(drawn.contains(" / 24.0 MiB"), "total from the parent: \(drawn.debugDescription)")
        #expect(drawn.contains("%  "), "percentage: \(drawn.debugDescription)")
        #expect(drawn.contains("data/big.bin"), "current file: \(drawn.debugDescription)")
    }

    /// Proves: a backup that takes a while (a dump command writing 8 × 2 MiB, 0.3 s apart) shows
    /// its rate and an ETA once half a second has passed, and redraws in place as it goes.
    @Test func aSlowBackupShowsRateAndETA() throws {
        let s = Scratch()
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        let command = "for i in 1 2 3 4 5 6 7 8; do head -c 2097152 /dev/urandom; sleep 0.3; done"
        #expect(try CLI.run(["backup", "--command", command, "--format", "raw", "--source", "slow", "--repo", s.repo]).status == 0)
        let r = try onTerminal(["backup", "--command", command, "--format", "raw", "--source", "slow", "--repo", s.repo])
        #expect(r.status == 0, "\(r.stdout)")
        #expect(r.stdout.contains(" / 16.0 MiB  ") && r.stdout.contains("MiB/s  ETA 0:0"), "\(r.stdout.debugDescription)")
        #expect(r.stdout.components(separatedBy: "\r\u{1B}[K[0:0").count >= 3, "redrawn: \(r.stdout.debugDescription)")
    }

    /// Proves: nothing is drawn when stderr is not a terminal, nor with --quiet on one.
    @Test func nothingIsDrawnWithoutATerminal() throws {
        let s = Scratch()
        try repositoryWithParent(s)
        let piped = try CLI.run(["backup", s.sub("data"), "--source", "big", "--repo", s.repo])
        #expect(piped.status == 0)
        #expect(!piped.stderr.contains("\r") && !piped.stderr.contains("ETA") && !piped.stderr.contains("MiB/s"), "\(piped.stderr.debugDescription)")
        try sh("head -c 25165824 /dev/urandom > '\(s.sub("data/big.bin"))'")
        let quiet = try onTerminal(["backup", s.sub("data"), "--source", "big", "--quiet", "--repo", s.repo])
        #expect(quiet.status == 0)
        #expect(!quiet.stdout.contains("ETA") && !quiet.stdout.contains("\u{1B}[K"), "\(quiet.stdout.debugDescription)")
    }

    /// Proves: `--json --progress` streams JSON status lines on stderr (stdout keeps its one report).
    @Test func jsonProgressStreamsStatusLines() throws {
        let s = Scratch()
        try repositoryWithParent(s)
        let r = try CLI.run(["backup", s.sub("data"), "--source", "big", "--json", "--progress", "--repo", s.repo])
        #expect(r.status == 0, "\(r.stderr)")
        #expect((try json(r.stdout) as? [String: Any])?["id"] != nil, "stdout is the manifest alone")
        let lines = r.stderr.split(separator: "\n").compactMap { try? json(String($0)) as? [String: Any] }.filter { $0["messageType"] as? String == "status" }
        let first = try #require(lines.first, "\(r.stderr)")
        #expect(first["schemaVersion"] as? Int == 1 && first["action"] as? String == "backup")
        let parent = try #require(try listedSnapshots(CLI.run(["list", "--json", "--repo", s.repo]).stdout).first)
        #expect(first["total"] as? Int == parent["bytesIn"] as? Int, "the parent's size: \(first)")
        #expect(first["percentDone"] is Double && first["secondsElapsed"] is Double && first["done"] is Int)
    }

    /// Proves: a restore on a terminal draws bytes written of the snapshot's total, with the
    /// entry being written; and `run` draws each job's progress under its source's name.
    @Test func restoreAndRunDrawProgressOnATerminal() throws {
        let s = Scratch()
        try repositoryWithParent(s)
        let restore = try onTerminal(["restore", "--latest", "--source", "big", "--to", s.sub("out"), "--repo", s.repo])
        #expect(restore.status == 0, "\(restore.stdout)")
        #expect(restore.stdout.contains("  restore  ") && restore.stdout.contains(" / 24.0 MiB") && restore.stdout.contains("data/big.bin"),
                "\(restore.stdout.debugDescription)")
        try s.write("policy.yaml", "repository: \(s.repo)\njobs:\n  - source: big\n    kind: filesystem\n    paths: [\(s.sub("data"))]\n")
        let run = try onTerminal(["run", s.sub("policy.yaml")])
        #expect(run.status == 0, "\(run.stdout)")
        #expect(run.stdout.contains("  run big  ") && run.stdout.contains(" / 24.0 MiB"), "\(run.stdout.debugDescription)")
    }

    /// Proves: a log line during a run (a failing hook after a job drew its progress) clears
    /// the progress line first, so the message starts its own line.
    @Test func aLogLineClearsTheProgressLine() throws {
        let s = Scratch()
        try repositoryWithParent(s)
        try s.write("policy.yaml", """
            repository: \(s.repo)
            jobs:
              - source: big
                kind: filesystem
                paths: [\(s.sub("data"))]
              - source: second
                kind: filesystem
                paths: [\(s.sub("data"))]
                before: exit 3
            """)
        let run = try onTerminal(["run", s.sub("policy.yaml")])
        #expect(run.status == 1, "\(run.stdout)")
        #expect(run.stdout.contains("  run big  "), "\(run.stdout.debugDescription)")
        #expect(run.stdout.contains("\r\u{1B}[Kbackstop: error: before hook of second exited 3"), "\(run.stdout.debugDescription)")
    }

    /// Proves: prune on a terminal shows the snapshots removed of the plan's removals and the
    /// one being removed.
    @Test func pruneDrawsProgressOnATerminal() throws {
        let s = Scratch()
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        try s.write("data/a.txt", "a\n")
        for day in 1...3 {
            #expect(try CLI.run(["backup", s.sub("data"), "--source", "d", "--time", "2024-03-0\(day)T22:00:00Z", "--repo", s.repo]).status == 0)
        }
        let oldest = try #require(try listedSnapshots(CLI.run(["list", "--json", "--repo", s.repo]).stdout).first?["id"] as? String)
        try s.write("policy.yaml", "repository: \(s.repo)\njobs: []\nretention:\n  keep-last: 1\n")
        let r = try onTerminal(["prune", "--policy", s.sub("policy.yaml"), "--time", "2024-03-04T00:00:00Z"])
        #expect(r.status == 0, "\(r.stdout)")
        #expect(r.stdout.contains("  prune  0.0%  0 / 2  ") && r.stdout.contains(oldest), "\(r.stdout.debugDescription)")
    }

    /// Proves: verify on a terminal shows the snapshots done of the total and the current one.
    @Test func verifyDrawsProgressOnATerminal() throws {
        let s = Scratch()
        try repositoryWithParent(s)
        #expect(try CLI.run(["backup", s.sub("data"), "--source", "big", "--repo", s.repo]).status == 0)
        let first = try #require(try listedSnapshots(CLI.run(["list", "--json", "--repo", s.repo]).stdout).first?["id"] as? String)
        let r = try onTerminal(["verify", "--all", "--repo", s.repo], environment: ["NO_COLOR": "1"])
        #expect(r.status == 0, "\(r.stdout)")
        #expect(r.stdout.contains("  verify  0.0%  0 / 2  ") && r.stdout.contains(first), "\(r.stdout.debugDescription)")
    }

    /// Proves: copy on a terminal shows the frames done of the snapshots' total and the
    /// snapshot being copied.
    @Test func copyDrawsProgressOnATerminal() throws {
        let s = Scratch()
        try repositoryWithParent(s)
        let id = try #require(try listedSnapshots(CLI.run(["list", "--json", "--repo", s.repo]).stdout).first?["id"] as? String)
        #expect(try CLI.run(["init", "--repo", s.sub("target")]).status == 0)
        let r = try onTerminal(["copy", "--from", s.repo, "--to", s.sub("target"), "--all"], environment: ["NO_COLOR": "1"])
        #expect(r.status == 0, "\(r.stdout)")
        // "[0:00]  copy  3.8%  1 / 26  ID": a percentage, frames done of the total, the snapshot.
        let drawn = try #require(try Regex("  copy  [0-9.]+%  ([0-9]+) / ([0-9]+)  ([^\\r\\n]+)").firstMatch(in: r.stdout), "\(r.stdout.debugDescription)")
        #expect(drawn.output[3].substring.map(String.init) == id, "\(r.stdout.debugDescription)")
        #expect(Int(drawn.output[2].substring ?? "") ?? 0 > 20, "a 24 MiB snapshot has more than 20 frames: \(r.stdout.debugDescription)")
    }
}

extension CLI.Result {
    /// `script` may turn "\n" into "\r\n"; keep the "\r" that redraws, drop the terminal's.
    func withoutBinary() -> CLI.Result {
        CLI.Result(status: status, stdout: stdout.replacingOccurrences(of: "\r\n", with: "\n"), stderr: stderr)
    }
}
