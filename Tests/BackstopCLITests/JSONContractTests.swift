import Foundation
import Testing

/// The JSON contract (README "JSON output"): every `--json` document is an object with
/// `schemaVersion`, and matches its schema in docs/json, checked by PyPI's `jsonschema`.
@Suite struct JSONContractTests {
    /// docs/json in this checkout.
    static let schemas = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("docs/json").path

    /// Validates each (schema name, document) with jsonschema (Draft 2020-12, formats checked);
    /// returns the problems, one line each.
    static func validate(_ documents: [(schema: String, text: String)], in s: Scratch) throws -> String {
        var pairs: [String] = []
        for (i, d) in documents.enumerated() {
            let path = s.sub("json/\(i)-\(d.schema).json")
            try s.write("json/\(i)-\(d.schema).json", d.text)
            pairs += [d.schema, path]
        }
        let script = """
            import json, sys, jsonschema
            root, args = sys.argv[1], sys.argv[2:]
            bad = []
            for name, path in zip(args[0::2], args[1::2]):
                schema = json.load(open(f"{root}/{name}.schema.json"))
                jsonschema.Draft202012Validator.check_schema(schema)
                text = open(path).read()
                try:
                    doc = json.loads(text)
                except ValueError as e:
                    bad.append(f"{name}: not one JSON document ({e}): {text[:200]!r}"); continue
                v = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
                for e in v.iter_errors(doc):
                    bad.append(f"{name} ({path}): {'/'.join(map(str, e.absolute_path))}: {e.message}")
            print("\\n".join(bad), file=sys.stderr)
            sys.exit(1 if bad else 0)
            """
        try s.write("validate.py", script)
        let quoted = pairs.map { "'\($0)'" }.joined(separator: " ")
        do {
            try sh("python3 '\(s.sub("validate.py"))' '\(schemas)' \(quoted)")
            return ""
        } catch let e as ShellError {
            return e.description
        }
    }

    /// Runs `backstop ARGS…` and returns its stdout after checking the exit status.
    func json(_ args: [String], status: Int32 = 0, stdin: String? = nil, _ s: Scratch) throws -> String {
        var stdinFile: String?
        if let stdin {
            try s.write("stdin.txt", stdin)
            stdinFile = s.sub("stdin.txt")
        }
        let r = try CLI.run(args + ["--json"], stdinFile: stdinFile)
        #expect(r.status == status, "\(args): \(r.stderr)")
        return r.stdout
    }

