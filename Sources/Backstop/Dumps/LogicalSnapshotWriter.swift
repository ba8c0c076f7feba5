import Foundation

/// Where a logical snapshot's stream comes from.
public enum LogicalInput: Sendable {
    /// An open file descriptor, read to its end (standard input is 0).
    case fileDescriptor(Int32)
    /// A command run by `/bin/sh -c`; its standard output is the stream. A non-zero exit or a
    /// signal fails the snapshot.
    case command(String)
}

/// `--format`: a dump format, or `auto` to recognise it from the stream's first lines.
public enum DumpFormatChoice: String, Sendable, CaseIterable {
    case auto, mysqldump, pgdump, pgdumpall, raw
    case pgdumpCustom = "pgdump-custom"
    case pgdumpTar = "pgdump-tar"
}

/// Takes logical snapshots: reads a stream, splits it into sections, hashes and compresses it.
///
/// Nothing is committed unless the stream ended cleanly: the command exited 0, the stream is not
/// empty (in any format), and a dump carries its completion marker. With `--format auto`, a
/// stream recognised as another format than the source's newest logical snapshot is refused
/// (a failing dump often writes an error instead of a dump) unless the format is named, except
/// that a source stored as raw may become a checked dump format (with a notice); one that
/// looks like SQL without a dump header (`mariadb-dump --compact`) is stored as raw with a
/// warning, since a truncated copy of it could not be detected.
public struct LogicalSnapshotWriter {
    public var input: LogicalInput
    public var format: DumpFormatChoice
    public var options: BackupOptions
    public var progress: ((BackupProgress) -> Void)?
    /// Warnings for the operator that do not stop the backup (a stream stored as raw that looks
    /// like SQL).
    public var warn: ((String) -> Void)?

    public init(input: LogicalInput, format: DumpFormatChoice = .auto, options: BackupOptions,
                progress: ((BackupProgress) -> Void)? = nil, warn: ((String) -> Void)? = nil) {
        self.input = input
        self.format = format
        self.options = options
        self.progress = progress
        self.warn = warn
    }

    /// The format of the source's newest logical snapshot, which `--format auto` must match.
    private func previousFormat(_ repository: Repository) -> (SnapshotID, DumpFormat)? {
        guard format == .auto,
              let newest = try? repository.catalog.select(SelectionCriteria(point: .latest, source: options.source, kind: .logical)).chosen,
              let m = try? repository.manifest(newest.id), let f = m.dumpFormat
        else { return nil }
        return (newest.id, f)
    }

    /// Writes and commits the snapshot. The caller holds the repository's writer lock.
    public func write(to repository: Repository) throws -> Manifest {
        let previous = previousFormat(repository)
        switch input {
        case let .fileDescriptor(fd):
            return try repository.writeSnapshot(kind: .logical, options: options) { payload, _ in
                try copy(from: fd, description: "standard input", to: payload, previous: previous)
            }
        case let .command(command):
            let child = try ShellCommand(command, stdout: .pipe)
            do {
                return try repository.writeSnapshot(kind: .logical, options: options) { payload, _ in
                    let body: SnapshotBody
                    let reading = ReadState()
                    do {
                        body = try copy(from: child.stdout!, description: "the output of `\(command)`", to: payload, previous: previous, state: reading)
                    } catch let error as BackupError where reading.reachedEnd {
                        // The stream ended (empty, incomplete or refused): a failing command
                        // explains that better. (Mid-stream, the command may still be writing: it
                        // is stopped.)
                        try child.waitForSuccess()
                        throw error
                    }
                    try child.waitForSuccess()
                    return body
                }
            } catch {
                child.terminate()
                throw error
            }
        }
    }

    /// Whether `copy` read its input to the end.
    private final class ReadState {
        var reachedEnd = false
    }

