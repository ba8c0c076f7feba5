import Foundation

/// Rewrites the preamble of a pg_dump custom or tar archive as it is restored, so that the
/// archive written by `restore --table` (the preamble, the chosen tables' data, and for tar the
/// trailer) is one that `pg_restore` reads as is.
///
/// `pg_restore` looks for the data of every table-of-contents entry that says it has data, and
/// stops with "could not find block ID" (custom) or "could not find header for file" (tar) when
/// it is missing. So every other entry with data (other tables, large objects) is marked as
/// having none, as pg_dump marks entries without data: its "has data" integer becomes 0 and, in
/// the custom format, its data offset flag becomes "no data". The chosen tables' entries get the
/// offset flag "not set" (pg_restore then finds their block by reading on, as it does for an
/// archive that pg_dump wrote to a pipe), because the offsets pg_dump wrote into a seekable file
/// point into the original archive. Every change keeps the length of what it changes, so the
/// preamble keeps its length (and a tar member header its size and checksum). The entries stay
/// in the table of contents (its entry count is unchanged), but pg_restore passes over a data
/// entry without data: it neither restores nor lists (`-l`) it. Memory: one table-of-contents entry.
final class PgArchiveTableFilter: ByteSink {
    private let out: ByteSink
    private let toc: PgArchiveTOC
    private let container: PgArchiveTOC.Container
    /// Tar: the `toc.dat` member header still to pass, and how much of the member follows it.
    private var header: [UInt8] = []
    private var tocLeft: Int64 = -1

    /// A filter for `section` when it is the preamble of a pg_dump custom or tar archive restored
    /// for the table sections among `restoring`; nil otherwise (the section is written as stored).
    static func forSection(_ section: Section, of manifest: Manifest, restoring: [Section], into out: ByteSink) -> PgArchiveTableFilter? {
        guard section.kind == .preamble else { return nil }
        let container: PgArchiveTOC.Container
        switch manifest.dumpFormat {
        case .pgdumpCustom: container = .custom
        case .pgdumpTar: container = .tar
        default: return nil
        }
        let names = Set(restoring.filter { $0.kind == .table }.map(\.name))
        return PgArchiveTableFilter(container: container, format: manifest.dumpFormat!, keeping: names, into: out)
    }

    init(container: PgArchiveTOC.Container, format: DumpFormat, keeping names: Set<String>, into out: ByteSink) {
        self.out = out
        self.container = container
        toc = PgArchiveTOC(container: container, format: format, output: { try out.write($0) }, rewrite: { entry, bytes, toc in
            guard entry.hasData else { return }
            let keep = entry.isTableData && names.contains(entry.sectionName)
            if !keep {
                for i in toc.hadDumperRange { bytes[i] = 0 }
            }
            if container == .custom {
                let flag = bytes.count - 1 - toc.offSize
                bytes[flag] = keep ? PgArchiveTOC.positionNotSet : PgArchiveTOC.noData
                for i in (flag + 1)..<bytes.count { bytes[i] = 0 }
            }
        })
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        var rest = bytes
        if container == .tar, tocLeft < 0 {
            let take = min(512 - header.count, rest.count)
            header.append(contentsOf: UnsafeRawBufferPointer(rebasing: rest[0..<take]))
            try out.write(UnsafeRawBufferPointer(rebasing: rest[0..<take]))
            rest = UnsafeRawBufferPointer(rebasing: rest[take...])
            guard header.count == 512 else { return }
            guard let size = PgTarScanner.size(header) else { throw PgArchiveTableFilterError.unreadable("the toc.dat header") }
            tocLeft = size
        }
        if !toc.isComplete, !rest.isEmpty {
            let limit = container == .tar ? Int(min(Int64(rest.count), tocLeft)) : rest.count
            let used: Int
            do {
                used = try toc.consume(UnsafeRawBufferPointer(rebasing: rest[0..<limit]))
            } catch let BackupError.damagedArchive(_, reason), let BackupError.unsupportedArchive(_, reason) {
                throw PgArchiveTableFilterError.unreadable("the archive (\(reason))")
            }
            tocLeft -= Int64(used)
            rest = UnsafeRawBufferPointer(rebasing: rest[used...])
        }
        // After the table of contents: tar padding, nothing else in the custom format's preamble.
        if !rest.isEmpty { try out.write(rest) }
    }

    /// Checks that the whole table of contents went through.
    func finishTableOfContents() throws {
        guard toc.isComplete else { throw PgArchiveTableFilterError.unreadable("the table of contents ends \(toc.position)") }
    }

    func markBoundary() throws { try out.markBoundary() }
    func finish() throws { try finishTableOfContents() }
}

enum PgArchiveTableFilterError: Error, CustomStringConvertible, ExitStatusProviding {
    case unreadable(String)
    /// The stored archive does not parse: 65.
    var exitStatus: ExitStatus { .integrity }
    var description: String {
        switch self {
        case let .unreadable(what): return "\(what) cannot be read for a table restore"
        }
    }
}
