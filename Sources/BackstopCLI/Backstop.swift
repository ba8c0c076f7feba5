import ArgumentParser
import Backstop
import Foundation

/// The root command. Maps every error to one exit status, in one place.
@main
struct BackstopCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backstop",
        abstract: "Take, catalog, verify and restore filesystem and logical snapshots.",
        discussion: """
        Every command names its repository with --repo PATH or $BACKSTOP_REPO.

        Exit codes:
        \(ExitStatus.helpTable)
        """,
        version: BackstopVersion.current,
        subcommands: [InitCommand.self, BackupCommand.self, ListCommand.self, ShowCommand.self, EventCommand.self, SelectCommand.self, RestoreCommand.self, DiffCommand.self, VerifyCommand.self, PruneCommand.self, RunCommand.self, PolicyCommand.self, CatalogCommand.self]
    )

    static func main() {
        signal(SIGPIPE, SIG_IGN)
        Interruption.install()
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            // Whatever an interrupted command threw on its way out, it was interrupted (130).
            report(Interruption.reported(error))
        }
    }

    static func report(_ error: Error) {
        switch error {
        case let error as CommandExit:
            Foundation.exit(error.status.rawValue)
        case is ValidationError, is CleanExit, is ExitCode:
            argumentParserExit(error)
        default:
            // Everything the library and Foundation throw: the library's one mapping, the same
            // that `backstop run` uses for each job. ArgumentParser's parsing errors are not
            // ours: `ExitStatus(for:)` calls them unexpected (1), and ArgumentParser knows them.
            let status = ExitStatus(for: error)
            if status == .failure && exitCode(for: error) != .failure {
                argumentParserExit(error)
            } else {
                fail(error, status: status)
            }
        }
    }

    /// ArgumentParser's own errors: help, version, and usage errors (exit 64), also as JSON when
    /// --json was asked for (even if parsing failed before it was read).
    static func argumentParserExit(_ error: Error) -> Never {
        let code = exitCode(for: error)
        if code != .success && (Output.json || CommandLine.arguments.dropFirst().contains("--json")) {
            Output.printJSON(FailureReport(error: message(for: error), exitCode: code.rawValue))
        }
        exit(withError: error)
    }

    static func fail(_ error: Error, status: ExitStatus) {
        let message = String(describing: error)
        if Output.json {
            Output.printJSON(FailureReport(error: message, exitCode: status.rawValue))
        }
        Output.error(message)
        Foundation.exit(status.rawValue)
    }
}

/// Ends a command with a status after it printed its own report (for example 3: warnings).
struct CommandExit: Error {
    var status: ExitStatus
}

struct FailureReport: Encodable {
    var error: String
    var exitCode: Int32
}
