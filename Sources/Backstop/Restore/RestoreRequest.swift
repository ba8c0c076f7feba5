import Foundation

/// What to restore and where; the snapshot comes from an ID or a selection.
public struct RestoreRequest: Sendable {
    /// A directory (filesystem snapshots), or a file or `-` (logical snapshots).
    public var target: String
    public var includes: [String] = []
    public var database: String?
    public var table: String?
    public var force = false
    /// Filesystem restores: never restore owners / drop special mode bits and apply the umask
    /// (GNU tar's `--no-same-owner` and `--no-same-permissions`).
    public var noSameOwner = false
    public var noSamePermissions = false

    public init(target: String, includes: [String] = [], database: String? = nil, table: String? = nil, force: Bool = false,
                noSameOwner: Bool = false, noSamePermissions: Bool = false) {
        self.target = target
        self.includes = includes
        self.database = database
        self.table = table
        self.force = force
        self.noSameOwner = noSameOwner
        self.noSamePermissions = noSamePermissions
    }

    /// Refuses flags that do not apply to a snapshot of `kind` (never ignores them).
    public func check(against manifest: Manifest) throws {
        func refuse(_ flag: String, _ hint: String) -> RestoreError {
            .flagDoesNotApply(flag: flag, snapshot: manifest.id, kind: manifest.kind, hint: hint)
        }
        switch manifest.kind {
        case .filesystem:
            if database != nil { throw refuse("--database", "it restores a directory tree; use --include GLOB for part of it") }
            if table != nil { throw refuse("--table", "it restores a directory tree; use --include GLOB for part of it") }
            if target == "-" { throw refuse("--to -", "a directory tree goes to a directory: --to DIR") }
        case .logical:
            if !includes.isEmpty {
                throw refuse("--include", "it restores a stream; use --database NAME or --table NAME for part of a dump")
            }
        }
    }
}

/// A restore's progress: bytes written so far, the total, and the entry or section being written.
public typealias RestoreProgress = (_ done: Int64, _ total: Int64, _ current: String?) -> Void

/// What a restore tells its operator as it goes (the CLI prints these on stderr).
public enum RestoreNotice: Sendable, Equatable, CustomStringConvertible {
    /// A candidate proved corrupt or hostile; the failure is recorded.
    case failed(snapshot: SnapshotID, reason: String)
    /// With fallback: the next older candidate is tried.
    case fallingBack(to: SnapshotID)
    /// `restore --run`: an existing file at the directory's path was moved aside.
    case movedAside(path: String, to: String)
    /// `restore --run`: one snapshot of the set is restored.
    case restored(snapshot: SnapshotID, source: String, target: String)

    /// Whether `--quiet` still shows it: a failure and a fallback always are.
    public var isImportant: Bool {
        switch self {
        case .failed, .fallingBack: return true
        case .movedAside, .restored: return false
        }
    }

    public var description: String {
        switch self {
        case let .failed(_, reason): return reason
        case let .fallingBack(id): return "falling back to the next older candidate, \(id)"
        case let .movedAside(path, to): return "moved \(path) aside to \(to)"
        case let .restored(id, source, target): return "restored \(id) (\(source)) to \(target)"
        }
    }
}

