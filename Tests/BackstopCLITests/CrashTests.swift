import Foundation
import Testing

/// Proves atomic commit: a backup killed with SIGKILL at random moments leaves either no new
/// snapshot or a whole one that verifies, never alters what was stored before, and the catalog
/// agrees with `snapshots/` once the repository is opened again.
@Suite struct CrashTests {
    /// Checks one snapshot folder with standard tools: sums, and the payload's stream digest.
    func verifyWithStandardTools(_ folder: String) throws {
        _ = try sh("cd '\(folder)' && sha256sum --quiet -c SHA256SUMS")
        let manifest = try #require(try json(String(contentsOfFile: folder + "/manifest.json", encoding: .utf8)) as? [String: Any])
        // Format 2: the frames of frames.tsv, concatenated, are the payload's zstd stream.
        let repo = ((folder as NSString).deletingLastPathComponent as NSString).deletingLastPathComponent
        let id = (folder as NSString).lastPathComponent
        let stream = try sh(catFramesCommand(repo, id) + " | zstd -dc | sha256sum | cut -d' ' -f1")
        let digest = stream.trimmingCharacters(in: .whitespacesAndNewlines)
        if let want = manifest["sha256"] as? String {
            #expect(digest == want, "\(folder): stream digest")
        } else {
            // Frames reused unread (files cache): no stream digest; the size must still agree.
            let size = try sh(catFramesCommand(repo, id) + " | zstd -dc | wc -c").trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(Int64(size) == (manifest["bytesIn"] as? NSNumber)?.int64Value, "\(folder): stream size")
        }
    }

    @Test func killedBackupsLeaveNothingOrAWholeSnapshot() throws {
        let s = Scratch()
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        // About 40 MB: large files and many small ones, so kills land in every phase.
        _ = try sh("""
            mkdir -p '\(s.sub("src/small"))' && cd '\(s.sub("src"))' &&
            head -c 16000000 /dev/urandom > random.bin &&
            yes 'INSERT INTO t VALUES (1, "backstop"), (2, "restore");' | head -c 24000000 > dump.txt &&
            for i in $(seq 1 400); do echo "file $i" > small/f$i; done
            """)
        let baseline = try CLI.run(["backup", s.sub("src"), "--source", "base", "--repo", s.repo])
        #expect(baseline.status == 0)
        let baselineID = baseline.stdout.trimmingCharacters(in: .whitespacesAndNewlines)

        // Time one full backup to spread the kills over it.
        let started = Date()
        #expect(try CLI.run(["backup", s.sub("src"), "--source", "timing", "--repo", s.repo]).status == 0)
        let duration = Date().timeIntervalSince(started)

        var generator = SystemRandomNumberGenerator()
        var completed = 0, killed = 0
        for trial in 0..<16 {
            let p = try OwnedChild(CLI.binary, ["backup", s.sub("src"), "--source", "trial\(trial)", "--repo", s.repo, "--lock-timeout", "10s"])
            usleep(useconds_t(Double.random(in: 0...(duration * 1.1), using: &generator) * 1_000_000))
            p.signal(SIGKILL)
            if p.wait() { completed += 1 } else { killed += 1 }

            // A folder with a manifest is a committed snapshot and must be whole; one without
            // is the killed backup's incomplete snapshot, which no command lists.
            let folders = try FileManager.default.contentsOfDirectory(atPath: s.repo + "/snapshots").sorted()
            let committed = folders.filter { FileManager.default.fileExists(atPath: s.repo + "/snapshots/\($0)/manifest.json") }
            #expect(folders.count - committed.count <= 1, "trial \(trial): at most the killed backup is incomplete: \(folders)")
            for f in committed { try verifyWithStandardTools(s.repo + "/snapshots/" + f) }
            #expect(committed.contains(baselineID))
            // Opening reconciles: the catalog lists exactly the committed snapshots.
            let list = try CLI.run(["list", "--json", "--repo", s.repo])
            #expect(list.status == 0, "\(list.stderr)")
            let ids = (try? listedSnapshots(list.stdout))?.compactMap { $0["id"] as? String }.sorted()
            #expect(ids == committed, "trial \(trial): catalog agrees with the committed snapshots")
        }
        #expect(killed > 0, "some trials were killed mid-backup (\(completed) completed)")

        // The next writer breaks the dead writer's lock, clears tmp/ and removes the incomplete
        // snapshot the last kill may have left.
        let after = try CLI.run(["backup", s.sub("src"), "--source", "after", "--repo", s.repo])
        #expect(after.status == 0, "\(after.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: s.repo + "/tmp").isEmpty)
        #expect(!FileManager.default.fileExists(atPath: s.repo + "/locks/writer.lock"))
        let folders = try FileManager.default.contentsOfDirectory(atPath: s.repo + "/snapshots")
        #expect(folders.allSatisfy { FileManager.default.fileExists(atPath: s.repo + "/snapshots/\($0)/manifest.json") }, "\(folders)")
    }
}
