import CArchive
import Foundation
@testable import Backstop

/// Builds tar archives with libarchive's writer, for hostile-input tests.
enum TarBuilder {
    enum Member {
        case file(String, String)
        case directory(String)
        case symlink(String, to: String)
        case hardlink(String, to: String, data: String = "")
    }

    static func build(_ members: [Member]) -> [UInt8] {
        let a = archive_write_new()!
        defer { archive_write_free(a) }
        archive_write_set_format_pax_restricted(a)
        archive_write_add_filter_none(a)
        archive_write_set_bytes_in_last_block(a, 1)
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var used = 0
        buffer.withUnsafeMutableBytes { raw in
            _ = archive_write_open_memory(a, raw.baseAddress, raw.count, &used)
            for m in members {
                let e = archive_entry_new()!
                defer { archive_entry_free(e) }
                var data = ""
                switch m {
                case let .file(path, content):
                    archive_entry_set_pathname(e, path)
                    archive_entry_set_filetype(e, backstop_ae_ifreg())
                    archive_entry_set_perm(e, 0o644)
                    data = content
                case let .directory(path):
                    archive_entry_set_pathname(e, path)
                    archive_entry_set_filetype(e, backstop_ae_ifdir())
                    archive_entry_set_perm(e, 0o755)
                case let .symlink(path, target):
                    archive_entry_set_pathname(e, path)
                    archive_entry_set_filetype(e, backstop_ae_iflnk())
                    archive_entry_set_symlink(e, target)
                    archive_entry_set_perm(e, 0o777)
                case let .hardlink(path, target, content):
                    archive_entry_set_pathname(e, path)
                    archive_entry_set_filetype(e, backstop_ae_ifreg())
                    archive_entry_set_hardlink(e, target)
                    archive_entry_set_perm(e, 0o644)
                    data = content
                }
                archive_entry_set_size(e, Int64(data.utf8.count))
                archive_entry_set_mtime(e, 1_700_000_000, 0)
                archive_write_header(a, e)
                if !data.isEmpty {
                    var bytes = Array(data.utf8)
                    _ = archive_write_data(a, &bytes, bytes.count)
                }
                archive_write_finish_entry(a)
            }
            archive_write_close(a)
        }
        return Array(buffer.prefix(used))
    }

    /// Commits `tar` as a filesystem snapshot whose entry list, digests and sums are all
    /// correct, so only the restorer's safety checks stand between it and the disk.
    static func commitSnapshot(_ tar: [UInt8], to repo: Repository) throws -> Manifest {
        var chunks: [[UInt8]] = [tar]
        let reader = try TarReader(next: { chunks.isEmpty ? nil : chunks.removeFirst() })
        var records: [EntryRecord] = []
        while let entry = try reader.nextEntry() {
            let offset = reader.headerPosition
            let hasher = SHA256Hasher()
            var size: Int64 = 0
            try reader.readData { hasher.update($0); size += Int64($0.count) }
            if let last = records.indices.last { records[last].length = offset - records[last].offset }
            records.append(EntryRecord(path: entry.path, type: entry.type, mode: entry.mode, uid: 0, gid: 0,
                                       mtime: Date(timeIntervalSince1970: 1_700_000_000), size: size,
                                       sha256: entry.type == .file ? hasher.finalize() : nil, linkTarget: entry.linkTarget,
                                       offset: offset, length: 0))
        }
        if let last = records.indices.last { records[last].length = Int64(tar.count) - 1024 - records[last].offset }
        let encoder = Timestamp.jsonEncoder(pretty: false)
        return try repo.writeSnapshot(kind: .filesystem, options: BackupOptions(source: "forged")) { payload, entries in
            try payload.write(tar)
            for r in records { try entries!.write(Array(try encoder.encode(r)) + [0x0A]) }
            return SnapshotBody(entryCount: records.count)
        }
    }
}
