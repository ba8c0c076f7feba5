import Foundation
import Testing

/// Runs the built `backstop` binary, as a user or a cron job would.
enum CLI {
    /// `$BACKSTOP_BIN`, or the `backstop` built beside the test bundle.
    static let binary: String = {
        if let explicit = ProcessInfo.processInfo.environment["BACKSTOP_BIN"] { return explicit }
        let testExecutable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var dir = testExecutable.deletingLastPathComponent()
        // On Linux the test bundle is .build/<triple>/debug/BackstopPackageTests.xctest.
        for _ in 0..<3 {
            let candidate = dir.appendingPathComponent("backstop").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        fatalError("cannot find the backstop binary next to \(testExecutable.path); build it with `swift build` or set BACKSTOP_BIN")
    }()

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs `backstop ARGS…` with `stdin` (a file path) and the environment given.
    @discardableResult
    static func run(_ arguments: [String], stdinFile: String? = nil, stdinBytes: [UInt8]? = nil,
                    environment: [String: String] = [:], prefix: [String] = []) throws -> Result {
        let p = Process()
        if prefix.isEmpty {
            p.executableURL = URL(fileURLWithPath: binary)
            p.arguments = arguments
        } else {
            p.executableURL = URL(fileURLWithPath: prefix[0])
            p.arguments = Array(prefix.dropFirst()) + [binary] + arguments
        }
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "BACKSTOP_REPO")
        env["NO_COLOR"] = "1"
        for (k, v) in environment { env[k] = v }
        p.environment = env
        let out = Pipe(), err = Pipe(), input = Pipe()
        p.standardOutput = out
        p.standardError = err
        if let stdinFile {
            p.standardInput = FileHandle(forReadingAtPath: stdinFile)
        } else if stdinBytes != nil {
            p.standardInput = input
        } else {
            p.standardInput = FileHandle.nullDevice
        }
        try p.run()
        if let stdinBytes {
            DispatchQueue.global().async {
                try? input.fileHandleForWriting.write(contentsOf: Data(stdinBytes))
                try? input.fileHandleForWriting.close()
            }
        }
        let errBox = Box()
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            errBox.data = err.fileHandleForReading.readDataToEndOfFile()
            done.signal()
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        done.wait()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                      stderr: String(decoding: errBox.data, as: UTF8.self))
    }

    final class Box: @unchecked Sendable { var data = Data() }

    /// Starts `backstop ARGS…` in the background, output discarded.
    static func start(_ arguments: [String]) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = arguments
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        return p
    }

    /// Starts a writer in the background and waits (up to 5 s) until it holds `repo`'s lock.
    static func startHoldingLock(_ arguments: [String], repo: String) throws -> Process {
        let p = try start(arguments)
        for _ in 0..<100 where !FileManager.default.fileExists(atPath: repo + "/locks/writer.lock") { usleep(50_000) }
        return p
    }
}

/// A fresh directory per test, removed afterwards.
final class Scratch {
    let path: String

