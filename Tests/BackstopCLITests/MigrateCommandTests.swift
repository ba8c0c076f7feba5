import Backstop
import Foundation
import Testing

/// The format-1 repository under `Tests/BackstopTests/Fixtures/v1-repository/`, written by the
/// last format-1 release (`scripts/make-v1-fixture.sh`; its README says how).
enum V1Fixture {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("BackstopTests/Fixtures").path
    static let directory = fixtures + "/v1-repository"
    static let dump = fixtures + "/mariadb-shop.sql"
    /// The snapshot IDs, found by their payload files (so remaking the fixture changes no test).
    static let filesystemID = snapshot(holding: "data.tar.zst")
    static let logicalID = snapshot(holding: "data.zst")

    private static func snapshot(holding payload: String) -> String {
        let folders = (try? FileManager.default.contentsOfDirectory(atPath: directory + "/snapshots")) ?? []
        return folders.first { FileManager.default.fileExists(atPath: directory + "/snapshots/\($0)/\(payload)") } ?? "(no \(payload) in the fixture)"
    }

    /// The fixture's `backstop.json`.
    static func config(_ repo: String = directory) throws -> [String: Any] {
        try #require(try json(String(contentsOfFile: repo + "/backstop.json", encoding: .utf8)) as? [String: Any])
    }

    /// A copy of the fixture at `path` (tests never change the checked-in one), with the
    /// empty folders the repository had (git keeps none).
    static func copy(to path: String) throws {
        try sh("cp -a '\(directory)' '\(path)' && mkdir -p '\(path)/locks' '\(path)/tmp'")
    }

    /// The tree the filesystem snapshot was taken of, made again at `root` exactly as
    /// `scripts/make-v1-fixture.sh` makes it: big.bin is SHA-256("backstop-v1-fixture-<i>") for
    /// i = 0, 1, 2, … (3 MiB); every mtime 2024-03-20T10:00:00Z.
    static func makeTree(at root: String) throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: root + "/etc", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: root + "/data", withIntermediateDirectories: true)
        try Data("port = 3306\nbind-address = 127.0.0.1\n".utf8).write(to: URL(fileURLWithPath: root + "/etc/my.cnf"))
        try Data("hello from a format-1 repository\n".utf8).write(to: URL(fileURLWithPath: root + "/README.txt"))
        try Data("line one\nline two\n".utf8).write(to: URL(fileURLWithPath: root + "/data/notes.txt"))
        try Data().write(to: URL(fileURLWithPath: root + "/data/empty"))
        var big: [UInt8] = []
        big.reserveCapacity(3 << 20)
        for i in 0..<((3 << 20) / 32) { big += SHA256Hasher.digest(Array("backstop-v1-fixture-\(i)".utf8)).bytes }
        try Data(big).write(to: URL(fileURLWithPath: root + "/data/big.bin"))
        chmod(root + "/etc/my.cnf", 0o600)
        chmod(root + "/data", 0o755)
        try fm.createSymbolicLink(atPath: root + "/data/config-link", withDestinationPath: "../etc/my.cnf")
        try sh("find '\(root)' -exec touch -h -d '2024-03-20T10:00:00Z' {} +")
    }

    /// Every stored object of a repository with its digest (locks, temporary files and the
    /// catalog left out): equal listings mean equal repositories.
    static func listing(_ repo: String) throws -> String {
        try sh("cd '\(repo)' && find . -type f ! -path './locks/*' ! -path './tmp/*' ! -name 'catalog.sqlite*' -print0 | sort -z | xargs -0 sha256sum")
    }

    /// Names, types, modes, sizes and mtimes of a tree (symlinks not followed), for comparing
    /// a restore with its source.
    static func metadata(_ root: String) throws -> String {
        try sh("cd '\(root)' && find . -mindepth 1 -printf '%P %y %m %s %T@ %l\\n' | sort")
    }
}