extension Repository {
    /// Restores the first of `candidates` that proves intact.
    ///
    /// Every restore verifies as it goes. When a candidate proves corrupt, the failure is recorded
    /// in the catalog's verification history (so later selections pass it over) and, with
    /// `fallback`, the next candidate is tried and `notice` names it; without it, the error is
    /// thrown. `candidates` are a selection's chosen snapshot and its fallbacks, which `Selector`
    /// alone keeps within the chosen snapshot's source and kind (and `select --explain` shows);
    /// every one of them is tried in order. Fallback never follows a failure after bytes went to
    /// standard output. A failure to write the target is the target's, not the snapshot's: it is
    /// thrown and nothing is recorded.
    public func restore(candidates: [SnapshotID], request: RestoreRequest, fallback: Bool, progress: RestoreProgress? = nil,
                        notice: (RestoreNotice) -> Void) throws -> RestoreReport {
        precondition(!candidates.isEmpty)
        var lastError: Error?
        for (n, id) in candidates.enumerated() {
            let started = Date()
            do {
                let m = try manifest(id)
                try request.check(against: m)
                switch m.kind {
                case .filesystem:
                    var restore = FilesystemRestore(repository: self, manifest: m, includes: request.includes, force: request.force,
                                                    noSameOwner: request.noSameOwner, noSamePermissions: request.noSamePermissions)
                    restore.progress = progress
                    return try restore.run(to: request.target)
                case .logical:
                    if request.noSameOwner || request.noSamePermissions {
                        throw RestoreError.wrongKind(snapshot: id, wanted: "a filesystem snapshot (--no-same-owner and --no-same-permissions apply to trees)")
                    }
                    var restore = LogicalRestore(repository: self, manifest: m, database: request.database, table: request.table,
                                                 force: request.force)
                    restore.progress = progress
                    return try restore.run(to: request.target)
                }
            } catch let error as RestoreError where error.isIntegrityFailure {
                // Reading stopped by SIGINT/SIGTERM (however it was wrapped) says nothing about the
                // snapshot: nothing is recorded, no older candidate is tried.
                try Interruption.check()
                try? catalog.record(VerificationResult(
                    snapshot: id, source: nil, kind: nil, mode: .full, startedAt: started, duration: Date().timeIntervalSince(started),
                    bytesRead: 0, problems: [VerificationProblem(file: "restore", message: error.description)]))
                lastError = error
                guard fallback, error.allowsFallback, n + 1 < candidates.count else { throw error }
                notice(.failed(snapshot: id, reason: "\(error)"))
                notice(.fallingBack(to: candidates[n + 1]))
            }
        }
        throw lastError!
    }

    /// Restores the set of snapshots one run took (`backstop run`'s run ID), each verified, into
    /// `directory`: a filesystem snapshot into `DIRECTORY/SOURCE/`, a logical one to
    /// `DIRECTORY/SOURCE.sql`. The directory is created when missing (see
    /// `RestoreTarget.prepareRunDirectory`); `force` moves existing targets aside, never deletes.
    /// The owner and permission flags apply to the filesystem snapshots of the set.
    public func restore(run runID: RunID, into directory: String, force: Bool = false,
                        noSameOwner: Bool = false, noSamePermissions: Bool = false,
                        notice: (RestoreNotice) -> Void) throws -> [RestoreReport] {
        let set = try snapshots(ofRun: runID)
        guard !set.isEmpty else { throw RepositoryError.snapshotNotFound("run \(runID)") }
        if let aside = try RestoreTarget.prepareRunDirectory(directory, force: force) {
            notice(.movedAside(path: directory, to: aside))
        }
        var reports: [RestoreReport] = []
        for s in set {
            let target = directory + "/" + s.source + (s.kind == .logical ? ".sql" : "")
            let tree = s.kind == .filesystem
            let request = RestoreRequest(target: target, force: force, noSameOwner: noSameOwner && tree,
                                         noSamePermissions: noSamePermissions && tree)
            reports.append(try restore(candidates: [s.id], request: request, fallback: false, notice: notice))
            notice(.restored(snapshot: s.id, source: s.source, target: target))
        }
        return reports
    }
}

/// What a restore finds at its target path, and moving it aside. The only place restores decide
/// whether an existing target may be replaced (file targets, directory targets and the directory
/// of `restore --run`); it never follows a symlink at the target.
public enum RestoreTarget {
    enum Decision: Equatable {
        /// Nothing there, or an empty regular file: the restored file takes its place.
        case replace
        /// An empty directory (directory targets): removed, the restored tree takes its place.
        case replaceEmptyDirectory
        /// Something to keep (a non-empty file, a symlink, a directory) and `force` was given.
        case moveAside
    }

    /// For a directory target: nothing there, an empty directory, or (with `force`) anything
    /// else but a FIFO, device or socket (refused), which is then moved aside. A file or symlink
    /// is never replaced without `force`, even when empty.
    static func checkDirectory(_ path: String, force: Bool) throws -> Decision {
        guard let st = try existing(path) else { return .replace }
        if st.st_mode & S_IFMT == S_IFDIR {
            let empty: Bool
            do { empty = try FileSystem.list(path).isEmpty } catch {
                throw RestoreError.targetWrite(target: path, reason: "\(error)")
            }
            if empty { return .replaceEmptyDirectory }
        } else {
            _ = try check(path, force: true)   // refuses FIFOs, devices and sockets
        }
        if !force { throw RestoreError.targetNotEmpty(path) }
        return .moveAside
    }

