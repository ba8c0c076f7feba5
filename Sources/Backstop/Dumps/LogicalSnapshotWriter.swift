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
}

/// Takes logical snapshots: reads a stream, splits it into sections, hashes and compresses it.
///
/// Nothing is committed unless the stream ended cleanly: the command exited 0 and a dump carries
/// its completion marker.
public struct LogicalSnapshotWriter {
    public var input: LogicalInput
    public var format: DumpFormatChoice
    public var options: BackupOptions
    public var progress: ((BackupProgress) -> Void)?

    public init(input: LogicalInput, format: DumpFormatChoice = .auto, options: BackupOptions,
                progress: ((BackupProgress) -> Void)? = nil) {
        self.input = input
        self.format = format
        self.options = options
        self.progress = progress
    }

    /// Writes and commits the snapshot. The caller holds the repository's writer lock.
    public func write(to repository: Repository) throws -> Manifest {
        switch input {
        case let .fileDescriptor(fd):
            return try repository.writeSnapshot(kind: .logical, options: options) { payload, _ in
                try copy(from: fd, description: "standard input", to: payload)
            }
        case let .command(command):
            let child = try ChildProcess(command: command)
            do {
                return try repository.writeSnapshot(kind: .logical, options: options) { payload, _ in
                    let body: SnapshotBody
                    do {
                        body = try copy(from: child.stdout, description: "the output of `\(command)`", to: payload)
                    } catch BackupError.incompleteDump(let format, let marker) {
                        // The stream ended: a failing command explains the truncation better.
                        try child.waitForSuccess()
                        throw BackupError.incompleteDump(format: format, marker: marker)
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

    private func copy(from fd: Int32, description: String, to payload: ByteSink) throws -> SnapshotBody {
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
        case .raw: chosen = .raw
        }
        let scanner = chosen == .raw ? nil : DumpScanner(format: chosen, sink: payload)
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
        let sections = try scanner?.finish() ?? []
        progress?(BackupProgress(bytesIn: total, entries: 0))
        return SnapshotBody(entryCount: sections.count, sections: sections, dumpFormat: chosen)
    }
}

/// A `/bin/sh -c` child whose stdout we read and whose stderr tail we keep for error messages.
final class ChildProcess: @unchecked Sendable {
    let command: String
    private let process = Process()
    private let stdoutPipe = Pipe()
    private let stderrPipe = Pipe()
    private let tailLock = NSLock()
    private var stderrTail: [UInt8] = []
    private let stderrDone = DispatchSemaphore(value: 0)

    var stdout: Int32 { stdoutPipe.fileHandleForReading.fileDescriptor }

    init(command: String) throws {
        self.command = command
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        process.standardOutput = stdoutPipe
        process.standardError = stderrPipe
        process.standardInput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw BackupError.commandNotStarted(command: command, reason: String(describing: error))
        }
        let fd = stderrPipe.fileHandleForReading.fileDescriptor
        Thread.detachNewThread { [self] in
            var chunk = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                tailLock.lock()
                stderrTail.append(contentsOf: chunk[0..<n])
                if stderrTail.count > 8192 { stderrTail.removeFirst(stderrTail.count - 8192) }
                tailLock.unlock()
            }
            stderrDone.signal()
        }
    }

    /// The last lines the command wrote to stderr.
    var tail: String {
        tailLock.lock()
        defer { tailLock.unlock() }
        let lines = String(decoding: stderrTail, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        return lines.suffix(10).joined(separator: "\n")
    }

    /// Waits for the command; throws unless it exited 0.
    func waitForSuccess() throws {
        process.waitUntilExit()
        _ = stderrDone.wait(timeout: .now() + 5)
        if process.terminationReason == .uncaughtSignal {
            throw BackupError.commandKilled(command: command, signal: process.terminationStatus, stderrTail: tail)
        }
        if process.terminationStatus != 0 {
            throw BackupError.commandFailed(command: command, status: process.terminationStatus, stderrTail: tail)
        }
    }

    func terminate() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
    }
}
