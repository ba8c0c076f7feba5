import ArgumentParser
import Backstop
import Foundation

struct PruneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Remove the snapshots a policy's retention rules no longer keep.",
        discussion: """
        Example: backstop prune --policy Policies/nightly.yaml --dry-run

        Prints every snapshot with keep or remove and the rules that decided. Without --dry-run,
        removes under the writer lock, crash-safe: an interrupted prune is finished by the next
        writer. The repository is the policy's unless --repo is given.

        Exit codes: 0 done; 64 invalid policy; 75 lock held; 74 I/O error.
        """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var output: OutputOptions

    @Option(help: "The policy whose retention rules apply.") var policy: String
    @Flag(help: "Print the plan, remove nothing.") var dryRun = false
    @Option(help: "Plan as if now were this time.") var time: String?

    func run() throws {
        output.apply()
        let p = try PolicyParser.load(file: policy)
        guard let retention = p.retention else {
            throw ValidationError("\(policy) has no 'retention' section: nothing to prune by")
        }
        let repo = try Repository.open(at: repository.repo ?? p.repository)
        let now = try time.map { try TimeParser.fromEnvironment().parse($0) } ?? Date()
        let (plan, removed) = try repo.withWriterLock(command: "backstop prune", timeout: p.lockTimeout, warn: Output.warning) {
            let plan = try repo.retentionPlan(retention, timeZone: p.timeZone, now: now)
            return (plan, dryRun ? [] : try repo.prune(plan))
        }
        if output.json {
            Output.printJSON(PruneReport(dryRun: dryRun, plan: plan, removed: removed))
            return
        }
        Output.line(plan.text)
        Output.line(dryRun ? "dry run: \(plan.keep.count) kept, \(plan.remove.count) would be removed"
                           : "\(plan.keep.count) kept, \(removed.count) removed")
    }
}

struct PruneReport: Encodable {
    var dryRun: Bool
    var plan: RetentionPlan
    var removed: [SnapshotID]
}
