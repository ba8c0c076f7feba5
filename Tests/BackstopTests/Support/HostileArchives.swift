import CArchive
import Foundation
import Testing
@testable import Backstop

/// Builds tar archives with libarchive's writer, for hostile-input tests.
enum TarBuilder {
    enum Member {
        case file(String, String)
        case directory(String)
        case symlink(String, to: String)
        case hardlink(String, to: String, data: String = "")
        /// Any entry, with names as bytes and every field chosen.
        case entry(Spec)
    }

    /// One tar entry, fully specified. `data` is the logical content; with `sparse` (data
    /// islands as offset and length), only those ranges are stored (pax GNU.sparse 1.0).
    struct Spec {
        var path: [UInt8]
        var type: EntryType = .file
        var mode: UInt32 = 0o644
        var data: [UInt8] = []
        var link: [UInt8]? = nil
        var uid: Int64 = 0
        var gid: Int64 = 0
        var userName: String? = nil
        var groupName: String? = nil
        var mtime: (seconds: Int, nanoseconds: Int) = (1_700_000_000, 0)
        var sparse: [(offset: Int64, length: Int64)] = []
        var device: dev_t = 0

        init(_ path: String, type: EntryType = .file, mode: UInt32 = 0o644, data: String = "", link: String? = nil) {
            self.init(bytes: Array(path.utf8), type: type, mode: mode, data: Array(data.utf8), link: link.map { Array($0.utf8) })
        }

        init(bytes path: [UInt8], type: EntryType = .file, mode: UInt32 = 0o644, data: [UInt8] = [], link: [UInt8]? = nil) {
            self.path = path
            self.type = type
            self.mode = mode
            self.data = data
            self.link = link
        }
    }

    private static func spec(_ m: Member) -> Spec {
        switch m {
        case let .file(path, content): return Spec(path, data: content)
        case let .directory(path): return Spec(path, type: .directory, mode: 0o755)
        case let .symlink(path, target): return Spec(path, type: .symlink, mode: 0o777, link: target)
        case let .hardlink(path, target, content): return Spec(path, type: .hardlink, data: content, link: target)
        case let .entry(spec): return spec
        }
    }

