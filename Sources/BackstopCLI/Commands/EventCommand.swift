import ArgumentParser
import Backstop
import Foundation

struct EventCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "event",
        abstract: "Mark named points in time (an upgrade) that selections can refer to.",
        discussion: """
        Example:
          backstop event add upgrade --note "MariaDB 10.11 -> 11.4"
          backstop restore --before upgrade --source mysql-datadir --to /srv/restored
        """,
        subcommands: [Add.self, List.self, Remove.self])

    struct Add: ReportingCommand {
        static let configuration = CommandConfiguration(
            abstract: "Record an event (now, or --at a time).",
            discussion: """
            Example: backstop event add upgrade-11.4 --note "MariaDB 10.11 -> 11.4"

            A name that reads as a time (2024-03-25) is refused: --before NAME would mean the time.

            Exit codes: 0 recorded; 64 bad name or time; 1 not a repository.
            """)

        @OptionGroup var repository: RepositoryOptions
        @OptionGroup var outputOptions: OutputOptions
        @Argument(help: "The event's name, e.g. upgrade.") var name: String
        @Option(help: "When it happened (default now).") var at: String?
        @Option(help: "A note.") var note: String?

        func run(_ output: Output) throws {
            let repo = try repository.open(output)
            let when = try at.map { try TimeParser.fromEnvironment().parse($0) } ?? Date()
            let event = try repo.addEvent(name: name, at: when, note: note)
            if output.json { output.printJSON(event) } else {
                output.line("event \(event.id) \"\(event.name)\" at \(Timestamp.format(event.at))")
            }
        }
    }

    struct List: ReportingCommand {
        static let configuration = CommandConfiguration(
            abstract: "List events, oldest first.",
            discussion: """
            Example: backstop event list --json

            Exit codes: 0 listed (even when empty); 1 not a repository.
            """)

        @OptionGroup var repository: RepositoryOptions
        @OptionGroup var outputOptions: OutputOptions

        func run(_ output: Output) throws {
            let events = try repository.open(output).events()
            if output.json { output.printJSON(EventList(events: events)); return }
            output.line(Output.table(["ID", "NAME", "AT (UTC)", "NOTE"], events.map {
                [$0.id.rawValue, $0.name, Timestamp.format($0.at), $0.noteIsSealed ? "(encrypted)" : $0.note ?? ""]
            }))
        }
    }

    struct Remove: ReportingCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove an event by ID.",
            discussion: """
            Example: backstop event remove 20240325T120000Z

            Exit codes: 0 removed; 64 the prefix matches several events (they are listed); 66 no
            such event.
            """)

        @OptionGroup var repository: RepositoryOptions
        @OptionGroup var outputOptions: OutputOptions
        @Argument(help: "The event's ID (or a unique part of it).") var id: String

        func run(_ output: Output) throws {
            let removed = try repository.open(output).removeEvent(id)
            if output.json { output.printJSON(removed) } else { output.line("removed event \(removed.id) \"\(removed.name)\"") }
        }
    }
}

/// `event list --json`: `{"schemaVersion": 1, "events": [...]}`.
struct EventList: JSONReport {
    var events: [Event]
}
