import ArgumentParser
import Backstop
import Foundation

/// The selection flags every command that takes a snapshot accepts.
struct SelectionOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The newest snapshot that completed at or before this time.", valueName: "time"))
    var at: String?

    @Option(help: ArgumentHelp("The newest snapshot that completed strictly before this time or event name.", valueName: "time|event"))
    var before: String?

    @Option(help: ArgumentHelp("With --before EVENT: use the event with this ID instead of the newest of that name.", valueName: "id"))
    var event: String?

    @Flag(help: "The newest snapshot.")
    var latest = false

    @Option(help: "Only snapshots of this source.", completion: Completions.sources)
    var source: String?

    @Option(help: "Only snapshots of this kind (filesystem or logical).", completion: Completions.kinds)
    var kind: String?

    @Option(name: .customLong("tag"), help: "Only snapshots with this tag (repeatable: all must match).")
    var tags: [String] = []

    @Option(help: "Only snapshots taken on this host.")
    var host: String?

    @Flag(help: "Only snapshots whose last verification passed.")
    var verified = false

    var isGiven: Bool { at != nil || before != nil || latest }

    func validateSelection() throws {
        let points = (at == nil ? 0 : 1) + (before == nil ? 0 : 1) + (latest ? 1 : 0)
        if points > 1 { throw ValidationError("--at, --before and --latest exclude each other; give one") }
        if event != nil && before == nil { throw ValidationError("--event goes with --before EVENT-NAME") }
        if let kind, SnapshotKind(rawValue: kind) == nil { throw ValidationError("--kind must be filesystem or logical") }
        if points == 0 && (source != nil || kind != nil || !tags.isEmpty || host != nil || verified) {
            throw ValidationError("filters need a point in time: add --at TIME, --before TIME|EVENT or --latest")
        }
    }

    func criteria(_ repo: Repository) throws -> SelectionCriteria {
        let parser = try TimeParser.fromEnvironment()
        let point: SelectionPoint
        if let at {
            point = .at(try parser.parse(at))
        } else if let before {
            point = try repo.resolveBefore(before, eventID: event, parser: parser)
        } else {
            point = .latest
        }
        return SelectionCriteria(point: point, source: source, kind: kind.flatMap(SnapshotKind.init), tags: tags,
                                 host: host, verifiedOnly: verified)
    }
}

extension SelectionOptions {
    /// These flags' filters with `point` (restore --until chooses its own point).
    static func criteria(for options: SelectionOptions, point: SelectionPoint) throws -> SelectionCriteria {
        SelectionCriteria(point: point, source: options.source, kind: options.kind.flatMap(SnapshotKind.init), tags: options.tags,
                          host: options.host, verifiedOnly: options.verified)
    }

    /// The snapshot named by `id` (an ID or unique prefix) or, if none, chosen by these flags.
    func resolve(_ id: String?, in repo: Repository) throws -> SnapshotID {
        if let id { return try repo.resolve(id) }
        let result = try repo.selection(criteria(repo))
        guard let chosen = result.chosen else { throw SelectionError.noMatch(result) }
        return chosen.id
    }
}
