import ArgumentParser
import Backstop
import Foundation
import Logging

struct RunCommand: ReportingCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a policy: the nightly cron entry point.",
        discussion: """
        Example (crontab):
          15 2 * * * /usr/local/bin/backstop run /etc/backstop/nightly.yaml

        Takes the writer lock (waiting up to the policy's lock-timeout), runs each job with its
        before/after hooks, verifies what it wrote, copies it to each copy-to: repository, prunes
        by the retention rules, verifies a sample of older snapshots. Quiet on success (cron mails only trouble) unless --verbose;
        warnings and errors go to stderr in every command's log format (a UTC
        timestamp first when stderr is not a terminal). --time T records the snapshots as
        taken at T and is the "now" of retention. The repository is the policy's: --repo or
        $BACKSTOP_REPO, when given, must name the same one (else 64, nothing runs).

        Exit codes: the worst of all steps: 0 ok; 3 warnings; 66 a source is missing; 65 a
        snapshot failed verification or a dump was incomplete; 74 I/O; 75 lock held; 1 a
        hook or dump command failed; 64 invalid policy, or --repo/$BACKSTOP_REPO names another
        repository (nothing runs); 74 the metrics file could not be written (the run completed).

        --metrics-file FILE (or the policy's metrics-file:) writes Prometheus text format for
        node_exporter's textfile collector after each run (not with --dry-run).
        """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var outputOptions: OutputOptions

    @Argument(help: "The policy file.", completion: Completions.policies) var policy: String
    @Option(help: "Record the snapshots as taken at this time; also retention's now.") var time: String?
    @Flag(help: "Show what would be done: no snapshots, no pruning.") var dryRun = false
    @Flag(name: [.short, .long], help: "Print the summary even on success, and log progress.") var verbose = false
    @Option(help: ArgumentHelp("Write Prometheus metrics here, atomically, for node_exporter's textfile collector (default: the policy's metrics-file).",
                               valueName: "file"), completion: .file(extensions: ["prom"]))
    var metricsFile: String?

    func run(_ output: Output) throws {
        var logger = Logger(label: "backstop")
        logger.logLevel = verbose ? .info : .warning
        let p = try PolicyParser.load(file: policy)
        let when = try time.map { try TimeParser.fromEnvironment().parse($0) }
        let repo = try repository.open(output, policy: p, command: "run")
        var runner = PolicyRunner(policy: p, logger: logger, openRepository: { try RepositoryOptions.open($0, output) })
        // One progress line per job, its total the source's newest snapshot (as backup's).
        let newest = Dictionary(try repo.snapshots().map { ($0.source, $0) }, uniquingKeysWith: { $0.completedAt > $1.completedAt ? $0 : $1 })
        var meter: (source: String, meter: ProgressMeter)?
        runner.progress = { source, progress in
            if meter?.source != source {
                meter?.meter.finish()
                meter = (source, ProgressMeter(output, action: "run \(source)"))
            }
            meter?.meter.update(done: progress.bytesIn, total: newest[source]?.bytesIn, current: progress.current)
        }
        let summary = try runner.run(in: repo, time: when, dryRun: dryRun)
        meter?.meter.finish()
        if output.json {
            output.printJSON(summary)
        } else if verbose || summary.exitCode != 0 || dryRun {
            output.result(Self.render(summary))
        }
        var status = summary.exitCode
        if let file = metricsFile ?? p.metricsFile, !dryRun {
            do {
                try RunMetrics(summary: summary, policy: p, repository: repo).write(to: file)
            } catch {
                output.error(String(describing: error))
                if status == 0 || status == ExitStatus.warnings.rawValue { status = ExitStatus(for: error).rawValue }
            }
        }
        if status != 0 { throw CommandExit(status: ExitStatus(rawValue: status) ?? .failure) }
    }

    static func render(_ s: RunSummary) -> String {
        var lines = ["run \(s.runID) of \(s.policy)\(s.dryRun ? " (dry run)" : ""): \(String(format: "%.1f", s.finishedAt.timeIntervalSince(s.startedAt))) s, exit \(s.exitCode)"]
        for j in s.jobs {
            var line = "  \(j.status.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0)) \(j.source) (\(j.kind.rawValue))"
            if let id = j.snapshot { line += " \(id): \(Output.bytes(j.bytesIn)) in, \(Output.bytes(j.bytesStored)) stored, \(String(format: "%.1f", j.duration)) s" }
            if let reused = j.filesReused { line += ", \(Output.count(reused, "file")) reused unread" }
            lines.append(line)
            for m in j.messages { lines.append("           \(m)") }
        }
        for v in s.verified { lines.append("  verified \(v.snapshot) (\(v.mode.rawValue)): \(v.passed ? "ok" : "FAILED: \(v.problems.first!)")") }
        if let plan = s.plan {
            lines.append(s.dryRun ? "  retention (dry run): \(plan.keep.count) keep, \(plan.remove.count) would be removed" : "  pruned \(Output.count(s.pruned.count, "snapshot"))")
            if s.dryRun { lines += plan.text.split(separator: "\n").map { "    " + $0 } }
        }
        for v in s.sampled { lines.append("  sampled  \(v.snapshot) (\(v.mode.rawValue)): \(v.passed ? "ok" : "FAILED: \(v.problems.first!)")") }
        for c in s.copies {
            if let r = c.report {
                lines.append("  copied   \(r.copied.count) snapshots to \(c.to): \(r.framesSent) frames sent (\(Output.bytes(r.bytesSent))), \(r.framesPresent) already there")
            } else {
                lines.append("  copy     to \(c.to) FAILED (exit \(c.exitCode)): \(c.error ?? "")")
            }
        }
        return lines.joined(separator: "\n")
    }
}
