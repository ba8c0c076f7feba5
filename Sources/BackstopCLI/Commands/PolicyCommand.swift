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
        @Argument(help: "The policy file.", completion: Completions.policies) var file: String

        func run(_ output: Output) throws {
            let policy = try PolicyParser.load(file: file)
            if output.json {
                output.printJSON(PolicyCheckReport(file: file, repository: policy.repository,
                                                   jobs: policy.jobs.map { .init(source: $0.source, kind: $0.kind.rawValue) }))
            } else {
                output.line("\(file): valid; repository \(policy.repository); jobs: \(policy.jobs.map { "\($0.source) (\($0.kind.rawValue))" }.joined(separator: ", "))")
            }
        }
    }
}

/// `policy check --json`: the policy's repository and its jobs, in order.
struct PolicyCheckReport: JSONReport {
    struct Job: Encodable {
        var source: String
        var kind: String
    }
    var file: String
    var repository: String
    var jobs: [Job]
}
