import ArgumentParser
import Backstop
import Foundation

struct PruneCommand: ReportingCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Remove the snapshots a policy's retention rules no longer keep.",
        discussion: """
        Example: backstop prune --policy Policies/nightly.yaml --dry-run

        Prints every snapshot with keep or remove and the rules that decided. Without --dry-run,
        removes under the writer lock, crash-safe: an interrupted prune is finished by the next
        writer. The repository is the policy's: --repo or $BACKSTOP_REPO, when given, must name
        the same one (else 64, nothing removed), as the rules were written for it.

        Exit codes: 0 done; 64 invalid policy, or --repo/$BACKSTOP_REPO names another repository;
        75 lock held; 74 I/O error.
        """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var outputOptions: OutputOptions

    @Option(help: "The policy whose retention rules apply.", completion: Completions.policies) var policy: String
    @Flag(help: "Print the plan, remove nothing.") var dryRun = false
    @Option(help: "Plan as if now were this time.") var time: String?

    func run(_ output: Output) throws {
        let p = try PolicyParser.load(file: policy)
        guard let retention = p.retention else {
            throw ValidationError("\(policy) has no 'retention' section: nothing to prune by")
        }
        let repo = try repository.open(output, policy: p, command: "prune")
        let now = try time.map { try TimeParser.fromEnvironment().parse($0) } ?? Date()
        let (plan, result, freed, logs) = try repo.withWriterLock(command: "backstop prune", timeout: p.lockTimeout, warn: output.warning) {
            let plan = try repo.retentionPlan(retention, timeZone: p.timeZone, now: now)
            let logs = try repo.logRetentionPlan(plan, policy: retention, now: now)
            if dryRun { return (plan, PruneResult(), try repo.bytesFreed(by: plan), logs) }
            let meter = ProgressMeter(output, action: "prune", unit: .items)
            let result = try repo.prune(plan, warn: { meter.finish(); output.warning($0) }) {
                meter.update(done: Int64($0), total: Int64($1), current: $2.rawValue)
            }
            meter.finish()
            try repo.pruneLogs(logs)
            return (plan, result, (result.framesSwept, result.bytesFreed), logs)
        }
        if output.json {
            output.printJSON(PruneReport(dryRun: dryRun, plan: plan, removed: result.removed, framesFreed: freed.0, bytesFreed: freed.1,
                                         logSegments: logs.isEmpty ? nil : logs))
            return
        }
        output.line(plan.text)
        for d in logs {
            output.line("\(d.keep ? "keep  " : "remove")  logs/\(d.source)/\(d.segment)  \(d.reason)")
        }
        output.line(dryRun ? "dry run: \(plan.keep.count) kept, \(plan.remove.count) would be removed, freeing \(Output.bytes(freed.1)) (\(Output.count(freed.0, "frame")) no kept snapshot uses)"
                           : "\(plan.keep.count) kept, \(result.removed.count) removed; \(Output.count(result.framesSwept, "unused frame")) removed, \(Output.bytes(result.bytesFreed)) freed")
    }
}

struct PruneReport: JSONReport {
    var dryRun: Bool
    var plan: RetentionPlan
    var removed: [SnapshotID]
    /// Frames removed (or, with dryRun, that would be) and the bytes freed with the snapshots' own files.
    var framesFreed: Int
    var bytesFreed: Int64
    /// Archived log segments, each kept or removed with the reason (absent without any).
    var logSegments: [LogSegmentDecision]?
}