    /// Builds the archive under a UTF-8 locale, so a valid UTF-8 name is stored as its exact
    /// bytes (NFC and NFD alike) and any other name as bytes with `hdrcharset=BINARY`.
    static func build(_ members: [Member]) -> [UInt8] {
        guard let locale = newlocale(Int32(1 << LC_CTYPE), "C.UTF-8", nil) else {
            Issue.record("TarBuilder: newlocale(C.UTF-8) failed: \(String(cString: strerror(errno)))")
            return []
        }
        let previous = uselocale(locale)
        defer { uselocale(previous); freelocale(locale) }
        let a = archive_write_new()!
        defer { archive_write_free(a) }
        archive_write_set_format_pax_restricted(a)
        archive_write_add_filter_none(a)
        archive_write_set_bytes_in_last_block(a, 1)
        var buffer = [UInt8](repeating: 0, count: 16 << 20)
        var used = 0
        // Every call is checked: a fixture that silently lost members would make a restore
        // test fail for the wrong reason (a truncated archive restores "too little").
        func check(_ status: Int32, _ what: @autoclosure () -> String) {
            guard status != ARCHIVE_OK && status != ARCHIVE_WARN else { return }
            Issue.record("TarBuilder: \(what()) failed (\(status)): \(archive_error_string(a).map { String(cString: $0) } ?? "no message")")
        }
        buffer.withUnsafeMutableBytes { raw in
            check(archive_write_open_memory(a, raw.baseAddress, raw.count, &used), "archive_write_open_memory")
            for m in members {
                let s = spec(m)
                let e = archive_entry_new()!
                defer { archive_entry_free(e) }
                (s.path.map { CChar(bitPattern: $0) } + [0]).withUnsafeBufferPointer { archive_entry_copy_pathname(e, $0.baseAddress) }
                let link = s.link.map { $0.map { CChar(bitPattern: $0) } + [0] }
                switch s.type {
                case .file: archive_entry_set_filetype(e, backstop_ae_ifreg())
                case .directory: archive_entry_set_filetype(e, backstop_ae_ifdir())
                case .symlink:
                    archive_entry_set_filetype(e, backstop_ae_iflnk())
                    link?.withUnsafeBufferPointer { archive_entry_copy_symlink(e, $0.baseAddress) }
                case .hardlink:
                    archive_entry_set_filetype(e, backstop_ae_ifreg())
                    link?.withUnsafeBufferPointer { archive_entry_copy_hardlink(e, $0.baseAddress) }
                case .fifo: archive_entry_set_filetype(e, 0o010000)  // AE_IFIFO
                case .characterDevice:
                    archive_entry_set_filetype(e, 0o020000)  // AE_IFCHR
                    archive_entry_set_rdev(e, s.device)
                case .blockDevice:
                    archive_entry_set_filetype(e, 0o060000)  // AE_IFBLK
                    archive_entry_set_rdev(e, s.device)
                }
                archive_entry_set_perm(e, mode_t(s.mode))
                archive_entry_set_uid(e, s.uid)
                archive_entry_set_gid(e, s.gid)
                if let u = s.userName { archive_entry_copy_uname(e, u) }
                if let g = s.groupName { archive_entry_copy_gname(e, g) }
                archive_entry_set_size(e, Int64(s.data.count))
                for island in s.sparse { archive_entry_sparse_add_entry(e, island.offset, island.length) }
                archive_entry_set_mtime(e, time_t(s.mtime.seconds), s.mtime.nanoseconds)
                let name = EntryRecord.display(s.path)
                errno = 0   // as TarWriter does: libarchive reads a leftover ENOMEM as out of memory
                check(archive_write_header(a, e), "the header of \(name)")
                if !s.data.isEmpty {
                    let n = s.data.withUnsafeBytes { archive_write_data(a, $0.baseAddress, $0.count) }
                    if n < 0 { check(Int32(truncatingIfNeeded: n), "the data of \(name)") }
                }
                check(archive_write_finish_entry(a), "the end of \(name)")
            }
            check(archive_write_close(a), "archive_write_close")
        }
        return Array(buffer.prefix(used))
    }

    /// Commits `tar` as a filesystem snapshot whose entry list, digests and sums are all
    /// correct, so only the restorer's safety checks stand between it and the disk.
    /// `edit` may then forge the entry list.
    static func commitSnapshot(_ tar: [UInt8], to repo: Repository, edit: (inout [EntryRecord]) -> Void = { _ in }) throws -> Manifest {
        var chunks: [[UInt8]] = [tar]
        let reader = try TarReader(next: { chunks.isEmpty ? nil : chunks.removeFirst() })
        var records: [EntryRecord] = []
        while let entry = try reader.nextEntry() {
            let offset = reader.headerPosition
            let hasher = SHA256Hasher()
            var size: Int64 = 0
            try reader.readData { hasher.update($0); size += Int64($0.count) }
            if let last = records.indices.last { records[last].length = offset - records[last].offset }
            records.append(EntryRecord(rawPath: entry.rawPath, type: entry.type, mode: entry.mode, uid: entry.uid, gid: entry.gid,
                                       mtime: Date(timeIntervalSince1970: 1_700_000_000), size: size,
                                       sha256: entry.type == .file ? hasher.finalize() : nil, rawLinkTarget: entry.rawLinkTarget,
                                       offset: offset, length: 0))
        }
        if let last = records.indices.last { records[last].length = Int64(tar.count) - 1024 - records[last].offset }
        edit(&records)
        let encoder = Timestamp.jsonEncoder(pretty: false)
        return try repo.writeSnapshot(kind: .filesystem, options: BackupOptions(source: "forged")) { payload, entries in
            try payload.write(tar)
            for r in records { try entries!.write(Array(try encoder.encode(r)) + [0x0A]) }
            return SnapshotBody(entryCount: records.count)
        }
    }
}
