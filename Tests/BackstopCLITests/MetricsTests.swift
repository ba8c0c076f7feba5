import Foundation
import Testing

/// `backstop run --metrics-file` / `metrics-file:`: Prometheus text format for node_exporter's
/// textfile collector, read back with the real parser (PyPI's prometheus-client).
@Suite struct MetricsTests {
    /// Every sample in a metrics file as "name{label=value,...}" → value, parsed by
    /// `prometheus_client.parser.text_string_to_metric_families` (which refuses malformed text).
    static func parse(_ path: String, _ s: Scratch) throws -> [String: Double] {
        try s.write("parse.py", """
            import json, math, sys
            from prometheus_client.parser import text_string_to_metric_families
            out = {}
            for family in text_string_to_metric_families(open(sys.argv[1]).read()):
                for sample in family.samples:
                    labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                    out[f"{sample.name}{{{labels}}}"] = "inf" if math.isinf(sample.value) else sample.value
            print(json.dumps(out))
            """)
        let text = try sh("python3 '\(s.sub("parse.py"))' '\(path)'")
        let parsed = try #require(try json(text) as? [String: Any], "\(text)")
        return parsed.mapValues { ($0 as? Double) ?? (($0 as? String) == "inf" ? .infinity : .nan) }
    }

    func policy(_ s: Scratch, extra: String = "") throws -> String {
        try s.write("data/a.txt", "alpha\n")
        try s.write("dump.sql", sampleDump())
        try s.write("policy.yaml", """
            repository: \(s.repo)
            jobs:
              - source: datadir
                kind: filesystem
                paths: [\(s.sub("data"))]
              - source: dump
                kind: logical
                command: cat \(s.sub("dump.sql"))
                format: mysqldump
            \(extra)
            """)
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        return s.sub("policy.yaml")
    }

    /// Proves: a run writes every promised metric, the parser reads it, and the values are the
    /// repository's own (as `list --json` and `stats --json` give them).
    @Test func aRunWritesMetricsThePrometheusParserReads() throws {
        let s = Scratch()
        let p = try policy(s)
        let file = s.sub("textfile/backstop.prom")
        try FileManager.default.createDirectory(atPath: s.sub("textfile"), withIntermediateDirectories: true)
        let r = try CLI.run(["run", p, "--metrics-file", file])
        #expect(r.status == 0, "\(r.stderr)")
        let m = try Self.parse(file, s)
        let list = try listedSnapshots(CLI.run(["list", "--json", "--repo", s.repo]).stdout)
        let stats = try #require(try json(CLI.run(["stats", "--json", "--repo", s.repo]).stdout) as? [String: Any])
        for source in ["datadir", "dump"] {
            let snapshot = try #require(list.first { $0["source"] as? String == source })
            let completed = try #require(unixSeconds(snapshot["completedAt"] as? String))
            #expect(m["backstop_last_success_timestamp_seconds{source=\(source)}"].map { abs($0 - completed) < 1 } == true, "\(m)")
            #expect(m["backstop_last_exit_code{source=\(source)}"] == 0)
            #expect(m["backstop_snapshots{source=\(source)}"] == 1)
            #expect(m["backstop_last_bytes_in{source=\(source)}"] == (snapshot["bytesIn"] as? Double))
            #expect(m["backstop_last_bytes_stored{source=\(source)}"] == (snapshot["bytesStored"] as? Double))
            #expect(m["backstop_last_bytes_new{source=\(source)}"] == (snapshot["bytesNew"] as? Double))
            #expect(m["backstop_verification_failures{source=\(source)}"] == 0)
            #expect(m["backstop_last_duration_seconds{source=\(source)}"].map { $0 >= 0 } == true)
            #expect(m["backstop_last_attempt_timestamp_seconds{source=\(source)}"].map { $0 > 1_700_000_000 } == true)
            // Verified right after the backup (after-backup: quick is the default).
            #expect(m["backstop_newest_verified_snapshot_age_seconds{source=\(source)}"].map { $0 >= 0 && $0 < 3600 } == true, "\(m)")
        }
        #expect(m["backstop_repository_deduplicated_bytes{repository=\(s.repo)}"] == (stats["deduplicatedBytes"] as? Double))
        #expect(m["backstop_repository_stored_bytes{repository=\(s.repo)}"] == (stats["storedBytes"] as? Double))
        #expect(m["backstop_run_exit_code{policy=\(p)}"] == 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: s.sub("textfile")) == ["backstop.prom"], "no temporary file left")
    }

    /// Proves: `metrics-file:` in the policy (relative to the policy file) is used; a failing job
    /// shows its exit code while its last success stays the earlier snapshot's time.
    @Test func thePolicyKeyWritesMetricsAndAFailureKeepsTheLastSuccess() throws {
        let s = Scratch()
        let p = try policy(s, extra: "metrics-file: metrics/backstop.prom")
        try FileManager.default.createDirectory(atPath: s.sub("metrics"), withIntermediateDirectories: true)
        #expect(try CLI.run(["run", p, "--time", "2024-03-24T22:00:00Z"]).status == 0)
        let first = try Self.parse(s.sub("metrics/backstop.prom"), s)
        #expect(first["backstop_last_success_timestamp_seconds{source=datadir}"].map { abs($0 - 1_711_317_600) < 1 } == true, "\(first)")
        try FileManager.default.removeItem(atPath: s.sub("data"))
        let failed = try CLI.run(["run", p, "--time", "2024-03-25T22:00:00Z"])
        #expect(failed.status == 66, "\(failed.stderr)")
        let second = try Self.parse(s.sub("metrics/backstop.prom"), s)
        #expect(second["backstop_last_exit_code{source=datadir}"] == 66, "\(second)")
        #expect(second["backstop_last_success_timestamp_seconds{source=datadir}"] == first["backstop_last_success_timestamp_seconds{source=datadir}"])
        #expect(second["backstop_last_exit_code{source=dump}"] == 0)
        #expect(second["backstop_snapshots{source=dump}"] == 2)
        #expect(second["backstop_run_exit_code{policy=\(p)}"] == 66)
    }

    /// Proves: a metrics file that cannot be written is an I/O error (74) that names the file,
    /// after the run itself completed (its snapshots are kept).
    @Test func anUnwritableMetricsFileIsSaid() throws {
        let s = Scratch()
        let p = try policy(s)
        let r = try CLI.run(["run", p, "--metrics-file", s.sub("no-such-dir/backstop.prom")])
        #expect(r.status == 74, "\(r.stderr)")
        #expect(r.stderr.contains("cannot write the metrics file \(s.sub("no-such-dir/backstop.prom"))"), "\(r.stderr)")
        #expect(try listedSnapshots(CLI.run(["list", "--json", "--repo", s.repo]).stdout).count == 2)
    }
}

/// Seconds since 1970 of a `list --json` time (`2024-03-24T22:00:00.000Z`).
func unixSeconds(_ text: String?) -> Double? {
    guard let text else { return nil }
    let f = ISO8601DateFormatter()
    f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    return f.date(from: text)?.timeIntervalSince1970
}
