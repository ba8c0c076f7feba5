import Foundation

/// How a dump is brought forward to a moment: the dump, the binlog position it carries, and the
/// archived segments whose events run from there to `until`.
public struct BinlogReplayPlan: Sendable {
    public var snapshot: Manifest
    public var position: BinlogPosition
    public var logSource: String
    /// The files to replay, in order: the first holds the dump's position.
    public var segments: [LogSegment]
    public var until: Date
    /// Notes for the operator (the archive ends before `until`: nothing after its end is known).
    public var warnings: [String] = []

    /// What `--explain` prints: which dump, which segments, which positions.
    public var explanation: String {
        var lines = ["dump \(snapshot.id) (source \(snapshot.source), completed \(Timestamp.format(snapshot.completedAt))) carries binlog position \(position)"]
        lines.append("replaying \(logSource) from \(position.file):\(position.position) up to events before \(Timestamp.format(until)) through \(segments.count) segment(s):")
        for s in segments {
            let times = "\(s.firstEventAt.map(Timestamp.format) ?? "?") … \(s.lastEventAt.map(Timestamp.format) ?? "?")"
            lines.append("  \(s.objectName)  \(s.startPosition ?? "") → \(s.endPosition ?? "")  events \(times)\(s.partial ? "  (partial: the file was open when archived)" : "")")
        }
        return lines.joined(separator: "\n")
    }
}

/// What a point-in-time restore wrote.
public struct PointInTimeReport: Sendable, Codable {
    public var snapshot: SnapshotID
    public var target: String
    public var dumpBytes: Int64
    public var replayBytes: Int64
    public var segments: [String]
    public var until: Date
}

extension Repository {
    /// The replay from `snapshot`'s binlog position to `until` over the segments of `logSource`.
    /// A gap in the chain between the two is `LogError.gap` (65), naming it and the latest moment
    /// the chain reaches; a dump without a position is `LogError.snapshotHasNoPosition` (66).
    public func planBinlogReplay(snapshot: Manifest, logSource: String, until: Date) throws -> BinlogReplayPlan {
        try requireUnsealed(snapshot, for: "a point-in-time restore (the dump's binlog position)")
        guard let position = snapshot.binlogPosition else { throw LogError.snapshotHasNoPosition(snapshot: snapshot.id) }
        let chain = Self.chainView(try logSegments(source: logSource))
        guard !chain.isEmpty else {
            throw LogError.noSegments(source: logSource, hint: "archive binlogs with `backstop logs push --source \(logSource) FILE...` or `backstop logs follow`")
        }
        guard var i = chain.firstIndex(where: { $0.name == position.file }) else {
            let range = "\(chain.first!.name) … \(chain.last!.name)"
            throw LogError.gap(source: logSource, gap: "\(position.file), which holds the dump's position \(position), is not archived (archived: \(range))", reachable: nil, until: until)
        }
        var plan = BinlogReplayPlan(snapshot: snapshot, position: position, logSource: logSource, segments: [chain[i]], until: until)
        // Binlog times are whole seconds: the replay ends before the first event stamped T's
        // second or later, so a segment whose last event is stamped that second ends the chain.
        let second = Self.wholeSecond(until)
        if second != until {
            plan.warnings.append("binlog event times are whole seconds: replaying events stamped before \(Timestamp.format(second)) (--until rounded down); changes stamped \(Timestamp.format(second)) are not replayed, even those before \(Timestamp.format(until))")
        }
        while true {
            let s = chain[i]
            if let last = s.lastEventAt, last >= second { break }
            if i + 1 < chain.count {
                if let gap = Self.gapBetween(s, chain[i + 1]) {
                    throw LogError.gap(source: logSource, gap: gap, reachable: s.lastEventAt, until: until)
                }
                i += 1
                plan.segments.append(chain[i])
                continue
            }
            if s.partial || s.closed == false {
                if s.archivedAt < until {
                    plan.warnings.append("the archive of \(logSource) ends with \(s.objectName), archived at \(Timestamp.format(s.archivedAt)) (its last event at \(s.lastEventAt.map(Timestamp.format) ?? "?")): whatever the server wrote after that was not archived and is not replayed")
                }
            } else {
                let next = s.nextFile ?? "the next file"
                throw LogError.gap(source: logSource, gap: "\(s.name) rotates to \(next), which is not archived", reachable: s.lastEventAt, until: until)
            }
            break
        }
        for s in plan.segments {
            if let warning = s.statementWarning { plan.warnings.append("replaying " + warning) }
        }
        return plan
    }

