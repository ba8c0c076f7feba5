import ArgumentParser
import Backstop
import Foundation

struct LogsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logs",
        abstract: "Archive binlogs and WAL into the repository, for restores to any moment (restore --until).",
        discussion: """
        MariaDB/MySQL, from cron:  backstop logs push --source mysql-binlog /var/lib/mysql/mysql-bin.[0-9]*
        PostgreSQL, in postgresql.conf:
          archive_command = 'backstop logs push --repo /backups --source pg-wal %p'
          restore_command = 'backstop logs get --repo /backups --source pg-wal %f %p'
        then: backstop logs check --source mysql-binlog
        """,
        subcommands: [Push.self, Follow.self, Get.self, List.self, Check.self])

    /// The log kind of a source: `--kind`, else the source's name (mysql-binlog…, pg-wal…).
    static func kind(_ given: String?, source: String) throws -> LogKind {
        if let given {
            guard let k = LogKind(rawValue: given) else { throw ValidationError("--kind must be mysql-binlog or pg-wal") }
            return k
        }
        if source.hasPrefix("pg-wal") { return .pgWAL }
        if source.hasPrefix("mysql-binlog") { return .mysqlBinlog }
        throw ValidationError("--source \(source) does not say which kind of log it holds: add --kind mysql-binlog or --kind pg-wal")
    }

    struct Push: ReportingCommand {
        static let configuration = CommandConfiguration(
            abstract: "Archive log files (closed binlogs from cron; PostgreSQL's archive_command %p).",
            discussion: """
            Each file becomes a segment under logs/SOURCE/ (zstd, with its SHA-256, and for binlogs its
            first/last event times, positions and GTIDs). Pushing the same bytes again succeeds and
            changes nothing; other bytes under a name already archived are refused (65) and nothing is
            replaced. A binlog that is still open (the server's current file) is archived as a partial
            segment, superseded once the closed file is pushed.
            Examples:
              backstop logs push --source mysql-binlog /var/lib/mysql/mysql-bin.000041
              archive_command = 'backstop logs push --source pg-wal %p'
            Exit codes: 0 archived (or already archived); 3 archived, but a binlog holds changes
            logged as statements (binlog_format STATEMENT/MIXED: --until --database may be wrong);
            65 corrupt binlog or a different file under an archived name; 74 a file cannot be
            read; 64 usage.
            """)

        @OptionGroup var repository: RepositoryOptions
        @OptionGroup var outputOptions: OutputOptions
        @Option(help: "The log source: mysql-binlog, pg-wal, or a name of your own with --kind.") var source: String
        @Option(help: "mysql-binlog or pg-wal (default: from the source's name).") var kind: String?
        @Argument(help: "The log files.") var files: [String]

        func run(_ output: Output) throws {
            let kind = try LogsCommand.kind(kind, source: source)
            guard !files.isEmpty else { throw ValidationError("give the log files to archive") }
            let repo = try repository.open(output)
            var outcomes: [LogPushOutcome] = []
            var warnings = 0
            for file in files {
                let outcome = try repo.pushLog(path: file, source: source, kind: kind)
                outcomes.append(outcome)
                if let warning = outcome.segment.statementWarning {
                    output.warning("\(file): " + warning)
                    warnings += 1
                }
                if output.json { continue }
                switch outcome {
                case let .archived(s): output.line("archived \(s.objectName) (\(Output.bytes(s.size)), sha256 \(s.sha256.hex))")
                case let .alreadyArchived(s): output.line("\(s.objectName) was already archived with the same content")
                case let .superseded(s): output.line("\(file): the whole closed file \(s.name) is already archived")
                }
            }
            if output.json { output.printJSON(LogSegmentList(segments: outcomes.map(\.segment))) }
            if warnings > 0 { throw CommandExit(status: .warnings) }
        }
    }

    struct Follow: ReportingCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stream a server's binlogs continuously into the repository (a service: scripts/systemd/).",
            discussion: """
            Runs mariadb-binlog --read-from-remote-server --raw --stop-never into a private spool folder;
            archives each closed file as a segment, and the open one every --flush-interval as a partial
            segment (superseded by the closed file), so at most one interval of writes is at risk.
            Resumes where it stopped after a restart of itself or of the server. The user needs the
            REPLICATION SLAVE (binlog monitor) privilege; give a password in an option file
            (--password-file, `[client]` / `password=…`), never on the command line.
            Example:
              backstop logs follow --host db1 --user backstop --password-file db1.cnf
            Exit codes: 130 stopped by SIGTERM/SIGINT (after a last archive pass); 3 the same, after
            warnings (the server logs statements: binlog_format is not ROW); 65 a binlog file
            differs from the archived one of the same name; 1 mariadb-binlog cannot be started.
            """)

        @OptionGroup var repository: RepositoryOptions
        @OptionGroup var outputOptions: OutputOptions
        @Option(help: "The log source.") var source = "mysql-binlog"
        @Option(help: "The server's host.") var host: String?
        @Option(help: "The server's port.") var port: Int?
        @Option(help: "The user to connect as.") var user: String?
        @Option(help: "The server's Unix socket.") var socket: String?
        @Option(help: ArgumentHelp("An option file with the password ([client] password=…).", valueName: "path")) var passwordFile: String?
        @Option(help: ArgumentHelp("How often the open binlog is archived, e.g. 60s.", valueName: "duration")) var flushInterval = "60s"
        @Option(help: ArgumentHelp("The private spool folder (default: $STATE_DIRECTORY, else ~/.local/state/backstop/follow-SOURCE).", valueName: "dir")) var spool: String?

        func run(_ output: Output) throws {
            guard let interval = DurationText.seconds(flushInterval), interval > 0 else {
                throw ValidationError("--flush-interval \(flushInterval) is not a duration: use 30s, 5m")
            }
            let env = ProcessInfo.processInfo.environment
            let folder = spool ?? env["STATE_DIRECTORY"].map { $0 + "/follow-" + source }
                ?? ((env["XDG_STATE_HOME"] ?? (env["HOME"] ?? "/tmp") + "/.local/state") + "/backstop/follow-" + source)
            let repo = try repository.open(output)
            let follower = BinlogFollower(repository: repo, source: source,
                                          connection: .init(host: host, port: port, user: user, socket: socket, passwordFile: passwordFile),
                                          spool: folder, flushInterval: interval)
            follower.note = { text in if !output.quiet { output.note("backstop: " + text) } }
            follower.warn = { text in output.warning(text) }
            do {
                try follower.run()
            } catch is Interrupted where follower.warningCount > 0 {
                throw CommandExit(status: .warnings)
            }
            if follower.warningCount > 0 { throw CommandExit(status: .warnings) }
        }
    }

    struct Get: ReportingCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write an archived segment to a file (PostgreSQL's restore_command %f %p).",
            discussion: """
            Example: restore_command = 'backstop logs get --source pg-wal %f %p'

            Exit codes: 0 written; 65 the stored segment is corrupt; 66 no such segment (PostgreSQL
            then ends recovery); 74 cannot write the file.
            """)

        @OptionGroup var repository: RepositoryOptions
        @OptionGroup var outputOptions: OutputOptions
        @Option(help: "The log source.") var source: String
        @Argument(help: "The segment's name (%f).") var name: String
        @Argument(help: "Where to write it (%p).") var path: String

        func run(_ output: Output) throws {
            let repo = try repository.open(output)
            let s = try repo.getLog(source: source, name: name, to: path)
            if output.json { output.printJSON(s) } else if !output.quiet { output.note("backstop: wrote \(s.objectName) to \(path)") }
        }
    }

    struct List: ReportingCommand {
        static let configuration = CommandConfiguration(
            abstract: "List archived segments (every source, or --source).",
            discussion: "Example: backstop logs list --source mysql-binlog")

        @OptionGroup var repository: RepositoryOptions
        @OptionGroup var outputOptions: OutputOptions
        @Option(help: "Only this log source.") var source: String?

        func run(_ output: Output) throws {
            let repo = try repository.open(output)
            let sources = try source.map { [$0] } ?? repo.logSources()
            let segments = try sources.flatMap { try repo.logSegments(source: $0) }
            if output.json {
                output.printJSON(LogSegmentList(segments: segments))
                return
            }
            output.line(Output.table(["SOURCE", "SEGMENT", "SIZE", "FIRST EVENT (UTC)", "LAST EVENT (UTC)", "END", "GTID"], segments.map {
                [$0.source, $0.objectName, Output.bytes($0.size), $0.firstEventAt.map(Timestamp.format) ?? "",
                 $0.lastEventAt.map(Timestamp.format) ?? "", $0.endPosition ?? "", $0.gtidEnd ?? ""]
            }))
        }
    }

    struct Check: ReportingCommand {
        static let configuration = CommandConfiguration(
            abstract: "Read every segment of a source and look for gaps in its chain.",
            discussion: """
            Example: backstop logs check --source mysql-binlog

            Exit codes: 0 intact; 65 a corrupt or missing segment (each one named); 66 no segments for
            the source.
            """)

        @OptionGroup var repository: RepositoryOptions
        @OptionGroup var outputOptions: OutputOptions
        @Option(help: "The log source.") var source: String

        func run(_ output: Output) throws {
            let report = try repository.open(output).checkLogs(source: source)
            if output.json && report.problems.isEmpty { output.printJSON(report) }
            guard report.problems.isEmpty else { throw LogError.chainBroken(source: source, problems: report.problems) }
            if !output.json { output.line("\(source): \(report.segments) segment(s), intact, no gaps") }
        }
    }
}

/// `logs push --json` and `logs list --json`: the segments, in an object (the JSON contract).
struct LogSegmentList: JSONReport {
    var segments: [LogSegment]
}