    private func copy(from fd: Int32, description: String, to payload: ByteSink, previous: (SnapshotID, DumpFormat)?,
                      state: ReadState = ReadState()) throws -> SnapshotBody {
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var total: Int64 = 0
        var lastReport: Int64 = 0
        func readChunk() throws -> Int {
            while true {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n >= 0 { return n }
                if errno != EINTR { throw BackupError.input("\(description): \(String(cString: strerror(errno)))") }
            }
        }
        // Collect the head to recognise the format.
        var head: [UInt8] = []
        var eof = false
        while head.count < DumpFormatDetector.window {
            let n = try readChunk()
            if n == 0 { eof = true; break }
            head.append(contentsOf: buffer[0..<n])
        }
        let chosen: DumpFormat
        switch format {
        case .auto: chosen = DumpFormatDetector.detect(head)
        case .mysqldump: chosen = .mysqldump
        case .pgdump: chosen = .pgdump
        case .pgdumpall: chosen = .pgdumpall
        case .pgdumpCustom: chosen = .pgdumpCustom
        case .pgdumpTar: chosen = .pgdumpTar
        case .raw: chosen = .raw
        }
        if head.isEmpty {
            state.reachedEnd = true
            throw BackupError.emptyStream(description)
        }
        let scanner = DumpScanner.scanner(for: chosen, sink: payload)
        func pass(_ bytes: UnsafeRawBufferPointer) throws {
            if let scanner { try scanner.consume(bytes) } else { try payload.write(bytes) }
            total += Int64(bytes.count)
            if total - lastReport >= 1 << 20, let progress {
                lastReport = total
                progress(BackupProgress(bytesIn: total, entries: 0))
            }
        }
        try head.withUnsafeBytes { try pass($0) }
        while !eof {
            let n = try readChunk()
            if n == 0 { break }
            try buffer.withUnsafeBytes { try pass(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        }
        state.reachedEnd = true
        let sections = try scanner?.finish() ?? []
        if let (id, expected) = previous, expected != chosen {
            // Raw is unchecked: a source whose stream is now recognised (pg_dump -Fc/-Ft archives
            // were stored as raw before backstop could check them) gains a check, loses none.
            guard expected == .raw else {
                throw BackupError.formatChanged(source: options.source, detected: chosen, previous: expected, snapshot: id)
            }
            warn?("\(description) is now recognised as \(chosen.rawValue) (source \(options.source)'s newest snapshot \(id) is raw): "
                + "it is stored as \(chosen.rawValue) and checked for completeness from now on, and a later stream in another format is refused")
        }
        if format == .auto && chosen == .raw && Self.looksLikeSQL(head) {
            warn?("\(description) looks like SQL without a dump header or completion comment (mariadb-dump --compact?): "
                + "stored as raw, so a truncated copy would not be detected. Dump without --compact to have it checked, "
                + "or pass --format raw to store raw streams knowingly")
        }
        progress?(BackupProgress(bytesIn: total, entries: 0))
        return SnapshotBody(entryCount: sections.count, sections: sections, dumpFormat: chosen,
                            binlogPosition: (scanner as? DumpScanner)?.binlogPosition)
    }
}

extension LogicalSnapshotWriter {
    /// Whether a stream with no dump header starts like SQL that a dump tool wrote.
    static func looksLikeSQL(_ head: [UInt8]) -> Bool {
        let text = String(decoding: head.prefix(4096), as: UTF8.self)
        let starts = ["/*!", "/*M!", "CREATE TABLE", "DROP TABLE", "INSERT INTO", "CREATE DATABASE", "USE `", "SET ", "LOCK TABLES"]
        return text.split(separator: "\n").prefix(20).contains { line in starts.contains { line.hasPrefix($0) } }
    }
}

extension ShellCommand {
    /// Waits for a dump command; throws unless it exited 0.
    func waitForSuccess() throws {
        let (status, signal) = wait()
        if signal != 0 { throw BackupError.commandKilled(command: command, signal: signal, stderrTail: tail) }
        if status != 0 { throw BackupError.commandFailed(command: command, status: status, stderrTail: tail) }
    }
}