@Suite struct MigrateCommandTests {
    /// A JSON value as sorted-key JSON text, for comparing values of two documents.
    private func canonical(_ value: Any?) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: [value ?? NSNull()], options: [.sortedKeys]), as: UTF8.self)
    }

    /// Proves the upgrade path: the repository written by the previous release is refused by
    /// every other command with a pointer to `migrate`, and after `migrate` it is format 2 (no
    /// payload files left, frames stored once), verifies in full, restores both snapshots to
    /// exactly what was backed up, and keeps its event and verification history.
    @Test func migratesTheRepositoryOfThePreviousRelease() throws {
        let s = Scratch()
        try V1Fixture.copy(to: s.repo)
        let before = try V1Fixture.listing(s.repo)

        let r = try CLI.run(["migrate", "--repo", s.repo])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("\(V1Fixture.filesystemID)  filesystem  files: 3 frames, 3 new"), "\(r.stdout)")
        #expect(r.stdout.contains("\(V1Fixture.logicalID)  logical  shop-dump: 1 frame, 1 new"), "\(r.stdout)")
        #expect(r.stdout.contains("migrated 2 snapshots to format 2: 4 frames, 4 stored"), "\(r.stdout)")
        #expect(before != (try V1Fixture.listing(s.repo)))

        let config = try V1Fixture.config(s.repo)
        #expect(config["format"] as? Int == 2)
        #expect(config["id"] as? String == (try V1Fixture.config()["id"] as? String))
        #expect(config["createdAt"] as? String == (try V1Fixture.config()["createdAt"] as? String))
        let left = try sh("cd '\(s.repo)' && find snapshots frames -type f | sort").split(separator: "\n").map(String.init)
        #expect(!left.contains { $0.hasSuffix("/data.tar.zst") || $0.hasSuffix("/data.zst") }, "\(left)")
        #expect(left.filter { $0.hasPrefix("frames/") }.count == 4, "\(left)")
        #expect(left.contains("snapshots/\(V1Fixture.filesystemID)/frames.tsv"))
        #expect(left.contains("snapshots/\(V1Fixture.filesystemID)/entries.jsonl.zst"))

        // The manifests keep what the snapshots were: ID, times, source, host, paths, tags, stream
        // digest, sections, entry count; only the storage fields change.
        for id in [V1Fixture.filesystemID, V1Fixture.logicalID] {
            let old = try #require(try json(String(contentsOfFile: V1Fixture.directory + "/snapshots/\(id)/manifest.json", encoding: .utf8)) as? [String: Any])
            let new = try #require(try json(String(contentsOfFile: s.repo + "/snapshots/\(id)/manifest.json", encoding: .utf8)) as? [String: Any])
            #expect(new["format"] as? Int == 2 && new["frames"] == nil && new["frameCount"] as? Int == (old["frames"] as? [Any])?.count)
            let kept = ["id", "kind", "source", "host", "paths", "tags", "startedAt", "completedAt", "bytesIn", "entryCount", "sha256",
                        "sections", "warnings", "toolVersion", "dumpFormat"]
            for key in kept {
                #expect(try canonical(old[key]) == canonical(new[key]), "\(id) \(key)")
            }
        }

        // History: the previous release's verification (passed, full) and the event.
        let list = try CLI.run(["list", "--json", "--repo", s.repo])
        #expect(list.status == 0, "\(list.stderr)")
        let listed = try listedSnapshots(list.stdout)
        #expect(listed.count == 2)
        for snapshot in listed {
            let last = snapshot["lastVerification"] as? [String: Any]
            #expect(last?["passed"] as? Bool == true && last?["mode"] as? String == "full", "\(snapshot)")
        }
        let events = try CLI.run(["event", "list", "--repo", s.repo])
        #expect(events.status == 0 && events.stdout.contains("upgrade") && events.stdout.contains("MariaDB 10.11 -> 11.4"), "\(events.stdout)")
        let sel = try CLI.run(["select", "--before", "upgrade", "--source", "files", "--repo", s.repo])
        #expect(sel.status == 0 && sel.stdout.contains(V1Fixture.filesystemID), "\(sel.stdout)\(sel.stderr)")

        let verify = try CLI.run(["verify", "--all", "--repo", s.repo])
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        #expect(verify.stdout.contains("2 passed"), "\(verify.stdout)")

        // Restores equal the sources: the tree (contents, modes, sizes, mtimes, the link) and the dump.
        try V1Fixture.makeTree(at: s.sub("expected/tree"))
        let restore = try CLI.run(["restore", V1Fixture.filesystemID, "--to", s.sub("restored"), "--repo", s.repo])
        #expect(restore.status == 0, "\(restore.stderr)")
        try sh("diff -r --no-dereference '\(s.sub("expected/tree"))' '\(s.sub("restored/tree"))'")
        #expect(try V1Fixture.metadata(s.sub("restored/tree")) == (try V1Fixture.metadata(s.sub("expected/tree"))))
        let logical = try CLI.run(["restore", V1Fixture.logicalID, "--to", s.sub("shop.sql"), "--repo", s.repo])
        #expect(logical.status == 0, "\(logical.stderr)")
        try sh("cmp '\(V1Fixture.dump)' '\(s.sub("shop.sql"))'")

        // No recompression: exporting a migrated snapshot gives back the format-1 payload file,
        // byte for byte.
        for (id, name) in [(V1Fixture.filesystemID, "data.tar.zst"), (V1Fixture.logicalID, "data.zst")] {
            let export = try CLI.run(["export", id, "--to", s.sub(name), "--repo", s.repo])
            #expect(export.status == 0, "\(export.stderr)")
            try sh("cmp '\(V1Fixture.directory)/snapshots/\(id)/\(name)' '\(s.sub(name))'")
        }
    }

    /// Proves: every other command refuses the format-1 repository (exit 1) saying to run
    /// `backstop migrate`, and changes nothing in it.
    @Test(arguments: [["list"], ["verify", "--all"], ["restore", V1Fixture.logicalID, "--to", "OUT"], ["export", V1Fixture.logicalID, "--to", "OUT"],
                      ["event", "list"], ["backup", "--stdin", "--source", "x"], ["catalog", "rebuild"]])
    func otherCommandsSayToMigrate(arguments: [String]) throws {
        let s = Scratch()
        try V1Fixture.copy(to: s.repo)
        let before = try V1Fixture.listing(s.repo)
        let r = try CLI.run(arguments.map { $0 == "OUT" ? s.sub("out") : $0 } + ["--repo", s.repo], stdinFile: V1Fixture.dump)
        #expect(r.status == 1, "\(arguments): \(r.stdout)\(r.stderr)")
        #expect(r.stderr.contains("format-1 repository") && r.stderr.contains("backstop migrate --repo \(s.repo)"), "\(arguments): \(r.stderr)")
        #expect(try V1Fixture.listing(s.repo) == before, "\(arguments)")
        #expect(!FileManager.default.fileExists(atPath: s.sub("out")))
    }

    /// Proves crash safety: a migrate killed (as by SIGKILL) at each step leaves a repository
    /// that other commands still refuse (it is format 1 until the end) and whose snapshots are
    /// each whole in one format, and running migrate again gives exactly the repository an
    /// uninterrupted migrate gives, which verifies.
    @Test(arguments: ["migrate-after-frames", "migrate-after-frames-tsv", "migrate-after-sums", "migrate-after-manifest",
                      "migrate-after-snapshot", "migrate-before-catalog", "migrate-before-config"])
    func aKilledMigrateIsFinishedByTheNextOne(fault: String) throws {
        let s = Scratch()
        try V1Fixture.copy(to: s.sub("reference"))
        #expect(try CLI.run(["migrate", "--repo", s.sub("reference")]).status == 0)
        let reference = try V1Fixture.listing(s.sub("reference"))

        try V1Fixture.copy(to: s.repo)
        let crashed = try CLI.run(["migrate", "--repo", s.repo], environment: ["BACKSTOP_FAULT": fault])
        #expect(crashed.status == 137, "\(fault): \(crashed.stdout)\(crashed.stderr)")
        let refused = try CLI.run(["list", "--repo", s.repo])
        #expect(refused.status == 1 && refused.stderr.contains("backstop migrate"), "\(fault): \(refused.stderr)")
        // Every snapshot still has its manifest (a committed form).
        for id in [V1Fixture.filesystemID, V1Fixture.logicalID] {
            #expect(FileManager.default.fileExists(atPath: s.repo + "/snapshots/\(id)/manifest.json"), "\(fault)")
        }

        let again = try CLI.run(["migrate", "--repo", s.repo])
        #expect(again.status == 0, "\(fault): \(again.stderr)")
        #expect(again.stdout.contains("migrated 2 snapshots"), "\(fault): \(again.stdout)")
        #expect(try V1Fixture.listing(s.repo) == reference, "\(fault)")
        let verify = try CLI.run(["verify", "--all", "--repo", s.repo])
        #expect(verify.status == 0, "\(fault): \(verify.stdout)\(verify.stderr)")
    }

    /// Proves: a format-1 manifest that cannot be read stops migrate with 65, naming the
    /// snapshot and what to do; the repository stays format 1.
    @Test func anUnreadableManifestStopsTheMigration() throws {
        let s = Scratch()
        try V1Fixture.copy(to: s.repo)
        try s.write("repo/snapshots/\(V1Fixture.logicalID)/manifest.json", "{ \"format\": 1, \"id\"")
        let r = try CLI.run(["migrate", "--repo", s.repo])
        #expect(r.status == 65, "\(r.stderr)")
        #expect(r.stderr.contains("cannot migrate snapshot \(V1Fixture.logicalID): snapshots/\(V1Fixture.logicalID)/manifest.json cannot be read"), "\(r.stderr)")
        #expect(r.stderr.contains("remove the folder snapshots/\(V1Fixture.logicalID)"), "\(r.stderr)")
        #expect(try V1Fixture.config(s.repo)["format"] as? Int == 1)
    }

    /// Proves: frames identical across snapshots are stored once. A copy of the filesystem
    /// snapshot under another ID (what backing up the same tree again wrote in format 1: the
    /// same frames, byte for byte) adds no frame object and counts no new bytes, and both
    /// snapshots verify and restore.
    @Test func framesSharedBySnapshotsAreStoredOnce() throws {
        let s = Scratch()
        try V1Fixture.copy(to: s.repo)
        let twin = "20240322T220000Z-0000abcd"
        try sh("""
            cp -a '\(s.repo)/snapshots/\(V1Fixture.filesystemID)' '\(s.repo)/snapshots/\(twin)' && \
            sed -i 's/\(V1Fixture.filesystemID)/\(twin)/' '\(s.repo)/snapshots/\(twin)/manifest.json'
            """)
        let r = try CLI.run(["migrate", "--repo", s.repo])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("\(twin)  filesystem  files: 3 frames, 0 new (0 B)"), "\(r.stdout)")
        #expect(r.stdout.contains("migrated 3 snapshots to format 2: 7 frames, 4 stored"), "\(r.stdout)")
        #expect(try sh("find '\(s.repo)/frames' -type f | wc -l").trimmingCharacters(in: .whitespacesAndNewlines) == "4")
        let twinManifest = try #require(try json(String(contentsOfFile: s.repo + "/snapshots/\(twin)/manifest.json", encoding: .utf8)) as? [String: Any])
        #expect(twinManifest["framesNew"] as? Int == 0 && twinManifest["bytesNew"] as? Int == 0, "\(twinManifest)")
        #expect(try String(contentsOfFile: s.repo + "/snapshots/\(twin)/frames.tsv", encoding: .utf8)
            == (try String(contentsOfFile: s.repo + "/snapshots/\(V1Fixture.filesystemID)/frames.tsv", encoding: .utf8)))
        let verify = try CLI.run(["verify", "--all", "--repo", s.repo])
        #expect(verify.status == 0 && verify.stdout.contains("3 passed"), "\(verify.stdout)\(verify.stderr)")
        try V1Fixture.makeTree(at: s.sub("expected/tree"))
        #expect(try CLI.run(["restore", twin, "--to", s.sub("restored"), "--repo", s.repo]).status == 0)
        try sh("diff -r --no-dereference '\(s.sub("expected/tree"))' '\(s.sub("restored/tree"))'")
    }

    /// Proves: migrate on a format-2 repository says so, exits 0 and changes nothing (not even
    /// a lock file).
    @Test func aFormat2RepositoryIsLeftAlone() throws {
        let s = Scratch()
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        #expect(try CLI.run(["backup", "--stdin", "--source", "db", "--repo", s.repo], stdinBytes: Array(sampleDump().utf8)).status == 0)
        let before = try sh("cd '\(s.repo)' && find . | sort && find . -type f ! -name 'catalog.sqlite*' -print0 | sort -z | xargs -0 sha256sum")
        let r = try CLI.run(["migrate", "--repo", s.repo])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("already a format-2 repository; nothing to migrate, nothing was changed"), "\(r.stdout)")
        #expect(try sh("cd '\(s.repo)' && find . | sort && find . -type f ! -name 'catalog.sqlite*' -print0 | sort -z | xargs -0 sha256sum") == before)
        let j = try CLI.run(["migrate", "--json", "--repo", s.repo])
        #expect((try json(j.stdout) as? [String: Any])?["alreadyCurrent"] as? Bool == true, "\(j.stdout)")
    }

    /// Proves: a format-1 snapshot whose payload does not match its manifest stops the
    /// migration with 65 naming it, and is left as it was (manifest and payload); the
    /// repository stays format 1.
    @Test func aDamagedSnapshotStopsTheMigrationAndIsLeftAsItWas() throws {
        let s = Scratch()
        try V1Fixture.copy(to: s.repo)
        let payload = s.repo + "/snapshots/\(V1Fixture.logicalID)/data.zst"
        // One byte of the frame's compressed data changed (offset 100 of 1564).
        try sh("printf '\\x00' | dd of='\(payload)' bs=1 seek=100 conv=notrunc status=none")
        let manifest = try String(contentsOfFile: s.repo + "/snapshots/\(V1Fixture.logicalID)/manifest.json", encoding: .utf8)
        let damaged = try sh("sha256sum '\(payload)'")
        let r = try CLI.run(["migrate", "--repo", s.repo])
        #expect(r.status == 65, "\(r.stdout)\(r.stderr)")
        #expect(r.stderr.contains("cannot migrate snapshot \(V1Fixture.logicalID): snapshots/\(V1Fixture.logicalID)/data.zst"), "\(r.stderr)")
        #expect(try String(contentsOfFile: s.repo + "/snapshots/\(V1Fixture.logicalID)/manifest.json", encoding: .utf8) == manifest)
        #expect(try sh("sha256sum '\(payload)'") == damaged)
        #expect(try V1Fixture.config(s.repo)["format"] as? Int == 1)
    }
}
