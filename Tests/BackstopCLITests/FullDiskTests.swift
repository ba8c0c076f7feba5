import Foundation
import Testing

/// A small tmpfs the test mounts (the suite runs as root), unmounted by `unmount()`.
struct Tmpfs {
    let path: String

    init(at path: String, size: String) throws {
        self.path = path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        try sh("mount -t tmpfs -o size=\(size) tmpfs '\(path)'")
    }

    func unmount() {
        _ = try? sh("umount -l '\(path)'")
    }
}

/// Full repositories: a backup that runs out of room ends promptly with 74 and leaves nothing
/// behind, and the next writer can work again once there is room.
@Suite(.serialized) struct FullDiskTests {
    /// Proves (issue 9.4): a backup of 50 MB into an 8 MB repository exits 74 every time, never
    /// hangs, and removes its staging folder and lock. The `timeout` is a hang detector (a
    /// deadlocked backup used to wait forever in 5 runs of 9), not a timing assertion.
    @Test func backupIntoAFullRepositoryExits74EveryTime() throws {
        let s = Scratch()
        let disk = try Tmpfs(at: s.sub("disk"), size: "8m")
        defer { disk.unmount() }
        let repo = disk.path + "/repo"
        #expect(try CLI.run(["init", "--repo", repo]).status == 0)
        try sh("mkdir '\(s.sub("src"))' && head -c 50000000 /dev/urandom > '\(s.sub("src/big.bin"))'")
        for run in 0..<6 {
            let r = try CLI.run(["backup", s.sub("src"), "--source", "big", "--repo", repo],
                                prefix: ["/usr/bin/timeout", "-s", "KILL", "120"])
            #expect(r.status == 74, "run \(run): exit \(r.status) (killed by the hang detector: hung): \(r.stderr)")
            #expect(r.stderr.contains("No space left on device") && r.stderr.contains("free some space"), "run \(run): \(r.stderr)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: repo + "/tmp") == [], "run \(run): tmp/ reclaimed")
            #expect(try FileManager.default.contentsOfDirectory(atPath: repo + "/locks") == [], "run \(run): no lock left")
            if r.status == 137 { break }
        }
    }

    /// Proves (issue 9.4): after a writer died on a full disk (its staging folder filling `tmp/`,
    /// its lock and a lock temporary file left), the next writer takes the lock although it
    /// cannot write its holder record, reclaims `tmp/` and the dead writer's files first, and
    /// succeeds.
    @Test func nextWriterReclaimsTmpOnAFullDisk() throws {
        let s = Scratch()
        let disk = try Tmpfs(at: s.sub("disk"), size: "8m")
        defer { disk.unmount() }
        let repo = disk.path + "/repo"
        #expect(try CLI.run(["init", "--repo", repo]).status == 0)
        try s.write("src/small.txt", "small\n")
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, host.count)
        let hostName = String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        // A writer with a pid that cannot exist (beyond pid_max) died holding the lock.
        let dead = "{\"command\":\"backstop backup\",\"host\":\"\(hostName)\",\"pid\":99999999,\"startedAt\":\"2024-01-01T00:00:00.000Z\"}"
        try dead.write(toFile: repo + "/locks/writer.lock", atomically: false, encoding: .utf8)
        try dead.write(toFile: repo + "/locks/writer.lock.99999999.1234", atomically: false, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: repo + "/tmp/20240101T000000Z-deadbeef", withIntermediateDirectories: true)
        _ = try? sh("head -c 20000000 /dev/zero > '\(repo)/tmp/20240101T000000Z-deadbeef/data.tar.zst'")
        #expect((try? sh("echo x > '\(disk.path)/probe'")) == nil, "the disk is full")

        let r = try CLI.run(["backup", s.sub("src"), "--source", "small", "--repo", repo],
                            prefix: ["/usr/bin/timeout", "-s", "KILL", "120"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("removing tmp/20240101T000000Z-deadbeef"), "\(r.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: repo + "/tmp") == [])
        #expect(try FileManager.default.contentsOfDirectory(atPath: repo + "/locks") == [])
        #expect(try CLI.run(["verify", "--all", "--repo", repo]).status == 0)
    }
}
