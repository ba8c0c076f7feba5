import Foundation
import Yams

/// Reads policy files strictly: unknown keys, duplicate keys, wrong types, negative counts and
/// bad durations are errors that name the line and column. All mistakes are reported at once.
///
/// Keys are kebab-case; durations are `90s`, `10m`, `36h`, `30d`, `2w`, `1y`. A relative
/// `repository` is resolved against the policy file's folder (cron's working directory is
/// not one to rely on).
public enum PolicyParser {
    public static func load(file: String) throws -> Policy {
        if FileSystem.isDirectory(file) {
            throw PolicyError.unreadable(file: file, reason: "it is a directory; name the policy's YAML file itself (for example \(file)/nightly.yaml)")
        }
        let bytes: [UInt8]
        do {
            bytes = try FileSystem.readFile(file)
        } catch let error as FileError {
            throw PolicyError.unreadable(file: file, reason: String(cString: strerror(error.errnoValue ?? EIO)))
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw PolicyError.unreadable(file: file, reason: "it is not UTF-8 text; save it as UTF-8")
        }
        return try parse(text, file: file)
    }

    public static func parse(_ text: String, file: String) throws -> Policy {
        var root: Node?
        var text = text
        var duplicates: [PolicyIssue] = []
        // A duplicate key stops Yams at once; so that the policy's other mistakes are reported
        // with it, the duplicate is marked (and then ignored) and the text composed again.
        while true {
            do {
                root = try Yams.compose(yaml: text)
                break
            } catch let error as YamlError {
                if case let .duplicatedKeysInMapping(_, context) = error, duplicates.count < 50,
                   let marked = markDuplicate(in: text, line: context.mark.line, column: context.mark.column) {
                    duplicates.append(issue(from: error))
                    text = marked
                    continue
                }
                throw PolicyError.invalid(file: file, issues: duplicates + tabIssues(text) + [issue(from: error)])
            }
        }
        var reader = Reader()
        let policy = reader.policy(root, file: file)
        let issues = duplicates + reader.issues
        if !issues.isEmpty || policy == nil {
            throw PolicyError.invalid(file: file, issues: issues.sorted { ($0.line, $0.column) < ($1.line, $1.column) })
        }
        return policy!
    }

    /// A repository named in `copy-to:`: a relative path is resolved against the policy file's
    /// folder (as `repository:` is); a URL (`s3://…`) is left as it is.
    static func resolve(_ name: String, file: String) -> String {
        if name.hasPrefix("/") || name.contains("://") { return name }
        return URL(fileURLWithPath: (file as NSString).deletingLastPathComponent).appendingPathComponent(name).standardizedFileURL.path
    }

    /// Keys renamed by `markDuplicate` start with this; the reader skips them.
    static let duplicateMarker = "backstop-duplicate-key-"

    /// `text` with the key at `line`:`column` (1-based) renamed with `duplicateMarker`, or nil.
    static func markDuplicate(in text: String, line: Int, column: Int) -> String? {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { Array(String($0).unicodeScalars) }
        guard line >= 1, line <= lines.count, column >= 1, column <= lines[line - 1].count else { return nil }
        var at = column - 1
        if lines[line - 1][at] == "\"" || lines[line - 1][at] == "'" { at += 1 }
        let marker = Array("\(duplicateMarker)\(line)-".unicodeScalars)
        if lines[line - 1][at...].starts(with: Array(duplicateMarker.unicodeScalars)) { return nil }
        lines[line - 1].insert(contentsOf: marker, at: at)
        return lines.map { String(String.UnicodeScalarView($0)) }.joined(separator: "\n")
    }

    /// YAML indents with spaces only; a tab in the indentation makes the scanner fail with a
    /// message that does not say so. One issue per line indented with a tab.
    static func tabIssues(_ text: String) -> [PolicyIssue] {
        var issues: [PolicyIssue] = []
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let indentation = line.prefix { $0 == " " || $0 == "\t" }
            if let tab = indentation.firstIndex(of: "\t") {
                issues.append(PolicyIssue(line: n + 1, column: line.distance(from: line.startIndex, to: tab) + 1,
                                          message: "a tab in the indentation; YAML indents with spaces only: replace the tab with spaces"))
            }
        }
        return issues
    }

    static func issue(from error: YamlError) -> PolicyIssue {
        switch error {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _), let .composer(context, problem, mark, _):
            return PolicyIssue(line: mark.line, column: mark.column, message: "YAML syntax: \(problem)\(context.map { " \($0.text)" } ?? "")")
        case let .duplicatedKeysInMapping(duplicates, context):
            return PolicyIssue(line: context.mark.line, column: context.mark.column,
                               message: "duplicate key \(duplicates.map { "'\($0)'" }.joined(separator: ", ")) in this mapping; give each key once")
        default:
            return PolicyIssue(line: 1, column: 1, message: "YAML: \(error)")
        }
    }
}

