import ArgumentParser
import Backstop
import Foundation

struct ExportCommand: ReportingCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a snapshot's payload as one seekable .tar.zst (filesystem) or .zst (logical) file.",
        discussion: """
        Examples:
          backstop export 1a2b --to /tmp/datadir.tar.zst
          zstd -dc /tmp/datadir.tar.zst | tar -x
          backstop export --latest --source mysql-dump --to - | zstd -dc | mariadb

        The file is the snapshot's frames in order plus a seek table: what a format-1 repository
        stored as data.tar.zst or data.zst, readable by zstd alone. Every frame is checked against
        its ID as it is written. A FILE is never replaced; it appears only once complete (a failed
        export removes what it wrote). To -, a failure says how many bytes had gone out.

        Exit codes: 0 written; 65 a frame is missing or corrupt; 66 no such snapshot; 73 FILE
        exists; 74 I/O error (the target cannot be written, a broken pipe).
        """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var outputOptions: OutputOptions
    @OptionGroup var selection: SelectionOptions

    @Argument(help: "The snapshot (or choose it with --at, --before or --latest).")
    var snapshot: String?

    @Option(help: ArgumentHelp("The file to write, or - for standard output.", valueName: "file"), completion: .file())
    var to: String

    func validate() throws {
        try selection.validateSelection()
        if (snapshot == nil) == !selection.isGiven { throw ValidationError("give a SNAPSHOT or selection flags (--at, --before, --latest), one of them") }
        if to.isEmpty { throw ValidationError("--to needs a file name, or - for standard output") }
        if to == "-" && outputOptions.json { throw ValidationError("--json reports on standard output, which --to - uses for the payload: give --to FILE") }
    }

    func run(_ output: Output) throws {
        let repo = try repository.open(output)
        try repo.requireIdentity(for: "an export")
        let id = try selection.resolve(snapshot, in: repo)
        let report = try repo.export(id, to: to)
        if output.json {
            output.printJSON(report)
        } else if to == "-" {
            // The payload is on stdout: the summary goes to stderr (not with --quiet).
            if !output.quiet { output.note("exported \(report.snapshot): \(Output.count(report.frames, "frame")), \(Output.bytes(report.bytes)) to standard output") }
        } else {
            output.line("exported \(report.snapshot) to \(report.target): \(Output.count(report.frames, "frame")), \(Output.bytes(report.bytes))")
        }
    }
}
