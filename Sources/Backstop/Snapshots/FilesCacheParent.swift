import Foundation

/// The files cache's view of the parent snapshot: the source's newest committed filesystem
/// snapshot from this host (format 2, not known bad), its frame list, and its entry list read as
/// a stream in walk order.
///
/// An entry is unchanged, and its tar bytes (which depend on its metadata only: path, type,
/// mode, owner, mtime, size, link target, xattrs, holes) equal the parent's, when its path,
/// type, size, mtime and ctime (nanoseconds), inode and device all match the parent's record:
/// any change to content or metadata sets the ctime to the current time, which no tool can set
/// back without changing the clock.
///
/// Racy entries are never trusted: one whose mtime or ctime is later than `racyWindow` before
/// the parent's start may have changed after the parent read it within one tick of the
/// filesystem's clock, leaving both times as they were. Two seconds is the coarsest timestamp
/// resolution in common use (FAT and exFAT store mtimes in 2-second steps; ext3, HFS+ and many
/// network filesystems in 1-second steps), and it also covers the kernel's coarse clock for file
/// times lagging the clock the start time was read from.
///
/// Entries are decoded one entry-list frame at a time (256 KiB), never the whole list.
final class FilesCacheParent {
    static let racyWindow: TimeInterval = 2

    let manifest: Manifest
    let frames: [FrameRef]
    /// `starts[i]` is where frame `i` starts in the uncompressed stream; `starts[frames.count]`
    /// is the stream's length.
    let starts: [Int64]
    /// Entries whose mtime or ctime is at or after this are racy: read again.
    let racyAfter: FileTime
    private let storage: StorageBackend
    private let entriesReader: SeekableZstdReader
    private let decoder = Timestamp.jsonDecoder()
    private var nextFrame = 0
    private var carry: [UInt8] = []
    private var queue: [CachedEntry] = []
    private var position = 0
    /// The entry list could not be read on: no more hits.
    private var exhausted = false

    private init(manifest: Manifest, frames: [FrameRef], storage: StorageBackend, entriesReader: SeekableZstdReader) {
        self.manifest = manifest
        self.frames = frames
        var starts: [Int64] = [0]
        starts.reserveCapacity(frames.count + 1)
        for f in frames { starts.append(starts.last! + Int64(f.uncompressedSize)) }
        self.starts = starts
        self.storage = storage
        self.entriesReader = entriesReader
        racyAfter = FileTime(manifest.startedAt.addingTimeInterval(-Self.racyWindow))
    }

    /// The parent of a filesystem backup with `options`, or nil when there is none to trust (no
    /// earlier snapshot, or one that cannot be read: then every file is read, as without cache).
    static func find(repository: Repository, options: BackupOptions) -> FilesCacheParent? {
        do {
            let bad = Set(try repository.lastVerifications().filter { !$0.value.passed }.keys)
            let candidates = try repository.snapshots().filter {
                $0.kind == .filesystem && $0.source == options.source && $0.host == options.host && !bad.contains($0.id)
            }
            guard let newest = candidates.max(by: { ($0.startedAt, $0.id.rawValue) < ($1.startedAt, $1.id.rawValue) }) else { return nil }
            var manifest = try repository.manifest(newest.id)
            guard manifest.format >= 2, manifest.kind == .filesystem else { return nil }
            if let encrypted = repository.storage as? EncryptedBackend, !encrypted.canDecrypt || manifest.isSealed {
                // No identity: the writer's own plaintext copy, if this host wrote the parent.
                guard let local = LocalFilesCache(repository: repository, source: options.source, host: options.host).read(newest.id) else { return nil }
                manifest.warnings = local.warnings
                return FilesCacheParent(manifest: manifest, frames: local.frames, storage: repository.storage, entriesReader: local.entries)
            }
            let reader = SnapshotReader(repository: repository, manifest: manifest)
            let frames = try reader.frameList()
            let entries = try SeekableZstdReader(source: repository.storage.open(RepositoryLayout.snapshotFile(manifest.id, "entries.jsonl.zst")))
            return FilesCacheParent(manifest: manifest, frames: frames, storage: repository.storage, entriesReader: entries)
        } catch {
            return nil
        }
    }

    /// Whether `a` comes before `b` in walk order: depth first, each directory's names sorted
    /// bytewise (so `a/b` comes before `a.txt`): bytewise with `/` lowest.
    static func walkOrderPrecedes(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        let n = min(a.count, b.count)
        var i = 0
        while i < n {
            let x = a[i], y = b[i]
            if x != y { return (x == 0x2F ? 0 : x) < (y == 0x2F ? 0 : y) }
            i += 1
        }
        return a.count < b.count
    }

    /// The parent's record of `path`, if it has one; entries before `path` in walk order are
    /// passed over for good (the walk asks in walk order).
    func take(_ path: [UInt8]) -> CachedEntry? {
        while let r = peek() {
            if r.rawPath == path { position += 1; return r }
            if Self.walkOrderPrecedes(r.rawPath, path) { position += 1; continue }
            return nil
        }
        return nil
    }

