import Foundation
import Testing

/// `restore --no-same-owner` and `--no-same-permissions` end to end (issue #9), and exit 74 for
/// a full target filesystem.
@Suite struct RestoreSecurityCommandTests {
    /// Proves: as root, a restore brings owners and setuid back by default; the two GNU tar flags
    /// restrict that; they are usage errors with --database.
    @Test func ownerAndPermissionFlags() throws {
        try #require(getuid() == 0, "the tests run as root")
        let s = Scratch()
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        try s.write("t/tool", "#!/bin/sh\n", mode: 0o4755)
        #expect(chown(s.sub("t/tool"), 4242, 4343) == 0)
        #expect(chmod(s.sub("t/tool"), 0o4755) == 0)  // chown cleared setuid
        let backup = try CLI.run(["backup", s.sub("t"), "--source", "t", "--repo", s.repo])
        #expect(backup.status == 0, "\(backup.stderr)")

        let same = try CLI.run(["restore", "--latest", "--source", "t", "--to", s.sub("same"), "--repo", s.repo])
        #expect(same.status == 0, "\(same.stderr)")
        var st = stat()
        lstat(s.sub("same/t/tool"), &st)
        #expect(st.st_uid == 4242 && st.st_gid == 4343 && st.st_mode & 0o7777 == 0o4755)

        let restricted = try CLI.run(["restore", "--latest", "--source", "t", "--to", s.sub("restricted"),
                                      "--no-same-owner", "--no-same-permissions", "--repo", s.repo], prefix: ["/bin/sh", "-c", "umask 027; exec \"$0\" \"$@\""])
        #expect(restricted.status == 0, "\(restricted.stderr)")
        lstat(s.sub("restricted/t/tool"), &st)
        #expect(st.st_uid == 0 && st.st_gid == 0 && st.st_mode & 0o7777 == 0o750, "mode \(String(st.st_mode & 0o7777, radix: 8))")

        let wrong = try CLI.run(["restore", "--latest", "--source", "t", "--database", "x", "--no-same-owner", "--to", s.sub("x"), "--repo", s.repo])
        #expect(wrong.status == 64, "\(wrong.stderr)")
    }

    /// Proves: a restore onto a full filesystem exits 74 with a message that says so and what to
    /// do, removes its staging folder, and records no failed verification (before the fix it
    /// wrote ENOSPC forever; the `timeout` turns such a hang into a failure).
    @Test func aFullTargetFilesystemExits74() throws {
        let s = Scratch()
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        try FileManager.default.createDirectory(atPath: s.sub("t"), withIntermediateDirectories: true)
        try sh("head -c 12582912 /dev/urandom > '\(s.sub("t/data.bin"))'")
        let id = try CLI.run(["backup", s.sub("t"), "--source", "t", "--repo", s.repo]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let mount = s.sub("small")
        try FileManager.default.createDirectory(atPath: mount, withIntermediateDirectories: true)
        try sh("mount -t tmpfs -o size=4m tmpfs '\(mount)'")
        defer { _ = try? sh("umount -l '\(mount)'") }
        let r = try CLI.run(["restore", id, "--to", mount + "/out", "--repo", s.repo], prefix: ["/usr/bin/timeout", "300"])
        #expect(r.status == 74, "\(r.stderr)")
        #expect(r.stderr.contains("No space left on device") && r.stderr.contains("target is unchanged"), "\(r.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: mount).isEmpty, "staging removed")
        let list = try CLI.run(["list", "--repo", s.repo])
        #expect(list.status == 0 && list.stdout.contains("never") && !list.stdout.contains("FAILED"), "no failed verification recorded: \(list.stdout)")
    }
}
