import Foundation

/// What changed between two snapshots, from manifests and entry lists only (no payload is
/// decoded). Filesystem: entries added, removed and changed (by digest, size, mode, type, link
/// target). Logical: database or table sections added, removed and changed (by content digest;
/// the preamble and trailer, which carry dump dates, are left out).
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
            let da = digestsByName(ma.sections), db = digestsByName(mb.sections)
            return make(a, b, .logical, old: da, new: db) { _, _ in ["content"] }
        }
        let ea = try SnapshotReader(repository: repository, manifest: ma).entries()
        let eb = try SnapshotReader(repository: repository, manifest: mb).entries()
        let old = Dictionary(ea.map { ($0.path, $0) }, uniquingKeysWith: { $1 })
        let new = Dictionary(eb.map { ($0.path, $0) }, uniquingKeysWith: { $1 })
        return make(a, b, .filesystem, old: old, new: new) { x, y in
            var what: [String] = []
            if x.type != y.type { what.append("type") }
            if x.sha256 != y.sha256 || x.size != y.size { what.append("content") }
            if x.mode != y.mode { what.append("mode") }
            if x.linkTarget != y.linkTarget { what.append("link target") }
            if x.uid != y.uid || x.gid != y.gid { what.append("owner") }
            return what
        }
    }

    private static func make<T: Equatable>(_ a: SnapshotID, _ b: SnapshotID, _ kind: SnapshotKind, old: [String: T], new: [String: T],
                                           differences: (T, T) -> [String]) -> SnapshotDiff {
        var changed: [Change] = []
        var unchanged = 0
        for (name, x) in old {
            guard let y = new[name] else { continue }
            if x == y { unchanged += 1; continue }
            let what = differences(x, y)
            if what.isEmpty { unchanged += 1 } else { changed.append(Change(path: name, what: what)) }
        }
        return SnapshotDiff(from: a, to: b, kind: kind,
                            added: new.keys.filter { old[$0] == nil }.sorted(),
                            removed: old.keys.filter { new[$0] == nil }.sorted(),
                            changed: changed.sorted { $0.path < $1.path }, unchanged: unchanged)
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
