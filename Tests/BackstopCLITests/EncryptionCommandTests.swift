import Foundation
import Testing

/// An encrypted repository through the CLI, as an operator uses it: `key generate`, `init
/// --encrypt`, backups with the writer key only, listing and quick verification without a key,
/// restore and full verification with the identity, the exit codes (77 without the key, 65 on
/// tampered ciphertext) and the standard-tool recipe with `age -d`, `zstd -d` and `tar -x`.
@Suite struct EncryptionCommandTests {
    struct Repo {
        let s: Scratch
        let recipient: String
        var identity: String { s.sub("keys/identity.txt") }
        var writerKey: String { s.sub("keys/writer.json") }
        var writerEnv: [String: String] { ["BACKSTOP_WRITER_KEY": writerKey, "BACKSTOP_IDENTITY": ""] }
    }

    private func encryptedRepository() throws -> Repo {
        let s = Scratch()
        try FileManager.default.createDirectory(atPath: s.sub("keys"), withIntermediateDirectories: true)
        let key = try CLI.run(["key", "generate", "--output", s.sub("keys/identity.txt")])
        #expect(key.status == 0, "\(key.stderr)")
        let recipient = key.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(recipient.hasPrefix("age1"))
        let r = Repo(s: s, recipient: recipient)
        let created = try CLI.run(["init", "--repo", s.repo, "--encrypt", "--recipient", recipient, "--writer-key", r.writerKey])
        #expect(created.status == 0, "\(created.stderr)")
        try s.write("src/tree/a.txt", "alpha\n")
        try s.write("src/tree/sub/b.bin", String(repeating: "bravo 0123456789\n", count: 20_000))
        return r
    }