    private func peek() -> CachedEntry? {
        while position == queue.count {
            guard !exhausted, nextFrame < entriesReader.frames.count else { return nil }
            queue.removeAll(keepingCapacity: true)
            position = 0
            do {
                carry.append(contentsOf: try entriesReader.decodeFrame(nextFrame))
                nextFrame += 1
                var start = 0
                while let nl = carry[start...].firstIndex(of: 0x0A) {
                    let line = carry[start..<nl]
                    if let entry = CachedEntry(line: line) {
                        queue.append(entry)
                    } else {
                        queue.append(CachedEntry(record: try decoder.decode(EntryRecord.self, from: Data(line))))
                    }
                    start = nl + 1
                }
                carry.removeFirst(start)
            } catch {
                exhausted = true
                queue.removeAll()
                return nil
            }
        }
        return queue[position]
    }

    /// The frame that starts exactly at `offset`, if one does.
    func frameIndex(startingAt offset: Int64) -> Int? {
        var low = 0, high = frames.count
        while low < high {
            let mid = (low + high) / 2
            if starts[mid] < offset { low = mid + 1 } else { high = mid }
        }
        return low < frames.count && starts[low] == offset ? low : nil
    }

    /// The frames that hold exactly the bytes `offset ..< offset + length`, if the frames start
    /// and end there.
    func frames(covering offset: Int64, length: Int64) -> ArraySlice<FrameRef>? {
        guard length > 0, let first = frameIndex(startingAt: offset) else { return nil }
        var last = first
        while last < frames.count && starts[last + 1] < offset + length { last += 1 }
        guard last < frames.count, starts[last + 1] == offset + length else { return nil }
        return frames[first...last]
    }

    /// Whether every frame is still stored with its listed size (a swept or damaged frame is
    /// not reused: the file is read instead).
    func stored(_ slice: ArraySlice<FrameRef>) -> Bool {
        for i in slice.indices {
            if checked[i] == nil { checkAhead(from: i) }
            guard checked[i] == true else { return false }
        }
        return true
    }

    /// Frames looked up ahead, by index in `frames`: stored with the listed size or not.
    private var checked: [Int: Bool] = [:]
    private lazy var lookups = IOPool(threads: Self.lookupThreads)
    static let lookupThreads = 8
    static let lookAhead = 256

    deinit { if !checked.isEmpty { lookups.stop() } }

    /// Looks frames `start..<start + lookAhead` up (a stat locally, a HEAD on S3) on a few
    /// threads at once: one lookup after another, each a network round trip, made an unchanged
    /// re-run to S3 four times as slow as to a local directory. The walk moves forward, so what
    /// lies behind `start` is forgotten (memory stays bounded whatever the parent's size).
    private func checkAhead(from start: Int) {
        let end = min(frames.count, start + Self.lookAhead)
        checked = checked.filter { $0.key >= start }
        let results = LookupResults()
        let group = DispatchGroup()
        let storage = self.storage, frames = self.frames
        for i in start..<end where checked[i] == nil {
            group.enter()
            lookups.submit {
                let f = frames[i]
                results.set(i, (try? storage.size(of: RepositoryLayout.frame(f.id))) == Int64(f.compressedSize))
                group.leave()
            }
        }
        group.wait()
        for (i, ok) in results.all() { checked[i] = ok }
    }

    /// Whether the parent warned about `path` (it was skipped, zero-filled or changed while
    /// read): such an entry is read again.
    func warned(_ path: [UInt8]) -> Bool {
        guard !warnedPaths.isEmpty else { return false }
        let shown = EntryRecord.escaped(path)
        return warnedPaths.contains(shown) || warnedPaths.contains(shown + "/")
    }

    /// Every text before a `: ` in the parent's warnings (`PATH: what happened`; a path may
    /// hold `: ` itself, so each place counts).
    private lazy var warnedPaths: Set<String> = {
        var out = Set<String>()
        for w in manifest.warnings {
            var rest = w[...]
            while let r = rest.range(of: ": ") {
                out.insert(String(w[..<r.lowerBound]))
                rest = w[r.upperBound...]
            }
        }
        return out
    }()

    /// The parent's record of an entry whose `lstat` is `st` and that the walk would store as
    /// `type` (`hardlinkTo` for hard links), when the entry is unchanged and not racy.
    func unchanged(path: [UInt8], stat st: stat, type: EntryType, hardlinkTo: [UInt8]?) -> CachedEntry? {
        guard let r = take(path) else { return nil }
        let mtime = FileTime(st.st_mtim), ctime = FileTime(st.st_ctim)
        guard r.type == type, r.inode == UInt64(st.st_ino), r.device == UInt64(st.st_dev),
              r.ctime == ctime, r.mtime == mtime,
              mtime < racyAfter, ctime < racyAfter,
              type != .file || r.size == Int64(st.st_size),
              type != .hardlink || r.rawLinkTarget == hardlinkTo,
              !warned(path) else { return nil }
        return r
    }
}

/// What the lookup threads of `FilesCacheParent.checkAhead` found.
private final class LookupResults: @unchecked Sendable {
    private let lock = NSLock()
    private var found: [Int: Bool] = [:]

    func set(_ i: Int, _ ok: Bool) {
        lock.lock()
        found[i] = ok
        lock.unlock()
    }

    func all() -> [Int: Bool] {
        lock.lock()
        defer { lock.unlock() }
        return found
    }
}
