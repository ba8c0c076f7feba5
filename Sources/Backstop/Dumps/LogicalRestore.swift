import Foundation

/// Restores a logical snapshot's stream, or one database or table of it, to a file or stdout.
///
/// `database` (mysqldump, pg_dumpall) or `table` (pg_dump; `schema.table` or a unique `table`)
/// writes the preamble, every section of that name (mariadb-dump writes views in a second
/// section of the same database) and the trailer: a file the database client loads as is. Only
/// those sections' frames are decoded, and each section's digest is checked as it is written.
///
/// To a file: written beside it and renamed into place once every digest matched, so a corrupt
/// snapshot leaves the target untouched; an existing non-empty file needs `force`. To stdout
/// (`-`): written as it is decoded (each frame's zstd checksum is checked before its bytes go
/// out); a digest mismatch found at the end still fails the command with exit 65.
public struct LogicalRestore {
    public var repository: Repository
    public var manifest: Manifest
    public var database: String?
    public var table: String?
    public var force: Bool

    public init(repository: Repository, manifest: Manifest, database: String? = nil, table: String? = nil, force: Bool = false) {
        self.repository = repository
        self.manifest = manifest
        self.database = database
        self.table = table
        self.force = force
    }

    /// The sections that a `database`/`table` restore writes, in stream order.
    public func chosenSections() throws -> [Section]? {
        let id = manifest.id
        if let database {
            guard manifest.dumpFormat == .mysqldump || manifest.dumpFormat == .pgdumpall else {
                throw RestoreError.wrongKind(snapshot: id, wanted: "a mysqldump or pg_dumpall snapshot (use --table for pg_dump)")
            }
            let parts = manifest.sections.filter { $0.kind == .database && $0.name == database }
            guard !parts.isEmpty else {
                throw RestoreError.noSuchSection(snapshot: id, name: database, kind: "database",
                                                 available: uniqueNames(manifest.sections.filter { $0.kind == .database }))
            }
            return frame(parts)
        }
        if let table {
            guard manifest.dumpFormat == .pgdump else {
                throw RestoreError.wrongKind(snapshot: id, wanted: "a pg_dump snapshot (use --database for mysqldump and pg_dumpall)")
            }
            let tables = manifest.sections.filter { $0.kind == .table }
            var parts = tables.filter { $0.name == table }
            if parts.isEmpty { parts = tables.filter { $0.name.hasSuffix("." + table) } }
            let names = uniqueNames(parts)
            guard !parts.isEmpty else {
                throw RestoreError.noSuchSection(snapshot: id, name: table, kind: "table", available: uniqueNames(tables))
            }
            guard names.count == 1 else { throw RestoreError.ambiguousSection(name: table, matches: names) }
            return frame(parts)
        }
        return nil
    }

    private func frame(_ parts: [Section]) -> [Section] {
        manifest.sections.filter { $0.kind == .preamble } + parts + manifest.sections.filter { $0.kind == .trailer }
    }

    private func uniqueNames(_ sections: [Section]) -> [String] {
        var seen = Set<String>()
        return sections.map(\.name).filter { seen.insert($0).inserted }
    }

    public func run(to target: String) throws -> RestoreReport {
        guard manifest.kind == .logical else { throw RestoreError.wrongKind(snapshot: manifest.id, wanted: "a logical snapshot") }
        let sections = try chosenSections()
        try repository.checkBeforeRestore(manifest)
        let payload: SeekableZstdReader
        do {
            payload = try SnapshotReader(repository: repository, manifest: manifest).payload()
        } catch {
            throw RestoreError.corrupt(snapshot: manifest.id, file: manifest.payloadName, location: "seek table", reason: "\(error)")
        }
        if target == "-" {
            let out = try FileDescriptorSink(fd: 1, name: "standard output")
            var report = try copy(payload, sections: sections, to: out)
            report.target = "-"
            return report
        }
        let path = URL(fileURLWithPath: target).standardizedFileURL.path
        var st = stat()
        if stat(path, &st) == 0 {
            if (st.st_mode & S_IFMT) == S_IFDIR || (st.st_size > 0 && !force) { throw RestoreError.targetNotEmpty(path) }
        }
        let temp = path + ".backstop-restore-\(getpid())"
        RestoreStaging.removeAbandoned(beside: path)
        unlink(temp)
        let removeOnSignal = Interruption.register { unlink(temp) }
        defer { Interruption.unregister(removeOnSignal) }
        do {
            let sink = try FileSink(path: temp)
            var report = try copy(payload, sections: sections, to: sink)
            try sink.finish()
            try FileSystem.rename(temp, path)
            report.target = path
            return report
        } catch {
            unlink(temp)
            throw error
        }
    }

    private func copy(_ payload: SeekableZstdReader, sections: [Section]?, to sink: ByteSink) throws -> RestoreReport {
        let id = manifest.id
        var written: Int64 = 0
        var frames = Set<Int>()
        if let sections {
            for s in sections {
                let hasher = HashingSink(sink)
                do {
                    try payload.read(range: s.offset..<(s.offset + s.length), into: hasher)
                } catch {
                    throw RestoreError.corrupt(snapshot: id, file: manifest.payloadName, location: "section \(s.name)", reason: "\(error)")
                }
                hasher.finishDigest()
                if hasher.digest != s.sha256 {
                    throw RestoreError.corrupt(snapshot: id, file: manifest.payloadName, location: "section \(s.name)", reason: "digest does not match the manifest")
                }
                written += s.length
                for i in payload.frames.indices where payload.frames[i].uncompressedOffset < s.offset + s.length && payload.frames[i].uncompressedEnd > s.offset {
                    frames.insert(i)
                }
            }
        } else {
            let stream = FrameStream(reader: payload, hashingOutput: true)
            while true {
                let next: (index: Int, bytes: [UInt8])?
                do { next = try stream.next() } catch let e as FrameError {
                    throw RestoreError.corrupt(snapshot: id, file: manifest.payloadName, location: "frame \(e.frame)", reason: "\(e.underlying)")
                }
                guard let (index, bytes) = next else { break }
                frames.insert(index)
                try sink.write(bytes)
                written += Int64(bytes.count)
            }
            if stream.streamDigest != manifest.sha256 || written != manifest.bytesIn {
                throw RestoreError.corrupt(snapshot: id, file: manifest.payloadName, location: "stream", reason: "digest does not match the manifest")
            }
        }
        return RestoreReport(snapshot: id, target: "", entries: sections?.count ?? 1, bytesWritten: written,
                             bytesRead: payload.source.bytesRead, framesRead: frames.count, framesTotal: payload.frames.count,
                             movedAside: nil, warnings: [])
    }
}

/// Writes to an already open descriptor (standard output); never closes it.
final class FileDescriptorSink: ByteSink {
    let fd: Int32
    let name: String

    init(fd: Int32, name: String) throws {
        self.fd = fd
        self.name = name
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        try FileSink.writeAll(bytes, to: fd, name: name)
    }

    func markBoundary() throws {}
    func finish() throws {}
}