    /// The directory `restore --run` restores a set into: created when missing; an existing
    /// directory is used (with `force` when it is not empty: each restored source then moves its
    /// own old copy aside); a file or symlink needs `force` and is moved aside; a FIFO, device or
    /// socket is refused. Returns where an existing file or symlink was moved.
    public static func prepareRunDirectory(_ path: String, force: Bool) throws -> String? {
        var aside: String?
        var st = stat()
        switch try checkDirectory(path, force: force) {
        case .replace, .replaceEmptyDirectory: break
        case .moveAside:
            if lstat(path, &st) == 0 && st.st_mode & S_IFMT != S_IFDIR { aside = try moveAside(path) }
        }
        // With its missing parents, as `mkdir -p`.
        let full = URL(fileURLWithPath: path).standardizedFileURL.path
        var prefix = ""
        for part in full.split(separator: "/") {
            prefix += "/" + part
            do { try FileSystem.makeDirectory(prefix) } catch { throw RestoreError.targetWrite(target: path, reason: "\(error)") }
        }
        return aside
    }

    /// What is at `path` (never following a symlink), or nil when nothing is.
    private static func existing(_ path: String) throws -> stat? {
        var st = stat()
        guard lstat(path, &st) == 0 else {
            if errno == ENOENT { return nil }
            throw RestoreError.targetWrite(target: path, reason: String(cString: strerror(errno)))
        }
        return st
    }

    /// For a file target: refuses a FIFO, device or socket (never replaced, never written
    /// through), and an existing non-empty file, symlink or directory without `force`.
    static func check(_ path: String, force: Bool) throws -> Decision {
        guard let st = try existing(path) else { return .replace }
        switch st.st_mode & S_IFMT {
        case S_IFIFO: throw RestoreError.unsupportedTarget(path: path, type: "a FIFO")
        case S_IFCHR, S_IFBLK: throw RestoreError.unsupportedTarget(path: path, type: "a device")
        case S_IFSOCK: throw RestoreError.unsupportedTarget(path: path, type: "a socket")
        case S_IFREG where st.st_size == 0: return .replace
        case S_IFLNK:
            // Moving /dev/stdout aside would be no restore at all.
            var to = stat()
            if stat(path, &to) == 0, [S_IFIFO, S_IFCHR, S_IFBLK, S_IFSOCK].contains(to.st_mode & S_IFMT) {
                throw RestoreError.unsupportedTarget(path: path, type: "a symlink to a FIFO, device or socket")
            }
        default:
            break
        }
        if !force { throw RestoreError.targetNotEmpty(path) }
        return .moveAside
    }

    /// Moves `path` (a file, symlink or directory; a symlink itself, never what it points to)
    /// to `PATH.before-restore-TIME`, or `…-2`, `…-3` if that exists: never over anything.
    /// Returns the new path.
    static func moveAside(_ path: String) throws -> String {
        let base = path + ".before-restore-" + SnapshotID(startedAt: Date()).rawValue.prefix(16)
        var st = stat()
        let isDirectory = lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
        for n in 1...1000 {
            let aside = n == 1 ? base : base + "-\(n)"
            if lstat(aside, &st) == 0 { continue }
            if !isDirectory {
                // link(2) fails with EEXIST rather than replace, and does not follow a symlink.
                if link(path, aside) == 0 {
                    if unlink(path) != 0 { throw RestoreError.targetWrite(target: path, reason: "cannot move it aside: \(String(cString: strerror(errno)))") }
                    return aside
                }
                if errno == EEXIST { continue }
            }
            if rename(path, aside) == 0 { return aside }
            if errno == EEXIST || errno == ENOTEMPTY { continue }
            throw RestoreError.targetWrite(target: path, reason: "cannot move it aside to \(aside): \(String(cString: strerror(errno)))")
        }
        throw RestoreError.targetWrite(target: path, reason: "cannot find a free name to move it aside (\(base)-N)")
    }
}
