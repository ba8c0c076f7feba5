import Foundation
import Testing

/// The writer lock: stale locks are recognised (dead pid, reused pid, another boot) and broken
/// by exactly one writer.
@Suite struct LockTests {
    var hostName: String {
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, host.count)
        return String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    func lockJSON(pid: Int32, bootID: String?, processStart: UInt64?) -> String {
        var fields = ["\"command\":\"backstop backup --source old\"", "\"host\":\"\(hostName)\"", "\"pid\":\(pid)",
                      "\"startedAt\":\"2024-01-01T00:00:00.000Z\""]
        if let bootID { fields.append("\"bootID\":\"\(bootID)\"") }
        if let processStart { fields.append("\"processStart\":\(processStart)") }
        return "{" + fields.joined(separator: ",") + "}"
    }

    static func currentBootID() throws -> String {
        try String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Proves (issue 9.11): a lock naming a pid that is alive but belongs to another process (the
    /// holder's start time or the boot ID differ) is stale: the next writer breaks it with a
    /// warning instead of waiting and exiting 75. The live pid is this test process's own.
    @Test(arguments: ["another boot", "another process"])
    func lockOfAReusedPidIsBroken(_ reuse: String) throws {
        let s = Scratch()
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        let lock = reuse == "another boot"
            ? lockJSON(pid: getpid(), bootID: "00000000-0000-0000-0000-000000000000", processStart: nil)
            : lockJSON(pid: getpid(), bootID: try Self.currentBootID(), processStart: 1)
        try lock.write(toFile: s.repo + "/locks/writer.lock", atomically: false, encoding: .utf8)
        try s.write("src/a.txt", "a\n")
        let r = try CLI.run(["backup", s.sub("src"), "--source", "src", "--repo", s.repo, "--lock-timeout", "1s"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("broke stale lock"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: s.repo + "/locks/writer.lock"))
    }

    /// The control: a lock of a live holder with matching start time and boot ID is honoured (75).
    @Test func lockOfALiveHolderIsHonoured() throws {
        let s = Scratch()
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        let stat = try String(contentsOfFile: "/proc/self/stat", encoding: .utf8)
        let fields = stat[stat.range(of: ")", options: .backwards)!.upperBound...].split(separator: " ")
        let start = try #require(UInt64(fields[19]))
        try lockJSON(pid: getpid(), bootID: try Self.currentBootID(), processStart: start)
            .write(toFile: s.repo + "/locks/writer.lock", atomically: false, encoding: .utf8)
        try s.write("src/a.txt", "a\n")
        let r = try CLI.run(["backup", s.sub("src"), "--source", "src", "--repo", s.repo, "--lock-timeout", "1s"])
        #expect(r.status == 75, "\(r.stderr)")
    }

    /// Proves (issue 10.15): many writers that find the same stale lock at once never hold the
    /// lock together. Each writer's dump command enters a critical section (`mkdir` is atomic and
    /// fails when another writer is inside) for a moment while the writer holds the lock. To widen
    /// the race, the writers' stderr is a pipe filled to the brim: a writer that warns about the
    /// stale lock blocks there until the test drains the pipe, so they all act at once.
    @Test func writersBreakingOneStaleLockNeverOverlap() throws {
        let s = Scratch()
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        let inside = s.sub("inside"), overlaps = s.sub("overlaps")
        let dump = "mkdir '\(inside)' 2>/dev/null || echo overlap >> '\(overlaps)'; sleep 0.2; rmdir '\(inside)' 2>/dev/null; echo ok"
        for round in 0..<3 {
            // A writer with a pid that cannot exist (beyond pid_max) died holding the lock.
            try lockJSON(pid: 99_999_999, bootID: nil, processStart: nil)
                .write(toFile: s.repo + "/locks/writer.lock", atomically: false, encoding: .utf8)
            let stderr = Pipe()
            let writeEnd = stderr.fileHandleForWriting.fileDescriptor
            let flags = fcntl(writeEnd, F_GETFL)
            _ = fcntl(writeEnd, F_SETFL, flags | O_NONBLOCK)
            let filler = [UInt8](repeating: 0x2e, count: 4096)
            while filler.withUnsafeBytes({ Foundation.write(writeEnd, $0.baseAddress, $0.count) }) > 0 {}
            _ = fcntl(writeEnd, F_SETFL, flags)
            let sharedStderr = FileHandle(fileDescriptor: writeEnd, closeOnDealloc: false)
            let writers = (0..<12).map { i in
                let p = Process()
                p.executableURL = URL(fileURLWithPath: CLI.binary)
                p.arguments = ["backup", "--command", dump, "--source", "w\(i)", "--repo", s.repo, "--lock-timeout", "120s"]
                p.standardOutput = FileHandle.nullDevice
                p.standardError = sharedStderr
                return p
            }
            for p in writers { try p.run() }
            sleep(2)
            try stderr.fileHandleForWriting.close()
            let drained = DispatchSemaphore(value: 0)
            DispatchQueue.global().async {
                _ = stderr.fileHandleForReading.readDataToEndOfFile()
                drained.signal()
            }
            for p in writers { p.waitUntilExit() }
            drained.wait()
            #expect(writers.allSatisfy { $0.terminationStatus == 0 }, "round \(round): \(writers.map(\.terminationStatus))")
            #expect(!FileManager.default.fileExists(atPath: overlaps), "round \(round): two writers held the lock at once")
            #expect(!FileManager.default.fileExists(atPath: s.repo + "/locks/writer.lock"))
            if FileManager.default.fileExists(atPath: overlaps) { break }
        }
    }

    /// Proves (review 8): an empty lock file (taken on a full disk) whose holder died before it
    /// could record itself does not block writers forever. With the holder's second name
    /// (`writer.lock.PID.N.HOST`, a dead pid) it is stale at once; with no name, once it is older
    /// than a minute. A fresh empty lock with no name is still honoured (75): its holder may be
    /// cleaning `tmp/` on a full disk right now.
    @Test(arguments: ["named dead holder", "unnamed, two minutes old", "unnamed, fresh"])
    func emptyLockOfADeadHolder(_ variant: String) throws {
        let s = Scratch()
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        let lock = s.repo + "/locks/writer.lock"
        #expect(FileManager.default.createFile(atPath: lock, contents: Data()))
        if variant == "named dead holder" {
            #expect(link(lock, s.repo + "/locks/writer.lock.99999999.7.\(hostName)") == 0)
        } else if variant == "unnamed, two minutes old" {
            var times = [timeval(tv_sec: time(nil) - 120, tv_usec: 0), timeval(tv_sec: time(nil) - 120, tv_usec: 0)]
            #expect(utimes(lock, &times) == 0)
        }
        try s.write("src/a.txt", "a\n")
        let r = try CLI.run(["backup", s.sub("src"), "--source", "src", "--repo", s.repo, "--lock-timeout", "1s"])
        if variant == "unnamed, fresh" {
            #expect(r.status == 75, "\(r.stderr)")
        } else {
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stderr.contains("broke stale lock"), "\(r.stderr)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: s.repo + "/locks").isEmpty)
        }
    }

    /// Proves (review 9): `writer.lock.stale.PID.N.HOST` files that a breaker killed mid-way left
    /// (where the filesystem cannot exchange) are removed by the next writer when their pid is
    /// dead on this host; another host's are kept.
    @Test func staleAsideFilesOfDeadBreakersAreRemoved() throws {
        let s = Scratch()
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        let dead = s.repo + "/locks/writer.lock.stale.99999999.5.\(hostName)"
        let other = s.repo + "/locks/writer.lock.stale.99999999.5.other-host.example"
        try lockJSON(pid: 99_999_999, bootID: nil, processStart: nil).write(toFile: dead, atomically: false, encoding: .utf8)
        try lockJSON(pid: 99_999_999, bootID: nil, processStart: nil).write(toFile: other, atomically: false, encoding: .utf8)
        try s.write("src/a.txt", "a\n")
        let r = try CLI.run(["backup", s.sub("src"), "--source", "src", "--repo", s.repo])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dead))
        #expect(FileManager.default.fileExists(atPath: other))
    }
}
