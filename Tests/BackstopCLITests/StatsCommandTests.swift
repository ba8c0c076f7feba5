import Foundation
import Testing

/// Proves what `list`, `show`, `stats` and `prune --dry-run` say about sizes in format 2: each
/// snapshot's new bytes, the repository's deduplicated size, and what a prune would free.
@Suite struct StatsCommandTests {
    func field<T>(_ object: Any?, _ key: String) -> T? { (object as? [String: Any])?[key] as? T }

    @Test func sizesFollowWhatEachBackupAdded() throws {
        let s = Scratch()
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        _ = try sh("mkdir -p '\(s.sub("src"))' && head -c 3000000 /dev/urandom > '\(s.sub("src/big.bin"))' && echo one > '\(s.sub("src/a.txt"))'")
        for day in 1...3 {
            let b = try CLI.run(["backup", s.sub("src"), "--source", "s", "--time", "2024-04-0\(day)T02:00:00Z", "--repo", s.repo])
            #expect(b.status == 0, "\(b.stderr)")
        }
        let list = try listedSnapshots(CLI.run(["list", "--json", "--repo", s.repo]).stdout)
        #expect(list.count == 3)
        let new = list.compactMap { $0["bytesNew"] as? Int }
        let stored = list.compactMap { $0["bytesStored"] as? Int }
        #expect(new.count == 3 && new[0] > 2_900_000, "the first backup stores the random file: \(new)")
        #expect(new[1] == 0 && new[2] == 0, "unchanged nights add nothing: \(new)")
        #expect(stored.allSatisfy { $0 >= new[0] }, "each snapshot uses all of its frames: \(stored)")

        let stats = try json(CLI.run(["stats", "--json", "--repo", s.repo]).stdout)
        let dedup: Int = try #require(field(stats, "deduplicatedBytes"))
        let total: Int = try #require(field(stats, "storedBytes"))
        #expect(field(stats, "snapshots") == 3)
        #expect(total > 3 * 2_900_000 && dedup < total / 2, "stored \(total), deduplicated \(dedup)")
        let onDisk = try Int(sh("du -sb --apparent-size '\(s.repo)/frames' | cut -f1").trimmingCharacters(in: .whitespacesAndNewlines))!
        let frameBytes: Int = try #require(field(stats, "frameBytes"))
        #expect(frameBytes <= onDisk && onDisk - frameBytes < 64 * 1024, "frame bytes \(frameBytes), frames/ on disk \(onDisk)")

        let text = try CLI.run(["show", list[2]["id"] as! String, "--repo", s.repo]).stdout
        #expect(text.contains("0 B new"), "\(text)")

        // Change the big file, back up, then a prune keeping the last one frees the old frames.
        _ = try sh("head -c 3000000 /dev/urandom > '\(s.sub("src/big.bin"))'")
        #expect(try CLI.run(["backup", s.sub("src"), "--source", "s", "--time", "2024-04-04T02:00:00Z", "--repo", s.repo]).status == 0)
        try s.write("policy.yaml", "repository: \(s.repo)\njobs:\n  - source: s\n    kind: filesystem\n    paths: [\(s.sub("src"))]\nretention:\n  keep-last: 1\n")
        let dry = try CLI.run(["prune", "--policy", s.sub("policy.yaml"), "--dry-run", "--json"])
        #expect(dry.status == 0, "\(dry.stderr)")
        let freed: Int = try #require(field(try json(dry.stdout), "bytesFreed"))
        #expect(freed > 2_900_000, "the old random file's frames: \(freed)")
        let prune = try CLI.run(["prune", "--policy", s.sub("policy.yaml"), "--json"])
        #expect(prune.status == 0, "\(prune.stderr)")
        let removed: Int = try #require(field(try json(prune.stdout), "bytesFreed"))
        #expect(abs(removed - freed) < 16 * 1024, "dry run \(freed), prune \(removed)")
        let after = try json(CLI.run(["stats", "--json", "--repo", s.repo]).stdout)
        #expect(field(after, "snapshots") == 1)
        #expect(try CLI.run(["verify", "--all", "--repo", s.repo]).status == 0)
    }
}
