import ArgumentParser
import Backstop

struct PolicyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "Work with policy files.",
        subcommands: [Check.self])

    struct Check: ReportingCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a policy file: every mistake with its line and column.",
            discussion: """
            Example: backstop policy check Policies/nightly.yaml

            Exit codes: 0 valid; 64 invalid (each mistake listed as FILE:LINE:COLUMN: message).
            """)

        @OptionGroup var outputOptions: OutputOptions
        @Argument(help: "The policy file.") var file: String

        func run(_ output: Output) throws {
            let policy = try PolicyParser.load(file: file)
            if output.json {
                output.printJSON(["file": file, "repository": policy.repository, "jobs": policy.jobs.map(\.source).joined(separator: ",")])
            } else {
                output.line("\(file): valid; repository \(policy.repository); jobs: \(policy.jobs.map { "\($0.source) (\($0.kind.rawValue))" }.joined(separator: ", "))")
            }
        }
    }
}
