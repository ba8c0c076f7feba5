import Backstop
import Foundation

/// A report that `--json` prints: an object (never a bare array, so it can grow), described by
/// `docs/json/NAME.schema.json`. Lists are wrapped in an object (`{"snapshots": [...]}`).
protocol JSONReport: Encodable {}

/// The JSON contract, in one place: every `--json` document is one object on stdout whose
/// `schemaVersion` says which revision of `docs/json/*.schema.json` it follows. Adding a key is
/// compatible and keeps the version; renaming, removing or retyping one bumps it. Times are
/// ISO 8601 UTC strings, durations are seconds as numbers, sizes are bytes as integers.
struct JSONDocument<Body: JSONReport>: Encodable {
    /// The revision of docs/json/*.schema.json the documents follow.
    static var schemaVersion: Int { 1 }

    let body: Body

    private enum Key: String, CodingKey { case schemaVersion }

    func encode(to encoder: any Encoder) throws {
        try body.encode(to: encoder)
        var c = encoder.container(keyedBy: Key.self)
        try c.encode(Self.schemaVersion, forKey: .schemaVersion)
    }
}

/// A command's failure, usage errors included, as `--json` reports it.
struct FailureReport: JSONReport {
    var error: String
    var exitCode: Int32
}

// The library's reports that commands print as they are.
extension Manifest: JSONReport {}
extension RunSummary: JSONReport {}
extension BackstopVersion: JSONReport {}
extension RepositoryStats: JSONReport {}
extension RepositoryConfig: JSONReport {}
extension SnapshotDiff: JSONReport {}
extension Event: JSONReport {}
extension ExportReport: JSONReport {}
extension MigrationReport: JSONReport {}
extension RestoreReport: JSONReport {}
extension CopyReport: JSONReport {}
extension LogSegment: JSONReport {}
extension LogCheckReport: JSONReport {}
extension PointInTimeReport: JSONReport {}
