import ArgumentParser
import Backstop
import Foundation

struct CopyCommand: ReportingCommand {
    static let configuration = CommandConfiguration(
        commandName: "copy",
        abstract: "Copy snapshots (with their verification history, and events) to another repository.",
        discussion: """
        Examples:
          backstop copy --from /var/backups/backstop --to /mnt/region-b/backstop --all
          backstop copy --from A --to B --all --source mysql-dump --after 2026-11-01
          backstop copy --from A --to B --before upgrade --source mysql-datadir
          backstop copy --from A --to B 1a2b 3c4d --dry-run --json

        Which snapshots: IDs (or unique prefixes); or --all, narrowed by --source,
        --kind, --host, --tag, --verified and by --after T (completed at or after),
        --before T|EVENT (strictly before) or --at T (at or before); or, without
        --all, --at, --before or --latest with filters: one snapshot, as restore
        chooses it.

        Only frames the target lacks are sent, each read from the source, decoded
        and checked against its ID first; then the snapshot's files, each checked
        against SHA256SUMS; the manifest last. A snapshot already in the target is
        skipped. Safe to interrupt and run again: nothing half-copied counts as a
        snapshot, and frames already sent are not sent again. The target's writer
        lock is held while copying; the source is only read.

        Exit codes: 0 copied (or nothing to do); 65 a source frame or file is
        corrupt (named; that snapshot is not committed), or the target holds the
        same snapshot ID with another manifest; 66 nothing matched; 64 usage, or
        repositories that cannot share snapshots (the same one, another format or
        encryption); 74 I/O error; 75 the target's lock is held, or a prune removed
        a snapshot from the source during the copy (run it again).
        """)

    @OptionGroup var outputOptions: OutputOptions
    @OptionGroup var selection: SelectionOptions
    @OptionGroup var lock: LockOptions

    @Option(help: ArgumentHelp("The repository to copy from.", valueName: "repo"))
    var from: String

    @Option(help: ArgumentHelp("The repository to copy to (it must exist: create it with `backstop init`).", valueName: "repo"))
    var to: String

    @Argument(help: "Snapshots to copy (IDs or unique prefixes).")
    var snapshots: [String] = []

    @Flag(help: "Every snapshot (narrowed by the filters and by --after, --before, --at).")
    var all = false

    @Option(help: ArgumentHelp("With --all: only snapshots completed at or after this time.", valueName: "time"))
    var after: String?

    @Flag(help: "Show what would be copied and sent; write nothing.")
    var dryRun = false

    func validate() throws {
        if from.isEmpty || to.isEmpty { throw ValidationError("--from and --to need a repository each") }
        if all {
            if !snapshots.isEmpty { throw ValidationError("snapshot IDs and --all exclude each other; give one") }
            if selection.latest { throw ValidationError("--latest chooses one snapshot; with --all, bound the set with --after, --before or --at") }
            if selection.at != nil && selection.before != nil { throw ValidationError("--at and --before exclude each other; give one") }
            if selection.event != nil && selection.before == nil { throw ValidationError("--event goes with --before EVENT-NAME") }
            if let kind = selection.kind, SnapshotKind(rawValue: kind) == nil { throw ValidationError("--kind must be filesystem or logical") }
            return
        }
        if after != nil { throw ValidationError("--after bounds a set of snapshots: use it with --all") }
        if !snapshots.isEmpty {
            let filtered = selection.source != nil || selection.kind != nil || !selection.tags.isEmpty || selection.host != nil
                || selection.verified || selection.event != nil
            if selection.isGiven || filtered { throw ValidationError("snapshot IDs and selection flags exclude each other; give one") }
            return
        }
        if !selection.isGiven {
            throw ValidationError("name the snapshots to copy: IDs, --all (with filters), or --at, --before or --latest")
        }
        try selection.validateSelection()
    }

    func run(_ output: Output) throws {
        let source = try RepositoryOptions.open(from, output)
        let target = try RepositoryOptions.open(to, output)
        let ids = try choose(in: source)
        let options = CopyOptions(dryRun: dryRun, lockTimeout: try lock.seconds(), command: "backstop copy --from \(from) --to \(to)")
        let meter = ProgressMeter(output, action: dryRun ? "copy (dry run)" : "copy", unit: .items)
        let report = try source.copy(ids, to: target, options: options, warn: { meter.finish(); output.warning($0) }) { done, total, current in
            meter.update(done: done, total: total, current: current.rawValue)
        }
        meter.finish()
        if output.json {
            output.printJSON(report)
            return
        }
        for note in report.notes { output.note(note) }
        let verb = dryRun ? "would copy" : "copied"
        output.line("\(verb) \(report.copied.count) snapshot\(report.copied.count == 1 ? "" : "s") from \(report.from) to \(report.to)\(report.copied.isEmpty ? "" : ": " + report.copied.map(\.rawValue).joined(separator: ", "))")
        if !report.skipped.isEmpty {
            output.line("skipped \(report.skipped.count) already in \(report.to): \(report.skipped.map(\.rawValue).joined(separator: ", "))")
        }
        output.line("frames: \(report.framesSent) \(dryRun ? "to send" : "sent") (\(Output.bytes(report.bytesSent))), \(report.framesPresent) already present"
                    + (dryRun ? "" : "; \(report.eventsCopied) events and \(report.verificationsCopied) verification records copied"))
    }

    /// The snapshots to copy, oldest first.
    func choose(in repo: Repository) throws -> [SnapshotID] {
        if !snapshots.isEmpty { return try snapshots.map { try repo.resolve($0) } }
        guard all else { return [try selection.resolve(nil, in: repo)] }
        let parser = try TimeParser.fromEnvironment()
        var filter = SnapshotFilter(source: selection.source, kind: selection.kind.flatMap(SnapshotKind.init), host: selection.host,
                                    tags: selection.tags, verifiedOnly: selection.verified)
        filter.completedFrom = try after.map { try parser.parse($0) }
        filter.completedAtOrBefore = try selection.at.map { try parser.parse($0) }
        if let before = selection.before {
            switch try repo.resolveBefore(before, eventID: selection.event, parser: parser) {
            case let .before(t, _), let .at(t): filter.completedBefore = t
            case .latest: break
            }
        }
        let ids = try repo.snapshots(matching: filter)
        if ids.isEmpty { throw CopyNothingMatched(repository: repo.location) }
        return ids
    }
}

/// `copy --all` with filters that match no snapshot (66).
struct CopyNothingMatched: Error, CustomStringConvertible, ExitStatusProviding {
    var repository: String
    var description: String { "no snapshot in \(repository) matches; nothing was copied. List them with `backstop list --repo \(repository)`" }
    var exitStatus: ExitStatus { .noMatch }
}