    /// Writes the dump (one database's section with `database`, else the whole dump) followed by
    /// the binlog events of `plan` (of that database only with `database`), as one SQL stream for
    /// the `mariadb` client, to `target` (a file, or `-` for standard output).
    ///
    /// The events are decoded by `mariadb-binlog --start-position … --stop-datetime …
    /// [--database …]` over the archived segments (each checked against its SHA-256 first): it
    /// is the decoder of the server's own project, it turns row events into `BINLOG` statements
    /// the server applies exactly, and it knows every event type of every server version, which
    /// our reader (`BinlogReader`) only needs to know the headers of. Everything is checked and
    /// decoded into a temporary folder before the first byte goes to the target.
    @discardableResult
    public func restoreUntil(_ plan: BinlogReplayPlan, database: String?, to target: String, force: Bool = false) throws -> PointInTimeReport {
        let work = NSTemporaryDirectory() + "/backstop-pitr-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileSystem.makeDirectory(work, mode: 0o700)
        defer { try? FileSystem.removeTree(work) }
        var files: [String] = []
        for s in plan.segments {
            let bytes = try logFileBytes(s)
            let path = work + "/" + s.name
            let sink = try FileSink(path: path, mode: 0o600)
            try bytes.withUnsafeBytes { try sink.write($0) }
            try sink.finish()
            files.append(path)
        }
        let replay = work + "/replay.sql"
        let stop = Self.binlogDateTime(plan.until)
        var command = "exec mariadb-binlog --no-defaults --start-position=\(plan.position.position) --stop-datetime='\(stop)'"
        if let database { command += " --database=" + Self.shellQuoted(database) }
        command += " " + files.map(Self.shellQuoted).joined(separator: " ") + " > " + Self.shellQuoted(replay)
        var environment = ProcessInfo.processInfo.environment
        environment["TZ"] = "UTC"   // --stop-datetime is read in the local time zone
        let tool = try ShellCommand(command, stdout: .sameAsStderr, environment: environment)
        let (status, _) = tool.wait()
        if status != 0 { throw LogError.toolFailed(command: "mariadb-binlog", status: status, stderr: tool.tail) }
        let replayBytes = try FileSystem.readFile(replay)

        if plan.snapshot.physicalBackup != nil {
            // A hot physical backup (mariadb-backup): its data comes back with `restore --prepare`;
            // only the events from its position follow, for the server started on that copy.
            try Self.writeReplayOnly(replayBytes, to: target, force: force)
            return PointInTimeReport(snapshot: plan.snapshot.id, target: target, dumpBytes: 0,
                                     replayBytes: Int64(replayBytes.count), segments: plan.segments.map(\.objectName), until: plan.until)
        }
        let restore = LogicalRestore(repository: self, manifest: plan.snapshot, database: database, force: force)
        var report: RestoreReport
        if target == "-" {
            report = try restore.stream(into: FileDescriptorSink(fd: 1, name: "standard output"))
            let out = FileDescriptorSink(fd: 1, name: "standard output")
            do { try replayBytes.withUnsafeBytes { try out.write($0) } } catch {
                throw RestoreError.targetWrite(target: "standard output", reason: "\(error)")
            }
        } else {
            report = try restore.run(to: target)
            do {
                let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: report.target))
                defer { try? handle.close() }
                try handle.seekToEnd()
                try handle.write(contentsOf: Data(replayBytes))
                try handle.synchronize()
            } catch {
                throw RestoreError.targetWrite(target: target, reason: "\(error)")
            }
        }
        return PointInTimeReport(snapshot: plan.snapshot.id, target: target, dumpBytes: report.bytesWritten,
                                 replayBytes: Int64(replayBytes.count), segments: plan.segments.map(\.objectName), until: plan.until)
    }

    /// The events alone, to standard output or to a new file (an existing one only with `force`).
    static func writeReplayOnly(_ bytes: [UInt8], to target: String, force: Bool) throws {
        if target == "-" {
            do { try bytes.withUnsafeBytes { try FileDescriptorSink(fd: 1, name: "standard output").write($0) } } catch {
                throw RestoreError.targetWrite(target: "standard output", reason: "\(error)")
            }
            return
        }
        if FileSystem.exists(target) && !force { throw RestoreError.targetNotEmpty(target) }
        do {
            let tmp = RestoreStaging.filePath(target)
            let sink = try FileSink(path: tmp, mode: 0o600)
            try bytes.withUnsafeBytes { try sink.write($0) }
            try sink.finish()
            try FileSystem.rename(tmp, target)
        } catch {
            throw RestoreError.targetWrite(target: target, reason: "\(error)")
        }
    }

    /// `date` rounded down to its whole second (what a binlog's event times can be compared with).
    static func wholeSecond(_ date: Date) -> Date {
        Date(timeIntervalSince1970: date.timeIntervalSince1970.rounded(.down))
    }

    /// `YYYY-MM-DD HH:MM:SS` in UTC, as `--stop-datetime` takes it (whole seconds: events
    /// stamped with an earlier second are replayed).
    static func binlogDateTime(_ date: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyy-MM-dd HH:mm:ss"
        return f.string(from: date)
    }

    public static func shellQuoted(_ s: String) -> String {
        "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}

/// PostgreSQL: a restored base backup made to replay archived WAL up to a moment.
public enum PostgresRecovery {
    /// The data directory in a restored filesystem snapshot: `directory` itself when it holds
    /// `PG_VERSION`, else its one subdirectory that does (a snapshot keeps its path's last name).
    public static func dataDirectory(in directory: String) throws -> String {
        if FileSystem.exists(directory + "/PG_VERSION") { return directory }
        let candidates = try FileSystem.list(directory).map { directory + "/" + $0 }.filter { FileSystem.exists($0 + "/PG_VERSION") }
        guard candidates.count == 1 else {
            throw LogError.notAPostgresDataDirectory(directory)
        }
        return candidates[0]
    }

    /// Appends `restore_command`, `recovery_target_time` and `recovery_target_action = 'promote'`
    /// to `postgresql.auto.conf` and creates `recovery.signal`, so the server started on
    /// `dataDirectory` replays archived WAL up to `until` (transactions committed before it)
    /// and then opens for writes.
    public static func write(dataDirectory: String, restoreCommand: String, until: Date) throws {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyy-MM-dd HH:mm:ss.SSS"
        let quoted = restoreCommand.replacingOccurrences(of: "'", with: "''")
        let settings = """

            # Written by backstop restore --until: replay archived WAL up to this moment, then promote.
            restore_command = '\(quoted)'
            recovery_target_time = '\(f.string(from: until))+00'
            recovery_target_action = 'promote'

            """
        let conf = dataDirectory + "/postgresql.auto.conf"
        do {
            var bytes = (try? FileSystem.readFile(conf)) ?? []
            bytes += Array(settings.utf8)
            unlink(conf + ".backstop-tmp")
            unlink(dataDirectory + "/recovery.signal")
            let sink = try FileSink(path: conf + ".backstop-tmp", mode: 0o600)
            try bytes.withUnsafeBytes { try sink.write($0) }
            try sink.finish()
            try FileSystem.rename(conf + ".backstop-tmp", conf)
            let signal = try FileSink(path: dataDirectory + "/recovery.signal", mode: 0o600)
            try signal.finish()
        } catch {
            throw RestoreError.targetWrite(target: dataDirectory, reason: "cannot write the recovery settings: \(error)")
        }
    }
}