private struct Reader {
    var issues: [PolicyIssue] = []

    mutating func fail(_ node: Node?, _ message: String, fallback: Mark? = nil) {
        let mark = node?.mark ?? fallback
        issues.append(PolicyIssue(line: mark?.line ?? 1, column: mark?.column ?? 1, message: message))
    }

    /// The pairs of a mapping, with unknown keys reported.
    mutating func mapping(_ node: Node?, _ what: String, allowed: [String]) -> [String: (key: Node, value: Node)]? {
        guard let node else { return nil }
        guard case let .mapping(m) = node else {
            fail(node, "\(what) must be a mapping of keys (\(allowed.joined(separator: ", ")))")
            return nil
        }
        var out: [String: (key: Node, value: Node)] = [:]
        for (k, v) in m {
            guard case let .scalar(s) = k else {
                fail(k, "keys of \(what) must be plain words")
                continue
            }
            if s.string.hasPrefix(PolicyParser.duplicateMarker) { continue }   // reported as a duplicate
            if !allowed.contains(s.string) {
                let hint = allowed.first { $0.replacingOccurrences(of: "-", with: "") == s.string.lowercased().replacingOccurrences(of: "_", with: "").replacingOccurrences(of: "-", with: "") }
                fail(k, "unknown key '\(s.string)' in \(what)\(hint.map { "; did you mean '\($0)'?" } ?? ""); allowed: \(allowed.joined(separator: ", "))")
                continue
            }
            out[s.string] = (k, v)
        }
        return out
    }

    mutating func string(_ entry: (key: Node, value: Node)?, _ name: String) -> String? {
        guard let entry else { return nil }
        guard case let .scalar(s) = entry.value, !s.string.isEmpty else {
            fail(entry.value, "'\(name)' must be a non-empty string", fallback: entry.key.mark)
            return nil
        }
        return s.string
    }

    mutating func count(_ entry: (key: Node, value: Node)?, _ name: String) -> Int? {
        guard let entry else { return nil }
        guard case let .scalar(s) = entry.value, let n = Int(s.string) else {
            fail(entry.value, "'\(name)' must be a whole number", fallback: entry.key.mark)
            return nil
        }
        guard n >= 0 else {
            fail(entry.value, "'\(name)' must not be negative (got \(n))", fallback: entry.key.mark)
            return nil
        }
        return n
    }

    mutating func duration(_ entry: (key: Node, value: Node)?, _ name: String) -> TimeInterval? {
        guard let entry, let text = string(entry, name) else { return nil }
        guard let seconds = DurationText.seconds(text) else {
            fail(entry.value, "'\(name)' is not a duration: \"\(text)\"; write whole numbers with units, largest first, e.g. 90s, 10m, 1h30m, 36h, 30d, 2w, 1y")
            return nil
        }
        return seconds
    }

    mutating func strings(_ entry: (key: Node, value: Node)?, _ name: String) -> [String] {
        guard let entry else { return [] }
        guard case let .sequence(seq) = entry.value else {
            fail(entry.value, "'\(name)' must be a list, e.g. [a, b]", fallback: entry.key.mark)
            return []
        }
        var out: [String] = []
        for item in seq {
            guard case let .scalar(s) = item, !s.string.isEmpty else {
                fail(item, "items of '\(name)' must be non-empty strings")
                continue
            }
            out.append(s.string)
        }
        return out
    }