    private func backUp(_ r: Repo) throws -> String {
        let b = try CLI.run(["backup", r.s.sub("src/tree"), "--source", "files", "--repo", r.s.repo], environment: r.writerEnv)
        #expect(b.status == 0, "\(b.stderr)")
        return b.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Proves: `key generate` writes a 0600 identity file that `age` reads, prints its
    /// recipient, and never overwrites a file.
    @Test func keyGenerateWritesAPrivateIdentityFileThatAgeReads() throws {
        let s = Scratch()
        let r = try CLI.run(["key", "generate", "--output", s.sub("id.txt")])
        #expect(r.status == 0, "\(r.stderr)")
        var st = stat()
        #expect(stat(s.sub("id.txt"), &st) == 0 && st.st_mode & 0o777 == 0o600)
        #expect(try sh("age-keygen -y '\(s.sub("id.txt"))'").trimmingCharacters(in: .whitespacesAndNewlines) == r.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        let again = try CLI.run(["key", "generate", "--output", s.sub("id.txt")])
        #expect(again.status == 64, "\(again.stderr)")
    }

    /// Proves the end-to-end story: backups with the writer key alone; list and quick verify
    /// without a key; restore and full verify refused without the identity (77, naming the
    /// recipient) and working with it.
    @Test func anEncryptedRepositoryEndToEnd() throws {
        let r = try encryptedRepository()
        let id = try backUp(r)
        let list = try CLI.run(["list", "--repo", r.s.repo], environment: r.writerEnv)
        #expect(list.status == 0 && list.stdout.contains(id), "\(list.stdout)\(list.stderr)")
        let quick = try CLI.run(["verify", id, "--quick", "--repo", r.s.repo], environment: r.writerEnv)
        #expect(quick.status == 0, "\(quick.stdout)\(quick.stderr)")
        let fullNoKey = try CLI.run(["verify", id, "--repo", r.s.repo], environment: r.writerEnv)
        #expect(fullNoKey.status == 77, "\(fullNoKey.stdout)\(fullNoKey.stderr)")
        #expect(fullNoKey.stderr.contains(r.recipient))
        let restoreNoKey = try CLI.run(["restore", id, "--to", r.s.sub("nokey"), "--repo", r.s.repo], environment: r.writerEnv)
        #expect(restoreNoKey.status == 77, "\(restoreNoKey.stderr)")
        #expect(restoreNoKey.stderr.contains(r.recipient) && restoreNoKey.stderr.contains("--identity"))
        #expect(!FileManager.default.fileExists(atPath: r.s.sub("nokey/tree")))

        let full = try CLI.run(["verify", id, "--repo", r.s.repo, "--identity", r.identity], environment: r.writerEnv)
        #expect(full.status == 0, "\(full.stdout)\(full.stderr)")
        let restored = try CLI.run(["restore", id, "--to", r.s.sub("out"), "--repo", r.s.repo],
                                   environment: ["BACKSTOP_IDENTITY": r.identity])
        #expect(restored.status == 0, "\(restored.stderr)")
        _ = try sh("diff -r '\(r.s.sub("src/tree"))' '\(r.s.sub("out/tree"))'")

        // A wrong identity is 77 too.
        _ = try CLI.run(["key", "generate", "--output", r.s.sub("other.txt")])
        let wrong = try CLI.run(["restore", id, "--to", r.s.sub("wrong"), "--repo", r.s.repo, "--identity", r.s.sub("other.txt")])
        #expect(wrong.status == 77, "\(wrong.stderr)")
    }

    /// Proves: a flipped byte in a stored frame is exit 65 naming the frame object, for full
    /// verification and restore; quick verification (ciphertext against SHA256SUMS of the
    /// snapshot's own files) still passes, as frames are not its business.
    @Test func tamperedCiphertextIsAnIntegrityFailure() throws {
        let r = try encryptedRepository()
        let id = try backUp(r)
        let frame = try sh("find '\(r.s.repo)/frames' -type f | sort | head -1").trimmingCharacters(in: .whitespacesAndNewlines)
        _ = try sh("printf '\\x01' | dd of='\(frame)' bs=1 seek=$(( $(stat -c %s '\(frame)') - 30 )) conv=notrunc 2>/dev/null")
        let name = (frame as NSString).lastPathComponent
        let full = try CLI.run(["verify", id, "--repo", r.s.repo, "--identity", r.identity])
        #expect(full.status == 65, "\(full.stdout)\(full.stderr)")
        #expect((full.stdout + full.stderr).contains(name))
        let restored = try CLI.run(["restore", id, "--to", r.s.sub("out"), "--repo", r.s.repo, "--identity", r.identity])
        #expect(restored.status == 65, "\(restored.stderr)")
        // A tampered frames.tsv is caught by the keyless quick verification.
        _ = try sh("printf 'x' >> '\(r.s.repo)/snapshots/\(id)/frames.tsv'")
        let quick = try CLI.run(["verify", id, "--quick", "--repo", r.s.repo], environment: r.writerEnv)
        #expect(quick.status == 65, "\(quick.stdout)\(quick.stderr)")
    }

    /// Proves the README's standard-tool recipe: `sha256sum -c` over the ciphertext, then
    /// `age -d` of frames.tsv and of each frame, `zstd -d` and `tar -x` restore the tree
    /// without Backstop.
    @Test func theStandardToolRecipeRestoresAWholeSnapshot() throws {
        let r = try encryptedRepository()
        let id = try backUp(r)
        try FileManager.default.createDirectory(atPath: r.s.sub("std"), withIntermediateDirectories: true)
        let recipe = """
            set -euo pipefail
            cd '\(r.s.repo)/snapshots/\(id)'
            sha256sum -c --quiet SHA256SUMS
            age -d -i '\(r.identity)' frames.tsv | cut -f1 | while read -r f; do age -d -i '\(r.identity)' "../../frames/${f:0:2}/$f"; done | zstd -d | tar -x -C '\(r.s.sub("std"))'
            """
        _ = try sh(recipe)
        _ = try sh("diff -r '\(r.s.sub("src/tree"))' '\(r.s.sub("std/tree"))'")
    }

    /// Proves: `init --encrypt` without a recipient or passphrase, or with a bad recipient, is
    /// a usage error and creates nothing.
    @Test func initRefusesBadEncryptionFlags() throws {
        let s = Scratch()
        let none = try CLI.run(["init", "--repo", s.repo, "--encrypt"])
        #expect(none.status == 64, "\(none.stderr)")
        let bad = try CLI.run(["init", "--repo", s.repo, "--encrypt", "--recipient", "age1notakey", "--writer-key", s.sub("w.json")])
        #expect(bad.status == 64, "\(bad.stderr)")
        #expect(bad.stderr.contains("age1notakey"))
        #expect(!FileManager.default.fileExists(atPath: s.repo + "/backstop.json"))
    }

    /// Proves a passphrase repository: created with $BACKSTOP_PASSPHRASE_FILE, backed up with
    /// the writer key alone, restored with the passphrase (77 without it or with a wrong one),
    /// and a stored frame decrypts with `age -d` and the passphrase.
    @Test func aPassphraseRepositoryEndToEnd() throws {
        let s = Scratch()
        try s.write("pass.txt", "correct horse battery\n")
        try s.write("wrong.txt", "incorrect horse\n")
        try s.write("src/tree/a.txt", "alpha\n")
        let created = try CLI.run(["init", "--repo", s.repo, "--encrypt", "--passphrase", "--writer-key", s.sub("w.json")],
                                  environment: ["BACKSTOP_PASSPHRASE_FILE": s.sub("pass.txt")])
        #expect(created.status == 0, "\(created.stderr)")
        let b = try CLI.run(["backup", s.sub("src/tree"), "--source", "files", "--repo", s.repo], environment: ["BACKSTOP_WRITER_KEY": s.sub("w.json")])
        #expect(b.status == 0, "\(b.stderr)")
        let id = b.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let none = try CLI.run(["restore", id, "--to", s.sub("none"), "--repo", s.repo])
        #expect(none.status == 77, "\(none.stderr)")
        let wrong = try CLI.run(["restore", id, "--to", s.sub("wrong"), "--repo", s.repo], environment: ["BACKSTOP_PASSPHRASE_FILE": s.sub("wrong.txt")])
        #expect(wrong.status == 77, "\(wrong.stderr)")
        let right = try CLI.run(["restore", id, "--to", s.sub("out"), "--repo", s.repo], environment: ["BACKSTOP_PASSPHRASE_FILE": s.sub("pass.txt")])
        #expect(right.status == 0, "\(right.stderr)")
        #expect(try String(contentsOfFile: s.sub("out/tree/a.txt"), encoding: .utf8) == "alpha\n")
        let frame = try sh("find '\(s.repo)/frames' -type f | head -1").trimmingCharacters(in: .whitespacesAndNewlines)
        let listed = try sh("printf 'correct horse battery\\n' | script -qec \"age -d -o '\(s.sub("frame.zst"))' '\(frame)'\" /dev/null >/dev/null; zstd -dc '\(s.sub("frame.zst"))' | wc -c")
        #expect(Int(listed.split(separator: "\n").last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "") ?? 0 > 0, "\(listed)")
    }
}