    /// Proves: the real `--json` output of every command (and of failures, usage errors
    /// included) matches its schema in docs/json; lists are objects with `schemaVersion`.
    @Test(.timeLimit(.minutes(5))) func everyCommandsJSONMatchesItsSchema() throws {
        let s = Scratch()
        let repo = ["--repo", s.repo]
        try s.write("data/a.txt", "alpha\n")
        try s.write("data/sub/b.txt", "beta\n")
        try s.write("dump.sql", sampleDump())
        try s.write("policy.yaml", """
            repository: \(s.repo)
            timezone: UTC
            jobs:
              - source: datadir
                kind: filesystem
                paths: [\(s.sub("data"))]
              - source: dump
                kind: logical
                command: cat \(s.sub("dump.sql"))
                format: mysqldump
            retention:
              keep-last: 2
            verify:
              after-backup: quick
              sample: 1
            """)
        let policy = s.sub("policy.yaml")
        var docs: [(schema: String, text: String)] = []
        docs.append(("init", try json(["init"] + repo, s)))
        docs.append(("backup", try json(["backup", s.sub("data"), "--source", "app", "--time", "2024-03-24T22:00:00Z"] + repo, s)))
        try s.write("data/a.txt", "alpha, changed\n")
        let second = try json(["backup", s.sub("data"), "--source", "app", "--time", "2024-03-25T22:00:00Z"] + repo, s)
        docs.append(("backup", second))
        docs.append(("backup", try json(["backup", "--stdin", "--source", "db", "--format", "mysqldump",
                                         "--time", "2024-03-25T23:00:00Z"] + repo, stdin: sampleDump(), s)))
        let ids = try #require(((try CLITestsJSON.object(json(["list"] + repo, s))["snapshots"]) as? [[String: Any]])?.compactMap { $0["id"] as? String })
        #expect(ids.count == 3)
        docs.append(("list", try json(["list"] + repo, s)))
        docs.append(("show", try json(["show", ids[0]] + repo, s)))
        docs.append(("show", try json(["show", ids[0], "--entries"] + repo, s)))
        docs.append(("event-add", try json(["event", "add", "upgrade", "--at", "2024-03-25T12:00:00Z", "--note", "11.4"] + repo, s)))
        docs.append(("event-list", try json(["event", "list"] + repo, s)))
        docs.append(("select", try json(["select", "--before", "upgrade", "--source", "app"] + repo, s)))
        docs.append(("restore", try json(["restore", ids[1], "--to", s.sub("restored")] + repo, s)))
        docs.append(("export", try json(["export", ids[2], "--to", s.sub("export.sql")] + repo, s)))
        docs.append(("diff", try json(["diff", ids[0], ids[1]] + repo, s)))
        docs.append(("verify", try json(["verify", "--all"] + repo, s)))
        docs.append(("verify", try json(["verify", "--sample", "1"] + repo, s)))
        docs.append(("stats", try json(["stats"] + repo, s)))
        docs.append(("policy-check", try json(["policy", "check", policy], s)))
        docs.append(("run", try json(["run", policy, "--time", "2024-03-26T02:00:00Z"], s)))
        docs.append(("run", try json(["run", policy, "--dry-run", "--time", "2024-03-27T02:00:00Z"], s)))
        let runID = try #require(((try CLITestsJSON.object(json(["list", "--source", "dump"] + repo, s))["snapshots"]) as? [[String: Any]])?
            .compactMap { $0["runID"] as? String }.first)
        docs.append(("restore-run", try json(["restore", "--run", runID, "--to", s.sub("run-restored")] + repo, s)))
        docs.append(("prune", try json(["prune", "--policy", policy, "--dry-run", "--time", "2024-03-28T02:00:00Z"], s)))
        docs.append(("prune", try json(["prune", "--policy", policy, "--time", "2024-03-28T02:00:00Z"], s)))
        let events = try CLITestsJSON.object(json(["event", "list"] + repo, s))["events"] as? [[String: Any]]
        docs.append(("event-remove", try json(["event", "remove", try #require(events?.first?["id"] as? String)] + repo, s)))
        docs.append(("migrate", try json(["migrate"] + repo, s)))
        docs.append(("catalog-rebuild", try json(["catalog", "rebuild"] + repo, s)))
        docs.append(("version", try json(["--version"], s)))
        docs.append(("report", try json(["report", "--html", s.sub("report.html")] + repo, s)))
        // copy, logs and key (commands that came with S3, point-in-time recovery, encryption).
        let target = ["--repo", s.sub("target")]
        _ = try json(["init"] + target, s)
        docs.append(("copy", try json(["copy", "--from", s.repo, "--to", s.sub("target"), "--all", "--dry-run"], s)))
        docs.append(("copy", try json(["copy", "--from", s.repo, "--to", s.sub("target"), "--all"], s)))
        let wal = "000000010000000000000001"
        try s.write("pg_wal/" + wal, String(repeating: "wal page\n", count: 1000))
        docs.append(("logs-segments", try json(["logs", "push", "--source", "pg-wal", s.sub("pg_wal/" + wal)] + repo, s)))
        docs.append(("logs-segments", try json(["logs", "list"] + repo, s)))
        docs.append(("logs-segment", try json(["logs", "get", "--source", "pg-wal", wal, s.sub("wal-copy")] + repo, s)))
        docs.append(("logs-check", try json(["logs", "check", "--source", "pg-wal"] + repo, s)))
        docs.append(("key-generate", try json(["key", "generate", "--output", s.sub("identity.txt")], s)))
        let recipient = try #require(try CLITestsJSON.object(docs.last!.text)["recipient"] as? String)
        let encrypted = ["--repo", s.sub("encrypted")]
        _ = try json(["init", "--encrypt", "--recipient", recipient, "--writer-key", s.sub("writer.key")] + encrypted, s)
        try sh("age-keygen -o '\(s.sub("second.txt"))' 2>/dev/null")
        let secondRecipient = try String(contentsOfFile: s.sub("second.txt"), encoding: .utf8)
            .split(separator: "\n").first { $0.hasPrefix("# public key: ") }.map { String($0.dropFirst("# public key: ".count)) }
        docs.append(("key-recipients", try json(["key", "add-recipient", try #require(secondRecipient), "--identity", s.sub("identity.txt")] + encrypted, s)))

        let progress = try CLI.run(["verify", "--all", "--json", "--progress"] + repo)
        #expect(progress.status == 0, "\(progress.stderr)")
        for line in progress.stderr.split(separator: "\n") where line.hasPrefix("{") {
            docs.append(("progress-status", String(line)))
        }
        // Failures: a usage error ArgumentParser finds, one the command finds, and a library error.
        docs.append(("failure", try json(["list", "--no-such-flag"] + repo, status: 64, s)))
        docs.append(("failure", try json(["verify", "--sample", "-1"] + repo, status: 64, s)))
        docs.append(("failure", try json(["show", "nosuchsnapshot"] + repo, status: 66, s)))

        for d in docs {
            let object = try CLITestsJSON.object(d.text)
            #expect(object["schemaVersion"] as? Int == 1, "\(d.schema): \(d.text.prefix(200))")
        }
        let problems = try Self.validate(docs, in: s)
        #expect(problems.isEmpty, "\(problems)")
    }

    /// Proves: a schema is not a rubber stamp: a document missing a required key, or with a
    /// duration as text, is refused by the same validator.
    @Test func theSchemasRefuseWrongDocuments() throws {
        let s = Scratch()
        let problems = try Self.validate([
            ("list", #"[{"id": "20240324T220000Z-1a2b3c4d"}]"#),
            ("failure", #"{"schemaVersion": 1, "error": "x"}"#),
            ("run", #"{"schemaVersion": 1, "runID": "20240324T220000Z-1a2b3c4d", "policy": "p", "dryRun": false, "startedAt": "2024-03-24T22:00:00.000Z", "finishedAt": "2024-03-24T22:00:00.000Z", "duration": "1s", "jobs": [], "verified": [], "pruned": [], "sampled": [], "exitCode": 0}"#),
        ], in: s)
        #expect(problems.contains("list ("), "\(problems)")
        #expect(problems.contains("failure ("), "\(problems)")
        #expect(problems.contains("run (") && problems.contains("duration"), "\(problems)")
    }
}

enum CLITestsJSON {
    /// The top-level object of a JSON document (every `--json` document is one).
    static func object(_ text: String) throws -> [String: Any] {
        try #require(try json(text) as? [String: Any], "not a JSON object: \(text.prefix(300))")
    }
}
