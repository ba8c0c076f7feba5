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

    @Option(help: "The policy whose retention rules apply.") var policy: String
    @Flag(help: "Print the plan, remove nothing.") var dryRun = false
    @Option(help: "Plan as if now were this time.") var time: String?

    func run(_ output: Output) throws {
        let p = try PolicyParser.load(file: policy)
        guard let retention = p.retention else {
            throw ValidationError("\(policy) has no 'retention' section: nothing to prune by")
        }
        let repo = try RepositoryOptions.open(at: try repositoryPath(policy: p), output)
        let now = try time.map { try TimeParser.fromEnvironment().parse($0) } ?? Date()
        let (plan, removed) = try repo.withWriterLock(command: "backstop prune", timeout: p.lockTimeout, warn: output.warning) {
            let plan = try repo.retentionPlan(retention, timeZone: p.timeZone, now: now)
            return (plan, dryRun ? [] : try repo.prune(plan))
        }
        if output.json {
            output.printJSON(PruneReport(dryRun: dryRun, plan: plan, removed: removed))
            return
        }
        output.line(plan.text)
        output.line(dryRun ? "dry run: \(plan.keep.count) kept, \(plan.remove.count) would be removed"
                           : "\(plan.keep.count) kept, \(removed.count) removed")
    }

    /// The policy's repository. `--repo` or `$BACKSTOP_REPO` (read as by every command) may name
    /// it too; naming another is refused: a retention plan made for one repository would remove
    /// snapshots from another.
    func repositoryPath(policy p: Policy) throws -> String {
        let fromEnvironment = repository.repo?.isEmpty ?? true
        guard let given = try? repository.path() else { return p.repository }
        func canonical(_ path: String) -> String {
            URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path
        }
        if canonical(given) == canonical(p.repository) { return p.repository }
        let named = fromEnvironment ? "$BACKSTOP_REPO (\(given))" : "--repo \(given)"
        let fix = fromEnvironment ? "unset BACKSTOP_REPO or set it to \(p.repository)" : "drop --repo or give \(p.repository)"
        throw ValidationError("""
            \(named) is not the repository of the policy \(policy) (\(p.repository)); prune applies that policy's \
            retention rules to its own repository only, and nothing was removed: \(fix), or prune with a policy \
            for \(given)
            """)
    }
}

struct PruneReport: Encodable {
    var dryRun: Bool
    var plan: RetentionPlan
    var removed: [SnapshotID]
}
