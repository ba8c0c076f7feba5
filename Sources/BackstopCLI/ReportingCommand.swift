import ArgumentParser

/// A command that reports: its `run()` makes one `Output` from its `--json`/`--quiet` flags and
/// runs with it. The root command makes the same `Output` to report the command's failure.
protocol ReportingCommand: ParsableCommand {
    var outputOptions: OutputOptions { get }
    func run(_ output: Output) throws
}

extension ReportingCommand {
    func run() throws {
        try run(Output(outputOptions))
    }
}
