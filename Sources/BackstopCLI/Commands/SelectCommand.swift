import ArgumentParser
import Backstop
import Foundation

struct SelectCommand: ReportingCommand {
    static let configuration = CommandConfiguration(
        commandName: "select",
        abstract: "Choose a snapshot by time and filters, and explain the choice.",
        discussion: """
        Example: backstop select --before upgrade --source mysql-dump --explain

        --at T: the newest snapshot that completed at or before T. --before T|EVENT: the newest
        that completed strictly before T (a snapshot still running at T is not before it).
        A snapshot whose last verification failed is passed over. The chosen ID alone goes to
        stdout; --explain lists every candidate considered, and why, on stderr. Nothing
        matching is exit 66: there is never a fallback to the latest snapshot.

        Times: RFC 3339 (2024-03-24T22:00:00Z, +01:00), local date-time in $TZ, a date, @unix.

        Exit codes: 0 chosen; 66 nothing matched (or no such event); 64 bad time or flags.
        """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var outputOptions: OutputOptions
    @OptionGroup var selection: SelectionOptions

    @Flag(help: "Explain every candidate on stderr.")
    var explain = false

    func validate() throws {
        try selection.validateSelection()
        if !selection.isGiven { throw ValidationError("give --at TIME, --before TIME|EVENT or --latest") }
    }

    func run(_ output: Output) throws {
        let repo = try repository.open(output)
        let result = try repo.selection(selection.criteria(repo))
        if output.json {
            output.printJSON(SelectReport(result))
        } else if let chosen = result.chosen {
            output.result(chosen.id.rawValue)
        }
        if explain && !output.json {
            output.note(result.explanation)
        }
        if result.chosen == nil {
            if output.json { throw CommandExit(status: .noMatch) }
            throw explain ? SelectionError.noMatchExplained(result) : SelectionError.noMatch(result)
        }
    }
}

struct SelectReport: JSONReport {
    var chosen: String?
    var criteria: String
    var fallbacks: [String]
    var candidates: [CandidateVerdict]
    var notes: [String]

    init(_ r: SelectionResult) {
        chosen = r.chosen?.id.rawValue
        criteria = r.criteria.description
        fallbacks = r.fallbacks.map(\.id.rawValue)
        candidates = r.verdicts
        notes = r.notes
    }
}
