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

    /// A mysqldump whose database and table names are long enough that a base64 blob holding
    /// them by chance is out of the question.
    private func secretDump() -> String {
        var s = "-- MariaDB dump 10.19  Distrib 10.11.6-MariaDB\n--\n-- Host: localhost    Database: \n"
        s += "/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;\n\n"
        for db in ["confidential_payroll", "quarterly_forecasts"] {
            s += "--\n-- Current Database: `\(db)`\n--\n\nCREATE DATABASE `\(db)`;\nUSE `\(db)`;\n"
            s += "CREATE TABLE `salary_by_employee` (id int);\n"
            s += "INSERT INTO `salary_by_employee` VALUES (1),(2);\n"
        }
        s += "/*!40101 SET CHARACTER_SET_CLIENT=@OLD_CHARACTER_SET_CLIENT */;\n\n-- Dump completed on 2024-03-24 22:00:00\n"
        return s
    }

    /// Proves the manifest split (issue #14): on an encrypted repository the stored manifests
    /// hold no database, table or backed-up path name (the bytes are grepped), events' notes are
    /// encrypted in `events/` and in a catalog rebuilt without a key; list, select, show,
    /// prune --dry-run and verify --quick work without an identity (show saying what is
    /// sealed); show, event list and restore --database work with the identity, and restore
    /// --database and a diff of sections without it are 77 naming the recipient.
    @Test func theManifestsPrivatePartIsEncrypted() throws {
        let r = try encryptedRepository()
        let repo = ["--repo", r.s.repo]
        let fsID = try backUp(r)
        try r.s.write("dump.sql", secretDump())
        func dump() throws -> String {
            let b = try CLI.run(["backup", "--stdin", "--source", "sql", "--format", "mysqldump"] + repo, stdinFile: r.s.sub("dump.sql"), environment: r.writerEnv)
            #expect(b.status == 0, "\(b.stderr)")
            return b.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let sqlID = try dump()
        let sqlID2 = try dump()
        let event = try CLI.run(["event", "add", "before-the-merger", "--note", "acquisition of Initech by Globex"] + repo, environment: r.writerEnv)
        #expect(event.status == 0, "\(event.stderr)")

        let secrets = ["confidential_payroll", "quarterly_forecasts", "salary_by_employee", "src/tree", "Initech"]
        func grepStored(_ path: String) throws -> [String] {
            let bytes = try String(decoding: Data(contentsOf: URL(fileURLWithPath: path)), as: UTF8.self)
            return secrets.filter { bytes.contains($0) }
        }
        for id in [fsID, sqlID] {
            #expect(try grepStored("\(r.s.repo)/snapshots/\(id)/manifest.json").isEmpty)
        }
        for name in try FileManager.default.contentsOfDirectory(atPath: r.s.repo + "/events") {
            #expect(try grepStored("\(r.s.repo)/events/\(name)").isEmpty)
        }

        // Without an identity (the writer key only): selection, listing, retention, quick verify.
        let list = try CLI.run(["list"] + repo, environment: r.writerEnv)
        #expect(list.status == 0 && list.stdout.contains(sqlID), "\(list.stderr)")
        let select = try CLI.run(["select", "--latest", "--source", "sql"] + repo, environment: r.writerEnv)
        #expect(select.status == 0 && select.stdout.contains(sqlID2), "\(select.stdout)\(select.stderr)")
        try r.s.write("policy.yaml", """
            repository: \(r.s.repo)
            timezone: UTC
            jobs:
              - source: files
                kind: filesystem
                paths: [\(r.s.sub("src/tree"))]
            retention:
              keep-last: 1
            """)
        let plan = try CLI.run(["prune", "--policy", r.s.sub("policy.yaml"), "--dry-run"] + repo, environment: r.writerEnv)
        #expect(plan.status == 0 && plan.stdout.contains(sqlID), "\(plan.stdout)\(plan.stderr)")
        for id in [fsID, sqlID] {
            let quick = try CLI.run(["verify", id, "--quick"] + repo, environment: r.writerEnv)
            #expect(quick.status == 0, "\(quick.stdout)\(quick.stderr)")
        }
        let showNoKey = try CLI.run(["show", sqlID] + repo, environment: r.writerEnv)
        #expect(showNoKey.status == 0, "\(showNoKey.stderr)")
        #expect(showNoKey.stdout.contains("sealed") && showNoKey.stdout.contains(sqlID))
        #expect(!showNoKey.stdout.contains("confidential_payroll"))
        let events = try CLI.run(["event", "list"] + repo, environment: r.writerEnv)
        #expect(events.status == 0 && events.stdout.contains("(encrypted)") && !events.stdout.contains("Initech"), "\(events.stdout)\(events.stderr)")
        let restoreNoKey = try CLI.run(["restore", sqlID, "--database", "confidential_payroll", "--to", r.s.sub("nokey.sql")] + repo, environment: r.writerEnv)
        #expect(restoreNoKey.status == 77 && restoreNoKey.stderr.contains(r.recipient), "\(restoreNoKey.stderr)")
        let diffNoKey = try CLI.run(["diff", sqlID, sqlID2] + repo, environment: r.writerEnv)
        #expect(diffNoKey.status == 77 && diffNoKey.stderr.contains(r.recipient), "\(diffNoKey.stderr)")

        // A catalog rebuilt without a key holds none of it either.
        let rebuilt = try CLI.run(["catalog", "rebuild"] + repo, environment: r.writerEnv)
        #expect(rebuilt.status == 0, "\(rebuilt.stderr)")
        #expect(try grepStored("\(r.s.repo)/catalog.sqlite").isEmpty)

        // With the identity: as on an unencrypted repository.
        let keyEnv = ["BACKSTOP_IDENTITY": r.identity]
        let show = try CLI.run(["show", sqlID] + repo, environment: keyEnv)
        #expect(show.status == 0 && show.stdout.contains("confidential_payroll") && !show.stdout.contains("sealed"), "\(show.stdout)\(show.stderr)")
        let showFS = try CLI.run(["show", fsID] + repo, environment: keyEnv)
        #expect(showFS.status == 0 && showFS.stdout.contains("src/tree"), "\(showFS.stdout)\(showFS.stderr)")
        let eventsKey = try CLI.run(["event", "list"] + repo, environment: keyEnv)
        #expect(eventsKey.status == 0 && eventsKey.stdout.contains("acquisition of Initech by Globex"), "\(eventsKey.stdout)\(eventsKey.stderr)")
        let restored = try CLI.run(["restore", sqlID, "--database", "confidential_payroll", "--to", r.s.sub("payroll.sql")] + repo, environment: keyEnv)
        #expect(restored.status == 0, "\(restored.stderr)")
        let text = (try? String(contentsOfFile: r.s.sub("payroll.sql"), encoding: .utf8)) ?? ""
        #expect(text.contains("CREATE DATABASE `confidential_payroll`") && !text.contains("quarterly_forecasts"))
        let diff = try CLI.run(["diff", sqlID, sqlID2] + repo, environment: keyEnv)
        #expect(diff.status == 0, "\(diff.stdout)\(diff.stderr)")
        for id in [sqlID, sqlID2] {
            let full = try CLI.run(["verify", id] + repo, environment: keyEnv)
            #expect(full.status == 0, "\(full.stdout)\(full.stderr)")
        }

        // Prune itself needs no identity either.
        let prune = try CLI.run(["prune", "--policy", r.s.sub("policy.yaml")] + repo, environment: r.writerEnv)
        #expect(prune.status == 0, "\(prune.stdout)\(prune.stderr)")
        let after = try CLI.run(["list"] + repo, environment: r.writerEnv)
        #expect(after.status == 0 && !after.stdout.contains(sqlID) && after.stdout.contains(sqlID2), "\(after.stdout)\(after.stderr)")
    }

    /// Proves issue #14's "the files cache works without an identity": with the writer key
    /// alone, a second backup reuses every unchanged file unread (its parent's entry list is
    /// the writer's own plaintext copy in its cache folder, files mode 0600, only the newest
    /// kept), and the snapshot restores to the tree with the identity.
    @Test func theFilesCacheWorksWithTheWriterKeyAlone() throws {
        let r = try encryptedRepository()
        for i in 0..<20 { try r.s.write("cached/d\(i % 3)/f\(i).txt", String(repeating: "line \(i)\n", count: 50 + i * 7)) }
        try sh("find '\(r.s.sub("cached"))' -exec touch -h -d @1600000000 {} +")
        var env = r.writerEnv
        env["XDG_CACHE_HOME"] = r.s.sub("cache")
        func backup(hoursAhead: Int) throws -> (id: String, stderr: String) {
            let at = Int(Date().timeIntervalSince1970) + hoursAhead * 3600
            let b = try CLI.run(["backup", r.s.sub("cached"), "--source", "cached", "--repo", r.s.repo, "--time", "@\(at)"], environment: env)
            #expect(b.status == 0, "\(b.stderr)")
            return (b.stdout.trimmingCharacters(in: .whitespacesAndNewlines), b.stderr)
        }
        let first = try backup(hoursAhead: 1)
        #expect(!first.stderr.contains("reused"), "no parent: \(first.stderr)")
        let second = try backup(hoursAhead: 2)
        #expect(second.stderr.contains(", 20 files reused unread (files cache)"), "\(second.stderr)")

        let files = try sh("find '\(r.s.sub("cache"))' -type f -printf '%m %p\\n'").split(separator: "\n")
        #expect(files.count == 3, "\(files)")
        #expect(files.allSatisfy { $0.hasPrefix("600 ") && $0.contains("/\(second.id)/") }, "\(files)")

        let show = try CLI.run(["show", second.id, "--json", "--repo", r.s.repo], environment: ["BACKSTOP_IDENTITY": r.identity])
        let manifest = try #require(try JSONSerialization.jsonObject(with: Data(show.stdout.utf8)) as? [String: Any])
        let fields = (manifest["manifest"] as? [String: Any]) ?? manifest
        #expect(fields["filesReused"] as? Int == 20, "\(show.stdout)")
        let restored = try CLI.run(["restore", second.id, "--to", r.s.sub("out"), "--repo", r.s.repo], environment: ["BACKSTOP_IDENTITY": r.identity])
        #expect(restored.status == 0, "\(restored.stderr)")
        _ = try sh("diff -r '\(r.s.sub("cached"))' '\(r.s.sub("out/cached"))'")
    }
}