    init() {
        var template = Array("/tmp/backstop-cli-XXXXXX".utf8CString)
        _ = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    deinit {
        _ = try? sh("chmod -R u+rwx '\(path)'")
        try? FileManager.default.removeItem(atPath: path)
    }

    func sub(_ name: String) -> String { path + "/" + name }

    var repo: String { sub("repo") }

    func write(_ name: String, _ text: String, mode: Int = 0o644) throws {
        let p = sub(name)
        try FileManager.default.createDirectory(atPath: (p as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try text.write(toFile: p, atomically: false, encoding: .utf8)
        chmod(p, mode_t(mode))
    }
}

/// Runs a shell command; returns stdout, or throws with stderr.
@discardableResult
func sh(_ command: String) throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/bash")
    p.arguments = ["-c", command]
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    p.standardInput = FileHandle.nullDevice
    try p.run()
    let errBox = CLI.Box()
    let done = DispatchSemaphore(value: 0)
    DispatchQueue.global().async {
        errBox.data = err.fileHandleForReading.readDataToEndOfFile()
        done.signal()
    }
    let o = out.fileHandleForReading.readDataToEndOfFile()
    done.wait()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else {
        throw ShellError(command: command, status: p.terminationStatus, stderr: String(decoding: errBox.data, as: UTF8.self))
    }
    return String(decoding: o, as: UTF8.self)
}

struct ShellError: Error, CustomStringConvertible {
    var command: String
    var status: Int32
    var stderr: String
    var description: String { "`\(command)` exited \(status): \(stderr)" }
}

func json(_ text: String) throws -> Any {
    try JSONSerialization.jsonObject(with: Data(text.utf8))
}

/// The snapshots of `backstop list --json` (`{"schemaVersion": 1, "snapshots": [...]}`).
func listedSnapshots(_ text: String) throws -> [[String: Any]] {
    try #require((try json(text) as? [String: Any])?["snapshots"] as? [[String: Any]], "not a snapshot list: \(text.prefix(300))")
}

/// A minimal mysqldump-format stream: a preamble, two databases, the trailer.
func sampleDump(rows: Int = 3, complete: Bool = true) -> String {
    var s = "-- MariaDB dump 10.19  Distrib 10.11.6-MariaDB\n--\n-- Host: localhost    Database: \n"
    s += "/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;\n\n"
    for db in ["shop", "crm"] {
        s += "--\n-- Current Database: `\(db)`\n--\n\nCREATE DATABASE `\(db)`;\nUSE `\(db)`;\n"
        s += "INSERT INTO t VALUES " + (1...rows).map { "(\($0),'\(db)')" }.joined(separator: ",") + ";\n"
    }
    if complete {
        s += "/*!40101 SET CHARACTER_SET_CLIENT=@OLD_CHARACTER_SET_CLIENT */;\n\n-- Dump completed on 2024-03-24 22:00:00\n"
    }
    return s
}

/// A child process we reap ourselves (posix_spawn + waitpid), so signalling it can never hit
/// another process: until `wait()`, its pid stays ours even after it exits (as a zombie).
/// Foundation's `Process` reaps in the background, and with pid_max at 32768 a test run that
/// spawns thousands of processes can see a reaped pid reused within seconds.
final class OwnedChild {
    let pid: pid_t
    private var status: Int32?

    init(_ path: String, _ arguments: [String]) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var child: pid_t = 0
        let result = posix_spawn(&child, path, &actions, nil, argv, environ)
        guard result == 0 else { throw ShellError(command: path, status: result, stderr: "posix_spawn failed") }
        pid = child
    }

    func signal(_ signal: Int32) {
        if status == nil { kill(pid, signal) }
    }

    /// Waits; true when the child exited by itself (not by a signal).
    @discardableResult
    func wait() -> Bool {
        if status == nil {
            var raw: Int32 = 0
            while waitpid(pid, &raw, 0) < 0 && errno == EINTR {}
            status = raw
        }
        return status! & 0x7f == 0
    }
}

/// Format 2 on disk: a snapshot's payload is the frame objects its `frames.tsv` lists
/// (`frames/<first two hex digits>/<ID>`), concatenated in that order.
struct StoredFrame {
    var index: Int
    var id: String
    var uncompressedSize: Int64
    var compressedSize: Int64
    /// Where the frame starts in the decoded stream and in the concatenated frame objects.
    var uncompressedOffset: Int64
    var compressedOffset: Int64
    /// `frames/ab/<ID>`, as messages name it.
    var key: String { "frames/\(id.prefix(2))/\(id)" }
}

/// The frames of snapshot `id`, from its `frames.tsv`.
func storedFrames(_ repo: String, _ id: String) throws -> [StoredFrame] {
    let text = try String(contentsOfFile: repo + "/snapshots/\(id)/frames.tsv", encoding: .utf8)
    var frames: [StoredFrame] = []
    var u: Int64 = 0, c: Int64 = 0
    for line in text.split(separator: "\n") {
        let f = line.split(separator: "\t")
        guard f.count == 3, let us = Int64(f[1]), let cs = Int64(f[2]) else { throw ShellError(command: "frames.tsv", status: 1, stderr: "bad line \(line)") }
        frames.append(StoredFrame(index: frames.count, id: String(f[0]), uncompressedSize: us, compressedSize: cs, uncompressedOffset: u, compressedOffset: c))
        u += us
        c += cs
    }
    return frames
}

/// The local path of a frame's object.
func framePath(_ repo: String, _ frame: StoredFrame) -> String { repo + "/" + frame.key }

/// The README's standard-tool recipe, run in the snapshot's folder: writes the payload's zstd
/// stream (the frame objects concatenated in `frames.tsv` order) to standard output.
func catFramesCommand(_ repo: String, _ id: String) -> String {
    #"cd '\#(repo)/snapshots/\#(id)' && cut -f1 frames.tsv | sed 's|^\(..\)|../../frames/\1/\1|' | xargs cat"#
}

/// The first frame of snapshot `id` that none of `others` uses (so damage to it is damage to
/// `id` alone).
func ownFrame(_ repo: String, _ id: String, notIn others: [String]) throws -> StoredFrame {
    var shared = Set<String>()
    for o in others { shared.formUnion(try storedFrames(repo, o).map(\.id)) }
    return try #require(try storedFrames(repo, id).first { !shared.contains($0.id) }, "snapshot \(id) has a frame of its own")
}

/// XORs the byte at `offset` of a frame's object with `mask`, in place.
func flipFrameByte(_ repo: String, _ frame: StoredFrame, at offset: Int, mask: UInt8 = 0x40) throws {
    let path = framePath(repo, frame)
    chmod(path, 0o644)
    var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    bytes[offset] ^= mask
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

/// A `backstop` child we spawn and reap ourselves, with its exit status (or killing signal):
/// for tests that signal a command while it runs.
final class SpawnedCLI {
    let pid: pid_t
    private var raw: Int32?

    /// `stdinPath` is opened read-only as standard input (default /dev/null); standard output is
    /// discarded, standard error goes to the file `log`. Started as a shell starts it: no signal
    /// blocked (the test runner's threads block some).
    init(_ arguments: [String], stdinPath: String = "/dev/null", log: String, environment: [String: String] = [:]) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdinPath, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, log, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let argv: [UnsafeMutablePointer<CChar>?] = ([CLI.binary] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        let envp: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { envp.forEach { free($0) } }
        var child: pid_t = 0
        let result = posix_spawn(&child, CLI.binary, &actions, &attributes, argv, envp)
        guard result == 0 else { throw ShellError(command: CLI.binary, status: result, stderr: "posix_spawn failed") }
        pid = child
    }

    func signal(_ signal: Int32) {
        if raw == nil { kill(pid, signal) }
    }

    /// The exit code, or nil when the child died by a signal.
    func exitCode() -> Int32? {
        if raw == nil {
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            raw = status
        }
        return raw! & 0x7f == 0 ? (raw! >> 8) & 0xff : nil
    }
}
