import Foundation
import Testing

/// Restore checks the snapshot's own files (the quick verification: `SHA256SUMS`, the manifest,
/// no file missing or extra) before it writes anything, and `verify` accepts `SHA256SUMS` only in
/// the one form Backstop writes.
@Suite struct IntegrityBeforeRestoreTests {
    /// Damage done to a committed snapshot folder, as a shell command run inside it.
    static let damages: [(name: String, command: String)] = [
        ("SHA256SUMS deleted", "rm SHA256SUMS"),
        ("SHA256SUMS digest changed", "python3 -c \"import sys;b=bytearray(open('SHA256SUMS','rb').read());b[0]=ord('0') if b[0]!=ord('0') else ord('1');open('SHA256SUMS','wb').write(b)\""),
        ("manifest edited", "sed -i 's/\"source\" : \"\\([a-z]*\\)\"/\"source\" : \"\\1x\"/' manifest.json && grep -q '\"source\" : \"[a-z]*x\"' manifest.json"),
        ("manifest bit flip", "python3 -c \"b=bytearray(open('manifest.json','rb').read());i=b.index(b'toolVersion')+20;b[i]^=1;open('manifest.json','wb').write(b)\""),
        ("extra file", "echo surprise > extra.bin"),
        ("SHA256SUMS in upper case", "sed -i -E 's/^([0-9a-f]{64})/\\U\\1/' SHA256SUMS && grep -q '^[0-9A-F]\\{64\\}  frames.tsv' SHA256SUMS"),
        ("SHA256SUMS without its final newline", "truncate -s -1 SHA256SUMS"),
    ]

    /// Proves (issue 9.9): each damage makes `verify --quick` exit 65 and a restore of that
    /// snapshot (filesystem and logical) exit 65 naming the file, with nothing written to the
    /// target. Before the fix, restores went ahead with exit 0, and verify accepted the last two.
    @Test(arguments: ["filesystem", "logical"])
    func damagedSnapshotFilesStopTheRestore(_ kind: String) throws {
        for damage in Self.damages {
            let s = Scratch()
            #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
            try s.write("data/ibdata1", "pages\n")
            try s.write("dump.sql", sampleDump())
            let backup = kind == "filesystem"
                ? try CLI.run(["backup", s.sub("data"), "--source", "datadir", "--repo", s.repo])
                : try CLI.run(["backup", "--stdin", "--source", "dump", "--repo", s.repo], stdinFile: s.sub("dump.sql"))
            #expect(backup.status == 0, "\(backup.stderr)")
            let id = backup.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            try sh("cd '\(s.repo)/snapshots/\(id)' && \(damage.command)")

            let verify = try CLI.run(["verify", id, "--quick", "--repo", s.repo])
            #expect(verify.status == 65, "\(kind), \(damage.name): verify exit \(verify.status): \(verify.stdout)\(verify.stderr)")

            let target = s.sub(kind == "filesystem" ? "out" : "out.sql")
            let restore = try CLI.run(["restore", id, "--to", target, "--repo", s.repo])
            #expect(restore.status == 65, "\(kind), \(damage.name): restore exit \(restore.status): \(restore.stderr)")
            #expect(restore.stderr.contains("failed verification"), "\(kind), \(damage.name): \(restore.stderr)")
            #expect(!FileManager.default.fileExists(atPath: target), "\(kind), \(damage.name): nothing restored")
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: s.path).filter { $0.hasPrefix("out") || $0.contains("backstop-restore") }
            #expect(leftovers.isEmpty, "\(kind), \(damage.name): \(leftovers)")
        }
    }

    /// The control: an undamaged snapshot restores, and SHA256SUMS as written passes `sha256sum -c`.
    @Test func intactSnapshotRestores() throws {
        let s = Scratch()
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        try s.write("data/ibdata1", "pages\n")
        let id = try CLI.run(["backup", s.sub("data"), "--source", "datadir", "--repo", s.repo]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try sh("cd '\(s.repo)/snapshots/\(id)' && sha256sum --quiet --strict -c SHA256SUMS")
        let restore = try CLI.run(["restore", id, "--to", s.sub("out"), "--repo", s.repo])
        #expect(restore.status == 0, "\(restore.stderr)")
        #expect(try String(contentsOfFile: s.sub("out/data/ibdata1"), encoding: .utf8) == "pages\n")
    }
}
