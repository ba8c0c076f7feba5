import Foundation
import Testing

/// Waits up to `seconds` for `condition`; false when it never held.
private func eventually(_ seconds: Double, _ condition: () -> Bool) -> Bool {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end {
        if condition() { return true }
        usleep(20_000)
    }
    return condition()
}

private func names(_ dir: String) -> [String] {
    (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
}

/// SIGINT and SIGTERM: every command stops, cleans up what it started (staging folders, `tmp/`,
/// the writer lock) and exits 130; what was stored before is untouched.
@Suite(.serialized) struct SignalTests {
    /// A repository with one large filesystem snapshot of random data (slow enough to interrupt).
    func bigSource(_ s: Scratch) throws {
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        try sh("mkdir -p '\(s.sub("src"))' && head -c 80000000 /dev/urandom > '\(s.sub("src/big.bin"))'")
    }

    /// Proves (issues 9.5, 10.14): a backup interrupted while writing exits 130 (it used to die
    /// by the signal), removes its `tmp/` folder and releases the lock; the next backup works.
    @Test(arguments: [SIGINT, SIGTERM])
    func interruptedBackupCleansUpAndExits130(_ sig: Int32) throws {
        let s = Scratch()
        try bigSource(s)
        let child = try SpawnedCLI(["backup", s.sub("src"), "--source", "big", "--repo", s.repo], log: s.sub("stderr"))
        #expect(eventually(60) { !names(s.repo + "/tmp").isEmpty }, "the backup started writing")
        usleep(100_000)
        child.signal(sig)
        let code = child.exitCode()
        let stderr = (try? String(contentsOfFile: s.sub("stderr"), encoding: .utf8)) ?? ""
        #expect(code == 130, "exit \(String(describing: code)) (nil: killed by the signal): \(stderr)")
        #expect(stderr.contains("interrupted"), "\(stderr)")
        #expect(names(s.repo + "/tmp").isEmpty, "tmp/ cleaned")
        #expect(names(s.repo + "/locks").isEmpty, "lock released")
        #expect(names(s.repo + "/snapshots").isEmpty, "nothing committed")
        try s.write("small/a.txt", "a\n")
        #expect(try CLI.run(["backup", s.sub("small"), "--source", "small", "--repo", s.repo]).status == 0)
    }

    /// Proves (issue 9.5): a backup blocked reading a quiet `--stdin` (no I/O loop to notice the
    /// signal) is still ended with 130 after the grace period, its `tmp/` folder and lock removed.
    @Test func backupBlockedOnStdinExits130() throws {
        let s = Scratch()
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        let fifo = s.sub("dump.fifo")
        #expect(mkfifo(fifo, 0o600) == 0)
        let writer = open(fifo, O_RDWR)   // keeps the FIFO open: the backup never sees end of input
        defer { close(writer) }
        let child = try SpawnedCLI(["backup", "--stdin", "--source", "dump", "--repo", s.repo], stdinPath: fifo, log: s.sub("stderr"))
        let head = Array(sampleDump().utf8.prefix(200))
        _ = head.withUnsafeBytes { write(writer, $0.baseAddress, $0.count) }
        // Format 2 stores nothing before its first frame is cut: the lease says it is running.
        #expect(eventually(60) { !names(s.repo + "/locks").isEmpty }, "the backup is waiting for input")
        usleep(300_000)
        child.signal(SIGTERM)
        let code = child.exitCode()
        let stderr = (try? String(contentsOfFile: s.sub("stderr"), encoding: .utf8)) ?? ""
        #expect(code == 130, "exit \(String(describing: code)) (nil: killed by the signal): \(stderr)")
        #expect(names(s.repo + "/tmp").isEmpty, "tmp/ cleaned")
        #expect(names(s.repo + "/snapshots").isEmpty, "no snapshot folder left")
        #expect(names(s.repo + "/locks").isEmpty, "lock released")
    }

    /// Proves (issue 9.5): an interrupted restore exits 130, removes its staging folder, leaves no
    /// target, and records no failed verification (the snapshot is still selected).
    @Test func interruptedRestoreRemovesStagingAndExits130() throws {
        let s = Scratch()
        try bigSource(s)
        let backup = try CLI.run(["backup", s.sub("src"), "--source", "big", "--repo", s.repo])
        #expect(backup.status == 0, "\(backup.stderr)")
        let id = backup.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try FileManager.default.createDirectory(atPath: s.sub("restores"), withIntermediateDirectories: true)
        let child = try SpawnedCLI(["restore", id, "--to", s.sub("restores/out"), "--repo", s.repo], log: s.sub("stderr"))
        #expect(eventually(60) { names(s.sub("restores")).contains { $0.hasPrefix(".backstop-restore-") } }, "the restore started")
        child.signal(SIGINT)   // at once: the restore is extracting now, and not for long
        let code = child.exitCode()
        let stderr = (try? String(contentsOfFile: s.sub("stderr"), encoding: .utf8)) ?? ""
        #expect(code == 130, "exit \(String(describing: code)) (nil: killed by the signal): \(stderr)")
        #expect(names(s.sub("restores")).isEmpty, "no staging folder, no target: \(names(s.sub("restores")))")
        let select = try CLI.run(["select", "--latest", "--source", "big", "--repo", s.repo])
        #expect(select.status == 0 && select.stdout == id + "\n", "no failed verification recorded: \(select.stderr)")
    }

    /// The boot tag restores put in their staging names: the first 8 hex digits of the boot ID.
    var bootTag: String {
        let id = (try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8)) ?? ""
        let hex = id.filter(\.isHexDigit).lowercased()
        return hex.isEmpty ? "00000000" : String(hex.prefix(8))
    }

    var hostName: String {
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, host.count)
        return String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Proves (review 3): the grace-period cleanup never races a commit. With the fault point,
    /// the command sends itself SIGTERM just before its commit rename and reaches the rename
    /// while the watcher's cleanup is under way; the cleanup (removing the staging folder) and the
    /// rename are ordered, so the command exits 130 with nothing committed and nothing left
    /// behind (it used to rename its staging into place and exit 0, or commit a folder that the
    /// cleanup was emptying).
    @Test(arguments: ["backup", "filesystem restore", "logical restore"])
    func interruptionCleanupNeverRacesTheCommit(_ command: String) throws {
        let s = Scratch()
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        try s.write("src/a.txt", "a\n")
        try s.write("dump.sql", sampleDump())
        let fault = ["BACKSTOP_FAULT": "signal-before-commit"]
        let arguments: [String]
        switch command {
        case "backup":
            arguments = ["backup", s.sub("src"), "--source", "src", "--repo", s.repo]
        case "filesystem restore":
            let id = try CLI.run(["backup", s.sub("src"), "--source", "src", "--repo", s.repo]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            arguments = ["restore", id, "--to", s.sub("restores/out"), "--repo", s.repo]
        default:
            let id = try CLI.run(["backup", "--stdin", "--source", "dump", "--repo", s.repo], stdinFile: s.sub("dump.sql")).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            arguments = ["restore", id, "--to", s.sub("restores/out.sql"), "--repo", s.repo]
        }
        try FileManager.default.createDirectory(atPath: s.sub("restores"), withIntermediateDirectories: true)
        let before = names(s.repo + "/snapshots").sorted()
        let child = try SpawnedCLI(arguments, log: s.sub("stderr"), environment: fault)
        let code = child.exitCode()
        let stderr = (try? String(contentsOfFile: s.sub("stderr"), encoding: .utf8)) ?? ""
        #expect(code == 130, "exit \(String(describing: code)): \(stderr)")
        #expect(names(s.repo + "/snapshots").sorted() == before, "nothing committed")
        #expect(names(s.repo + "/tmp").isEmpty, "tmp/ cleaned")
        #expect(names(s.repo + "/locks").isEmpty, "lock released")
        #expect(names(s.sub("restores")).isEmpty, "no target, no staging: \(names(s.sub("restores")))")
    }

    /// Proves (review 5): Ctrl-C during a restore with `--fallback` is an interruption, not
    /// corruption: exit 130, no "corrupt … falling back" for each candidate, and no failed
    /// verification recorded (the newest snapshot is still the one selected).
    /// Also for a partial restore (`--include`), whose frames are read by another path.
    @Test(arguments: [false, true])
    func interruptedFallbackRestoreIsNotCorruption(partial: Bool) throws {
        let s = Scratch()
        try bigSource(s)
        for _ in 0..<2 {
            let backup = try CLI.run(["backup", s.sub("src"), "--source", "big", "--repo", s.repo])
            #expect(backup.status == 0, "\(backup.stderr)")
        }
        let newest = try CLI.run(["select", "--latest", "--source", "big", "--repo", s.repo]).stdout
        try FileManager.default.createDirectory(atPath: s.sub("restores"), withIntermediateDirectories: true)
        let child = try SpawnedCLI(["restore", "--latest", "--source", "big", "--fallback", "--to", s.sub("restores/out"), "--repo", s.repo]
                              + (partial ? ["--include", "*"] : []), log: s.sub("stderr"))
        #expect(eventually(60) { names(s.sub("restores")).contains { $0.hasPrefix(".backstop-restore-") } }, "the restore started")
        child.signal(SIGINT)   // at once: the restore reads frames now
        let code = child.exitCode()
        let stderr = (try? String(contentsOfFile: s.sub("stderr"), encoding: .utf8)) ?? ""
        #expect(code == 130, "exit \(String(describing: code)): \(stderr)")
        #expect(!stderr.contains("falling back") && !stderr.contains("corrupt"), "\(stderr)")
        #expect(names(s.sub("restores")).isEmpty, "no staging folder, no target: \(names(s.sub("restores")))")
        let select = try CLI.run(["select", "--latest", "--source", "big", "--repo", s.repo])
        #expect(select.status == 0 && select.stdout == newest, "no failed verification recorded: \(select.stdout) \(select.stderr)")
    }

    /// Proves (review 4): SIGTERM during a run stops it: exit 130, the after hook of the job in
    /// progress ran (an LVM snapshot is not left mounted) even though its dump command outlives
    /// the grace period, and the next job's before hook never ran.
    @Test func interruptedRunRunsTheAfterHookAndStops() throws {
        let s = Scratch()
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        let policy = """
        repository: \(s.repo)
        jobs:
          - source: first
            kind: logical
            command: sleep 4; echo data
            format: raw
            before: touch '\(s.sub("before1"))'
            after: touch '\(s.sub("after1"))'
          - source: second
            kind: logical
            command: echo data
            format: raw
            before: touch '\(s.sub("before2"))'
            after: touch '\(s.sub("after2"))'
        """
        try s.write("policy.yaml", policy)
        let child = try SpawnedCLI(["run", s.sub("policy.yaml")], log: s.sub("stderr"))
        // Format 2 writes nothing while the dump command is silent: the lease says the job runs.
        #expect(eventually(60) { FileManager.default.fileExists(atPath: s.sub("before1")) && !names(s.repo + "/locks").isEmpty }, "the first job started")
        usleep(300_000)
        child.signal(SIGTERM)
        let code = child.exitCode()
        let stderr = (try? String(contentsOfFile: s.sub("stderr"), encoding: .utf8)) ?? ""
        #expect(code == 130, "exit \(String(describing: code)): \(stderr)")
        #expect(eventually(5) { FileManager.default.fileExists(atPath: s.sub("after1")) }, "the first job's after hook ran")
        sleep(3)   // the first job's dump command ends; nothing may start after it
        #expect(!FileManager.default.fileExists(atPath: s.sub("before2")), "the second job did not start")
        #expect(names(s.repo + "/snapshots").isEmpty && names(s.repo + "/locks").isEmpty)
    }

    /// Proves (issue 9.5, review 7): a restore removes, beside its target, the staging folders and
    /// files of this host's restores that were killed (their pid is not running) or ran before
    /// the last reboot, and keeps those of live processes and of other hosts (a shared target).
    @Test func restoreRemovesStagingOfDeadRestores() throws {
        let s = Scratch()
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        try s.write("data/a.txt", "a\n")
        try s.write("dump.sql", sampleDump())
        let fs = try CLI.run(["backup", s.sub("data"), "--source", "data", "--repo", s.repo]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let dump = try CLI.run(["backup", "--stdin", "--source", "dump", "--repo", s.repo], stdinFile: s.sub("dump.sql")).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        // pid 99999999 is beyond pid_max: a dead process. Our own pid is alive.
        let me = "\(hostName)-\(bootTag)"
        let otherBoot = bootTag == "00000000" ? "11111111" : "00000000"
        try s.write("restores/.backstop-restore-1a2b3c4d-\(me)-99999999/data/junk", "left by kill -9\n")
        try s.write("restores/out.sql.backstop-restore-\(me)-99999999", "half a dump\n")
        try s.write("restores/.backstop-restore-1a2b3c4d-\(hostName)-\(otherBoot)-\(getpid())/old", "before a reboot\n")
        try s.write("restores/.backstop-restore-1a2b3c4d-\(me)-\(getpid())/busy", "a live restore\n")
        try s.write("restores/.backstop-restore-1a2b3c4d-other-host.example-\(bootTag)-99999999/busy", "another host's live restore\n")
        try s.write("restores/out.sql.backstop-restore-other-host.example-\(bootTag)-99999999", "another host's live restore\n")
        #expect(try CLI.run(["restore", fs, "--to", s.sub("restores/out"), "--repo", s.repo]).status == 0)
        #expect(try CLI.run(["restore", dump, "--to", s.sub("restores/out.sql"), "--repo", s.repo]).status == 0)
        #expect(names(s.sub("restores")).sorted() == [
            ".backstop-restore-1a2b3c4d-\(me)-\(getpid())",
            ".backstop-restore-1a2b3c4d-other-host.example-\(bootTag)-99999999",
            "out", "out.sql", "out.sql.backstop-restore-other-host.example-\(bootTag)-99999999"].sorted())
    }
}
