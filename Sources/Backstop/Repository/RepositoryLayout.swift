import Foundation

/// The keys of a repository (DESIGN.md, "Layout"), in one place:
///
/// ```
/// backstop.json
/// snapshots/<id>/manifest.json, SHA256SUMS, data.tar.zst | data.zst, entries.jsonl.zst
/// events/<id>.json
/// verifications/<snapshot-id>/<time>.json
/// logs/<source>/<segment>.zst, <segment>.json      (archived binlog / WAL segments: `LogSegment`)
/// ```
///
/// A snapshot's manifest is written last: its presence is the commit. A `snapshots/<id>/` prefix
/// with objects but no manifest is an incomplete snapshot (a writer at work, or one that died),
/// which the next writer removes.
enum RepositoryLayout {
    static let config = StorageKey("backstop.json")
    static let snapshots = StorageKey("snapshots")
    static let events = StorageKey("events")
    static let verifications = StorageKey("verifications")
    static let logs = StorageKey("logs")

    static func logSource(_ source: String) -> StorageKey { StorageKey("logs", source) }
    /// A log segment's bytes (one zstd frame) and its record (`LogSegment`, the commit).
    static func logData(_ source: String, _ object: String) -> StorageKey { StorageKey("logs", source, object + ".zst") }
    static func logRecord(_ source: String, _ object: String) -> StorageKey { StorageKey("logs", source, object + ".json") }

    static func snapshot(_ id: SnapshotID) -> StorageKey { StorageKey("snapshots", id.rawValue) }
    static func snapshotFile(_ id: SnapshotID, _ name: String) -> StorageKey { StorageKey("snapshots", id.rawValue, name) }
    static func manifest(_ id: SnapshotID) -> StorageKey { snapshotFile(id, "manifest.json") }
    static func event(_ id: String) -> StorageKey { StorageKey("events", id + ".json") }
    static func verifications(of id: SnapshotID) -> StorageKey { StorageKey("verifications", id.rawValue) }
    static func verification(_ id: SnapshotID, name: String) -> StorageKey { StorageKey("verifications", id.rawValue, name) }

    /// What a listing of `snapshots/` holds: committed snapshots (with a manifest) and
    /// incomplete ones (objects without a manifest).
    static func snapshotStates(_ keys: [StorageKey]) -> (committed: [SnapshotID], incomplete: [SnapshotID]) {
        var withManifest = Set<SnapshotID>()
        var all = Set<SnapshotID>()
        for key in keys {
            let c = key.components
            guard c.count >= 3, c[0] == "snapshots", let id = SnapshotID(c[1]) else { continue }
            all.insert(id)
            if c.count == 3 && c[2] == "manifest.json" { withManifest.insert(id) }
        }
        return (withManifest.sorted(), all.subtracting(withManifest).sorted())
    }
}