    mutating func policy(_ root: Node?, file: String) -> Policy? {
        guard let root else {
            fail(nil, "the policy is empty; it needs at least 'repository' and 'jobs'")
            return nil
        }
        guard let top = mapping(root, "the policy", allowed: ["repository", "timezone", "lock-timeout", "jobs", "retention", "verify", "copy-to", "metrics-file"]) else { return nil }
        var repository = string(top["repository"], "repository")
        if top["repository"] == nil { fail(root, "missing 'repository': the path (or s3://bucket/prefix) of the repository") }
        if let r = repository, !r.hasPrefix("/"), !r.contains("://") {
            repository = URL(fileURLWithPath: (file as NSString).deletingLastPathComponent).appendingPathComponent(r).standardizedFileURL.path
        }
        var copyTo: [String] = []
        if let entry = top["copy-to"] {
            if case .sequence = entry.value {
                copyTo = strings(entry, "copy-to")
                if copyTo.isEmpty, case let .sequence(seq) = entry.value, seq.isEmpty {
                    fail(entry.value, "'copy-to' is an empty list; name at least one repository, or leave the key out")
                }
            } else if let one = string(entry, "copy-to") {
                copyTo = [one]
            }
            var seenTargets = Set<String>()
            var items: [Node] = []
            if case let .sequence(seq) = entry.value { items = Array(seq) }
            for (i, target) in copyTo.enumerated() {
                let resolved = PolicyParser.resolve(target, file: file)
                let node = i < items.count ? items[i] : entry.value
                if let repository, resolved == repository {
                    fail(node, "'copy-to' names the policy's own repository (\(repository)); name another repository to copy to")
                } else if !seenTargets.insert(resolved).inserted {
                    fail(node, "'copy-to' names \(target) twice; give each repository once")
                }
                copyTo[i] = resolved
            }
        }
        var zone = TimeZone(identifier: "UTC")!
        if let name = string(top["timezone"], "timezone") {
            if let z = TimeZone(identifier: name) { zone = z } else {
                fail(top["timezone"]!.value, "unknown time zone '\(name)'; use an IANA name such as Europe/Berlin")
            }
        }
        let lockTimeout = duration(top["lock-timeout"], "lock-timeout") ?? 600
        var jobs: [Policy.Job] = []
        if let entry = top["jobs"] {
            if case let .sequence(seq) = entry.value {
                for node in seq { if let j = job(node) { jobs.append(j) } }
            } else {
                fail(entry.value, "'jobs' must be a list of jobs (an empty list [] for a policy that only verifies and prunes)", fallback: entry.key.mark)
            }
        }
        var seen: [String: Int] = [:]
        for (i, j) in jobs.enumerated() {
            if let first = seen[j.source] {
                fail(top["jobs"]?.value, "jobs \(first + 1) and \(i + 1) both have source '\(j.source)'; each job needs its own source name")
            }
            seen[j.source] = i
        }
        let retention = top["retention"].flatMap { retentionPolicy($0.value) }
        let verification = top["verify"].flatMap { verify($0.value) } ?? Policy.Verification()
        var metricsFile = string(top["metrics-file"], "metrics-file")
        if let m = metricsFile, !m.hasPrefix("/") {
            metricsFile = URL(fileURLWithPath: (file as NSString).deletingLastPathComponent).appendingPathComponent(m).standardizedFileURL.path
        }
        guard let repository, issues.isEmpty else { return nil }
        return Policy(file: file, repository: repository, timeZone: zone, lockTimeout: lockTimeout, jobs: jobs,
                      retention: retention, verification: verification, copyTo: copyTo, metricsFile: metricsFile)
    }

