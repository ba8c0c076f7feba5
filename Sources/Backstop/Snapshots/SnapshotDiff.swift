import Foundation

/// What changed between two snapshots, from manifests and entry lists only (no payload is
/// decoded). Filesystem: entries added, removed and changed (by digest, size, mode, type, link
/// target). Logical: database or table sections added, removed and changed (by content digest;
/// the preamble and trailer, which carry dump dates, are left out).
///
/// Entries are matched by their names' exact bytes, so the NFC and NFD spellings of one name, or
/// two names that are not UTF-8, are never taken for one another; names are reported escaped
/// (`EntryRecord.escaped`: `bad\xff`) and sorted bytewise.
public struct SnapshotDiff: Codable, Sendable {
    public struct Change: Codable, Sendable, Equatable {
        public var path: String
        public var what: [String]
    }

    public var from: SnapshotID
    public var to: SnapshotID
    public var kind: SnapshotKind
    public var added: [String]
    public var removed: [String]
    public var changed: [Change]
    public var unchanged: Int

    public var isEmpty: Bool { added.isEmpty && removed.isEmpty && changed.isEmpty }

    public static func compute(_ repository: Repository, from a: SnapshotID, to b: SnapshotID) throws -> SnapshotDiff {
        let ma = try repository.manifest(a), mb = try repository.manifest(b)
        guard ma.kind == mb.kind else {
            throw RestoreError.wrongKind(snapshot: b, wanted: "of the same kind as \(a) (\(ma.kind.rawValue))")
        }
        if ma.kind == .logical {
            for m in [ma, mb] { try repository.requireUnsealed(m, for: "a diff of sections") }
            let da = digestsByName(ma.sections), db = digestsByName(mb.sections)
            return make(a, b, .logical, old: da, new: db, name: { $0 }, ordered: { $0 < $1 }) { _, _ in ["content"] }
        }
        let ea = try SnapshotReader(repository: repository, manifest: ma).entries()
        let eb = try SnapshotReader(repository: repository, manifest: mb).entries()
        let old = Dictionary(ea.map { ($0.rawPath, $0) }, uniquingKeysWith: { $1 })
        let new = Dictionary(eb.map { ($0.rawPath, $0) }, uniquingKeysWith: { $1 })
        return make(a, b, .filesystem, old: old, new: new, name: EntryRecord.escaped,
                    ordered: { $0.lexicographicallyPrecedes($1) }) { x, y in
            var what: [String] = []
            if x.type != y.type { what.append("type") }
            if x.sha256 != y.sha256 || x.size != y.size { what.append("content") }
            if x.mode != y.mode { what.append("mode") }
            if x.rawLinkTarget != y.rawLinkTarget { what.append("link target") }
            if x.uid != y.uid || x.gid != y.gid { what.append("owner") }
            return what
        }
    }

    /// Matches `old` and `new` by key; `name` is a key as reported, `ordered` the report order.
    private static func make<Key: Hashable, T: Equatable>(
        _ a: SnapshotID, _ b: SnapshotID, _ kind: SnapshotKind, old: [Key: T], new: [Key: T],
        name: (Key) -> String, ordered: (Key, Key) -> Bool, differences: (T, T) -> [String]
    ) -> SnapshotDiff {
        var changed: [(Key, [String])] = []
        var unchanged = 0
        for (key, x) in old {
            guard let y = new[key] else { continue }
            if x == y { unchanged += 1; continue }
            let what = differences(x, y)
            if what.isEmpty { unchanged += 1 } else { changed.append((key, what)) }
        }
        return SnapshotDiff(from: a, to: b, kind: kind,
                            added: new.keys.filter { old[$0] == nil }.sorted(by: ordered).map(name),
                            removed: old.keys.filter { new[$0] == nil }.sorted(by: ordered).map(name),
                            changed: changed.sorted { ordered($0.0, $1.0) }.map { Change(path: name($0.0), what: $0.1) },
                            unchanged: unchanged)
    }

    /// One digest per database or table name (several sections of one name hash together).
    static func digestsByName(_ sections: [Section]) -> [String: SHA256Digest] {
        var parts: [String: [SHA256Digest]] = [:]
        for s in sections where s.kind == .database || s.kind == .table {
            parts[s.name, default: []].append(s.comparableDigest)
        }
        return parts.mapValues { digests in
            digests.count == 1 ? digests[0] : SHA256Hasher.digest(digests.flatMap(\.bytes))
        }
    }
}
