import Foundation
import Testing

/// A `backstop` child we spawn and reap ourselves, with its exit status (or killing signal).
private final class Child {
    let pid: pid_t
    private var raw: Int32?

    /// `stdinPath` is opened read-only as standard input (default /dev/null); stdout and stderr
    /// go to files in `logDirectory`.
    init(_ arguments: [String], stdinPath: String = "/dev/null", log: String) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdinPath, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, log, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let argv: [UnsafeMutablePointer<CChar>?] = ([CLI.binary] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        // As a shell starts it: no signal blocked (the test runner's threads block some).
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))
        var child: pid_t = 0
        let result = posix_spawn(&child, CLI.binary, &actions, &attributes, argv, environ)
        guard result == 0 else { throw ShellError(command: CLI.binary, status: result, stderr: "posix_spawn failed") }
        pid = child
    }

    func signal(_ signal: Int32) {
        if raw == nil { kill(pid, signal) }
    }

    /// The exit code, or nil when the child died by a signal.
    func exitCode() -> Int32? {
        if raw == nil {
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            raw = status
        }
        return raw! & 0x7f == 0 ? (raw! >> 8) & 0xff : nil
    }
}

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
        let child = try Child(["backup", s.sub("src"), "--source", "big", "--repo", s.repo], log: s.sub("stderr"))
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
        let child = try Child(["backup", "--stdin", "--source", "dump", "--repo", s.repo], stdinPath: fifo, log: s.sub("stderr"))
        let head = Array(sampleDump().utf8.prefix(200))
        _ = head.withUnsafeBytes { write(writer, $0.baseAddress, $0.count) }
        #expect(eventually(60) { !names(s.repo + "/tmp").isEmpty && !names(s.repo + "/locks").isEmpty }, "the backup is waiting for input")
        child.signal(SIGTERM)
        let code = child.exitCode()
        let stderr = (try? String(contentsOfFile: s.sub("stderr"), encoding: .utf8)) ?? ""
        #expect(code == 130, "exit \(String(describing: code)) (nil: killed by the signal): \(stderr)")
        #expect(names(s.repo + "/tmp").isEmpty, "tmp/ cleaned")
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
        let child = try Child(["restore", id, "--to", s.sub("restores/out"), "--repo", s.repo], log: s.sub("stderr"))
        #expect(eventually(60) { names(s.sub("restores")).contains { $0.hasPrefix(".backstop-restore-") } }, "the restore started")
        usleep(100_000)
        child.signal(SIGINT)
        let code = child.exitCode()
        let stderr = (try? String(contentsOfFile: s.sub("stderr"), encoding: .utf8)) ?? ""
        #expect(code == 130, "exit \(String(describing: code)) (nil: killed by the signal): \(stderr)")
        #expect(names(s.sub("restores")).isEmpty, "no staging folder, no target: \(names(s.sub("restores")))")
        let select = try CLI.run(["select", "--latest", "--source", "big", "--repo", s.repo])
        #expect(select.status == 0 && select.stdout == id + "\n", "no failed verification recorded: \(select.stderr)")
    }

    /// Proves (issue 9.5): a restore removes, beside its target, the staging folders and files of
    /// restores that were killed (their pid is not running), and keeps those of live processes.
    @Test func restoreRemovesStagingOfDeadRestores() throws {
        let s = Scratch()
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        try s.write("data/a.txt", "a\n")
        try s.write("dump.sql", sampleDump())
        let fs = try CLI.run(["backup", s.sub("data"), "--source", "data", "--repo", s.repo]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let dump = try CLI.run(["backup", "--stdin", "--source", "dump", "--repo", s.repo], stdinFile: s.sub("dump.sql")).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        // pid 99999999 is beyond pid_max: a dead process. Our own pid is alive.
        try s.write("restores/.backstop-restore-1a2b3c4d-99999999/data/junk", "left by kill -9\n")
        try s.write("restores/out.sql.backstop-restore-99999999", "half a dump\n")
        try s.write("restores/.backstop-restore-1a2b3c4d-\(getpid())/busy", "a live restore\n")
        #expect(try CLI.run(["restore", fs, "--to", s.sub("restores/out"), "--repo", s.repo]).status == 0)
        #expect(try CLI.run(["restore", dump, "--to", s.sub("restores/out.sql"), "--repo", s.repo]).status == 0)
        #expect(names(s.sub("restores")).sorted() == [".backstop-restore-1a2b3c4d-\(getpid())", "out", "out.sql"])
    }
}