    mutating func job(_ node: Node) -> Policy.Job? {
        guard let m = mapping(node, "a job", allowed: ["source", "kind", "paths", "exclude", "command", "format", "tags", "before", "after", "files-cache",
                                                        "socket", "host", "port", "user", "defaults-file"]) else { return nil }
        guard let source = string(m["source"], "source") else {
            if m["source"] == nil { fail(node, "a job needs 'source' (the name its snapshots are filed under)") }
            return nil
        }
        if !Name.isValid(source) { fail(m["source"]!.value, "source '\(source)' may use only \(Name.allowed)") }
        var kind: SnapshotKind?
        var physical = false
        if let k = string(m["kind"], "kind") {
            // `kind: mariabackup`: a hot physical backup, stored as a filesystem snapshot.
            physical = k == "mariabackup"
            kind = physical ? .filesystem : SnapshotKind(rawValue: k)
            if kind == nil { fail(m["kind"]!.value, "kind must be filesystem, logical or mariabackup, not '\(k)'") }
        } else if m["kind"] == nil {
            fail(node, "job '\(source)' needs 'kind: filesystem', 'kind: logical' or 'kind: mariabackup'")
        }
        let connectionKeys = ["socket", "host", "port", "user", "defaults-file"]
        if physical {
            for key in ["paths", "exclude", "command", "format", "files-cache"] where m[key] != nil {
                fail(m[key]!.key, "'\(key)' does not apply to a mariabackup job; job '\(source)' takes 'socket' or 'host' and 'port', 'user', 'defaults-file'")
            }
            if m["socket"] != nil && (m["host"] != nil || m["port"] != nil) {
                fail(m["socket"]!.key, "mariabackup job '\(source)' gives 'socket' and 'host'/'port'; give one way to reach the server")
            }
        } else {
            for key in connectionKeys where m[key] != nil {
                fail(m[key]!.key, "'\(key)' is for mariabackup jobs; job '\(source)' is \(kind?.rawValue ?? "not one")")
            }
        }
        var job = Policy.Job(source: source, kind: kind ?? .filesystem)
        job.paths = strings(m["paths"], "paths")
        job.exclude = strings(m["exclude"], "exclude")
        job.tags = strings(m["tags"], "tags")
        if case let .sequence(items)? = m["tags"]?.value {
            for item in items {
                if case let .scalar(s) = item, !s.string.isEmpty, !Name.isValid(s.string) { fail(item, "tag '\(s.string)' may use only \(Name.allowed)") }
            }
        }
        job.command = string(m["command"], "command")
        job.before = string(m["before"], "before")
        job.after = string(m["after"], "after")
        if let f = string(m["format"], "format") {
            if let choice = DumpFormatChoice(rawValue: f) { job.format = choice } else {
                fail(m["format"]!.value, "format must be auto, mysqldump, pgdump, pgdump-custom, pgdump-tar, pgdumpall or raw, not '\(f)'")
            }
        }
        if let cache = string(m["files-cache"], "files-cache") {
            switch cache {
            case "on": job.filesCache = true
            case "off": job.filesCache = false
            default: fail(m["files-cache"]!.value, "files-cache must be on or off, not '\(cache)'")
            }
        }
        if physical {
            job.mariabackup = MariaBackupConnection(socket: string(m["socket"], "socket"), host: string(m["host"], "host"),
                                                    port: count(m["port"], "port"), user: string(m["user"], "user"),
                                                    defaultsFile: string(m["defaults-file"], "defaults-file"))
            return job
        }
        switch kind {
        case .filesystem?:
            if job.paths.isEmpty { fail(m["paths"]?.value ?? node, "filesystem job '\(source)' needs 'paths'") }
            if m["command"] != nil { fail(m["command"]!.key, "'command' is for logical jobs; job '\(source)' is filesystem") }
            if m["format"] != nil { fail(m["format"]!.key, "'format' is for logical jobs; job '\(source)' is filesystem") }
        case .logical?:
            if job.command == nil && m["command"] == nil { fail(node, "logical job '\(source)' needs 'command' (its output is the snapshot)") }
            if m["paths"] != nil { fail(m["paths"]!.key, "'paths' is for filesystem jobs; job '\(source)' is logical") }
            if m["exclude"] != nil { fail(m["exclude"]!.key, "'exclude' is for filesystem jobs; job '\(source)' is logical") }
            if m["files-cache"] != nil { fail(m["files-cache"]!.key, "'files-cache' is for filesystem jobs; job '\(source)' is logical") }
        case nil:
            break
        }
        return kind == nil ? nil : job
    }

    mutating func retentionPolicy(_ node: Node) -> RetentionPolicy? {
        guard let m = mapping(node, "retention", allowed: ["keep-last", "keep-hourly", "keep-daily", "keep-weekly", "keep-monthly",
                                                          "keep-yearly", "keep-within", "keep-tag", "keep-before-event", "keep-logs"]) else { return nil }
        return RetentionPolicy(
            keepLast: count(m["keep-last"], "keep-last"), keepHourly: count(m["keep-hourly"], "keep-hourly"),
            keepDaily: count(m["keep-daily"], "keep-daily"), keepWeekly: count(m["keep-weekly"], "keep-weekly"),
            keepMonthly: count(m["keep-monthly"], "keep-monthly"), keepYearly: count(m["keep-yearly"], "keep-yearly"),
            keepWithin: duration(m["keep-within"], "keep-within"), keepTags: strings(m["keep-tag"], "keep-tag"),
            keepBeforeEvent: duration(m["keep-before-event"], "keep-before-event"), keepLogs: duration(m["keep-logs"], "keep-logs"))
    }

    mutating func verify(_ node: Node) -> Policy.Verification? {
        guard let m = mapping(node, "verify", allowed: ["after-backup", "sample"]) else { return nil }
        var v = Policy.Verification()
        if let mode = string(m["after-backup"], "after-backup") {
            switch mode {
            case "quick": v.afterBackup = .quick
            case "full": v.afterBackup = .full
            case "none": v.afterBackup = nil
            default: fail(m["after-backup"]!.value, "after-backup must be quick, full or none, not '\(mode)'")
            }
        }
        v.sample = count(m["sample"], "sample") ?? 0
        return v
    }
}
