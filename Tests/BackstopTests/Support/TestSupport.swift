import Foundation
import Testing
@testable import Backstop

/// A fresh directory under the system temp folder, removed when the value goes away.
final class TemporaryDirectory {
    let path: String

    init(_ label: String = "test") {
        let base = ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp"
        var template = Array("\(base)/backstop-\(label)-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(made != nil, "mkdtemp failed")
        path = String(nulTerminated: template)
    }

    deinit {
        // Make everything removable again (tests chmod files to 000).
        _ = try? Process.run(URL(fileURLWithPath: "/bin/chmod"), arguments: ["-R", "u+rwx", path]).waitUntilExit()
        try? FileManager.default.removeItem(atPath: path)
    }

    func sub(_ name: String) -> String { path + "/" + name }
}

extension String {
    init(nulTerminated buffer: [CChar]) {
        self = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// The result of running a program.
struct ProcessResult {
    var status: Int32
    var stdout: [UInt8]
    var stderr: String
    var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
}

/// Runs a program (found on PATH unless it is a path) to completion, feeding `input` to stdin.
@discardableResult
func runProcess(_ program: String, _ arguments: [String], input: [UInt8]? = nil, inputFile: String? = nil,
                environment: [String: String]? = nil, directory: String? = nil) throws -> ProcessResult {
    let p = Process()
    if program.contains("/") {
        p.executableURL = URL(fileURLWithPath: program)
        p.arguments = arguments
    } else {
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [program] + arguments
    }
    if let environment { p.environment = environment }
    if let directory { p.currentDirectoryURL = URL(fileURLWithPath: directory) }
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    let inPipe = Pipe()
    if let inputFile {
        p.standardInput = FileHandle(forReadingAtPath: inputFile)
    } else {
        p.standardInput = input == nil ? FileHandle.nullDevice : inPipe
    }
    try p.run()
    if let input {
        DispatchQueue.global().async {
            try? inPipe.fileHandleForWriting.write(contentsOf: Data(input))
            try? inPipe.fileHandleForWriting.close()
        }
    }
    let errData = Locked<Data>(Data())
    let errDone = DispatchSemaphore(value: 0)
    DispatchQueue.global().async {
        errData.set(err.fileHandleForReading.readDataToEndOfFile())
        errDone.signal()
    }
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    errDone.wait()
    p.waitUntilExit()
    return ProcessResult(status: p.terminationStatus, stdout: Array(outData), stderr: String(decoding: errData.get(), as: UTF8.self))
}

/// Runs a shell pipeline with /bin/sh -c.
@discardableResult
func shell(_ command: String, directory: String? = nil) throws -> ProcessResult {
    try runProcess("/bin/sh", ["-c", command], directory: directory)
}

final class Locked<T>: @unchecked Sendable {
    private var value: T
    private let lock = NSLock()
    init(_ value: T) { self.value = value }
    func get() -> T { lock.lock(); defer { lock.unlock() }; return value }
    func set(_ v: T) { lock.lock(); value = v; lock.unlock() }
}

/// Deterministic pseudo-random bytes (xorshift), so test data is reproducible.
struct SeededBytes {
    var state: UInt64

    init(seed: UInt64) { state = seed | 1 }

    mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }

    mutating func bytes(_ count: Int) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(count + 8)
        while out.count < count {
            withUnsafeBytes(of: next()) { out.append(contentsOf: $0) }
        }
        return Array(out.prefix(count))
    }

    /// Text-like bytes that compress well.
    mutating func text(_ count: Int) -> [UInt8] {
        let words = ["alpha", "beta", "gamma", "delta", "INSERT", "INTO", "VALUES", "(1,'x')", "\n", "backup", "restore"]
        var out = [UInt8]()
        while out.count < count {
            out.append(contentsOf: Array(words[Int(next() % UInt64(words.count))].utf8))
            out.append(0x20)
        }
        return Array(out.prefix(count))
    }
}

func writeFile(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644) throws {
    try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else {
        throw FileError.write(path: path, errno: errno)
    }
    chmod(path, mode)
}

func readFile(_ path: String) throws -> [UInt8] {
    Array(try Data(contentsOf: URL(fileURLWithPath: path)))
}

func setMTime(_ path: String, _ seconds: Int) {
    var times = [timespec(tv_sec: seconds, tv_nsec: 0), timespec(tv_sec: seconds, tv_nsec: 0)]
    utimensat(AT_FDCWD, path, &times, AT_SYMLINK_NOFOLLOW)
}

/// A repository in a fresh temporary directory.
func makeRepository(_ dir: TemporaryDirectory) throws -> Repository {
    try Repository.create(at: dir.sub("repo"))
}
