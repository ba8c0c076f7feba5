import ArgumentParser
import Backstop
import Foundation

/// The root command. Maps every error to one exit status, in one place.
@main
struct BackstopCommand: ReportingCommand {
    static let configuration = CommandConfiguration(
        commandName: "backstop",
        abstract: "Take, catalog, verify and restore filesystem and logical snapshots.",
        discussion: """
        Every command names its repository with --repo PATH or $BACKSTOP_REPO.

        Exit codes:
        \(ExitStatus.helpTable)
        """,
        version: BackstopVersion.current,
        subcommands: [InitCommand.self, BackupCommand.self, ListCommand.self, ShowCommand.self, EventCommand.self, SelectCommand.self, RestoreCommand.self, ExportCommand.self, CopyCommand.self, DiffCommand.self, VerifyCommand.self, PruneCommand.self, RunCommand.self, PolicyCommand.self, CatalogCommand.self, MigrateCommand.self, StatsCommand.self, LogsCommand.self, ReportCommand.self, KeyCommand.self]
    )

    @Flag(help: "Print the version, commit, format versions and the zstd, libarchive and OpenSSL versions (with --json, as JSON).")
    var version = false

    @OptionGroup var outputOptions: OutputOptions

    func run(_ output: Output) throws {
        guard version else { throw CleanExit.helpRequest(self) }
        let report = BackstopVersion.report(commit: BackstopVersion.commit(besideExecutable: Bundle.main.executablePath ?? CommandLine.arguments[0]),
                                            jsonSchemaVersion: JSONDocument<BackstopVersion>.schemaVersion)
        if output.json { output.printJSON(report) } else { output.result(report.text) }
    }

    static func main() {
        signal(SIGPIPE, SIG_IGN)
        Interruption.install()
        // Until a command is parsed, its flags are unknown (a usage error still reads --json).
        var output = Output()
        do {
            var command = try parseAsRoot()
            if let reporting = command as? any ReportingCommand {
                output = Output(reporting.outputOptions)
                OutputLogHandler.bootstrap(output)
                try reporting.run(output)
            } else {
                OutputLogHandler.bootstrap(output)
                try command.run()
            }
        } catch {
            // Whatever an interrupted command threw on its way out, it was interrupted (130).
            report(Interruption.reported(error), output)
        }
    }

    static func report(_ error: Error, _ output: Output) {
        switch error {
        case let error as CommandExit:
            Foundation.exit(error.status.rawValue)
        case is ValidationError, is CleanExit, is ExitCode:
            argumentParserExit(error, output)
        default:
            // Everything the library and Foundation throw: the library's one mapping, the same
            // that `backstop run` uses for each job. ArgumentParser's parsing errors are not
            // ours: `ExitStatus(for:)` calls them unexpected (1), and ArgumentParser knows them.
            let status = ExitStatus(for: error)
            if status == .failure && exitCode(for: error) != .failure {
                argumentParserExit(error, output)
            } else {
                fail(error, status: status, output)
            }
        }
    }

    /// ArgumentParser's own errors: help, version, and usage errors (exit 64), also as JSON when
    /// --json was asked for (even if parsing failed before it was read).
    static func argumentParserExit(_ error: Error, _ output: Output) -> Never {
        let code = exitCode(for: error)
        if code != .success && (output.json || CommandLine.arguments.dropFirst().contains("--json")) {
            output.printJSON(FailureReport(error: message(for: error), exitCode: code.rawValue))
        }
        exit(withError: error)
    }

    static func fail(_ error: Error, status: ExitStatus, _ output: Output) {
        let message = String(describing: error)
        if output.json {
            output.printJSON(FailureReport(error: message, exitCode: status.rawValue))
        }
        output.error(message)
        Foundation.exit(status.rawValue)
    }
}

/// Ends a command with a status after it printed its own report (for example 3: warnings).
struct CommandExit: Error {
    var status: ExitStatus
}
