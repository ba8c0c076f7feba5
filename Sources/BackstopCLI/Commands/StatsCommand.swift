import ArgumentParser
import Backstop
import Foundation

struct StatsCommand: ReportingCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Show the repository's sizes: logical, stored one by one, and deduplicated.",
        discussion: """
        logical: the snapshots' uncompressed streams added up; stored: what they would take if
        each kept its own frames; deduplicated: what the repository takes, each distinct frame once
        plus every snapshot's own files (manifest, SHA256SUMS, frame and entry lists).
        Example: backstop stats --json

        Exit codes: 0 shown; 1 not a repository; 74 unreadable repository or catalog.
        """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var outputOptions: OutputOptions

    func run(_ output: Output) throws {
        let repo = try repository.open(output)
        let stats = try repo.stats()
        if output.json {
            output.printJSON(stats)
            return
        }
        output.line("snapshots      \(stats.snapshots)")
        output.line("logical        \(Output.bytes(stats.logicalBytes))")
        output.line("stored         \(Output.bytes(stats.storedBytes)) (each snapshot with its own frames)")
        output.line("deduplicated   \(Output.bytes(stats.deduplicatedBytes)) (\(stats.frames) distinct frames, \(Output.bytes(stats.frameBytes)); snapshot files \(Output.bytes(stats.snapshotFileBytes)))")
        output.line(String(format: "ratio          %.2f×", stats.deduplicationRatio))
    }
}
