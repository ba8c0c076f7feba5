import Foundation

/// A `/bin/sh -c` child started with `posix_spawn`: standard input from /dev/null, standard
/// output to a pipe (read it with `stdout`) or a file, standard error to a file whose tail
/// explains failures. Every other descriptor is closed in the child, so a daemon the command
/// starts (a database server restarted by a hook) never holds Backstop's pipes, catalog or lock
/// open, and waiting for the command never waits for that daemon.
///
/// It runs the commands a backup takes its stream from (`backup --command`, a logical job's
/// `command:`, through `LogicalSnapshotWriter`) and a policy job's `before`/`after` hooks
/// (`PolicyRunner`). It lives in `Dumps/` beside its main user, the logical snapshot writer.
final class ShellCommand {
    let command: String
    let pid: pid_t
    /// The read end of the command's standard output, when captured.
    let stdout: Int32?
    private let stderrPath: String
    private var exit: (status: Int32, signal: Int32)?

    enum Output {
        case pipe
        case sameAsStderr
    }

    init(_ command: String, stdout output: Output, environment: [String: String]? = nil) throws {
        self.command = command
        stderrPath = NSTemporaryDirectory() + "/backstop-cmd-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).err"
        let errFD = open(stderrPath, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard errFD >= 0 else { throw BackupError.commandNotStarted(command: command, reason: "cannot create \(stderrPath): \(String(cString: strerror(errno)))") }
        defer { close(errFD) }
        var fds: [Int32] = [-1, -1]
        if case .pipe = output {
            guard pipe(&fds) == 0, fcntl(fds[0], F_SETFD, FD_CLOEXEC) == 0, fcntl(fds[1], F_SETFD, FD_CLOEXEC) == 0 else {
                unlink(stderrPath)
                throw BackupError.commandNotStarted(command: command, reason: "pipe: \(String(cString: strerror(errno)))")
            }
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, fds[1] >= 0 ? fds[1] : errFD, 1)
        posix_spawn_file_actions_adddup2(&actions, errFD, 2)
        Self.closeFrom3(&actions)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGPIPE)     // the CLI ignores SIGPIPE; a dump writing to a closed pipe should die
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let env = (environment ?? ProcessInfo.processInfo.environment).map { "\($0.key)=\($0.value)" }
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/sh"), strdup("-c"), strdup(command), nil]
        let envp: [UnsafeMutablePointer<CChar>?] = env.map { strdup($0) } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var child: pid_t = 0
        let status = posix_spawn(&child, "/bin/sh", &actions, &attributes, argv, envp)
        if fds[1] >= 0 { close(fds[1]) }
        guard status == 0 else {
            if fds[0] >= 0 { close(fds[0]) }
            unlink(stderrPath)
            throw BackupError.commandNotStarted(command: command, reason: String(cString: strerror(status)))
        }
        pid = child
        stdout = fds[0] >= 0 ? fds[0] : nil
    }

    /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34+) closes every descriptor from 3
    /// up in the child. It is a GNU extension Swift's Glibc module does not import, so it is
    /// looked up at run time; where it is missing, the child inherits only what Backstop opened
    /// without close-on-exec (Backstop opens everything with it).
    private typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32
    private static let closeFrom: CloseFrom? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: CloseFrom.self)
    }()

    private static func closeFrom3(_ actions: inout posix_spawn_file_actions_t) {
        if let closeFrom { _ = closeFrom(&actions, 3) }
    }

    deinit {
        if let stdout { close(stdout) }
        if exit == nil { terminate() }
        unlink(stderrPath)
    }

    /// Everything the command writes to its standard output (`.pipe`), read to its end: for
    /// commands whose answer is short (a query's result), not for streams.
    func readAllOutput() -> [UInt8] {
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while let fd = stdout {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            output += buffer[0..<n]
        }
        return output
    }

    /// Waits for the command: its exit status (or 128 + signal) and the signal, if one ended it.
    @discardableResult
    func wait() -> (status: Int32, signal: Int32) {
        if let exit { return exit }
        var raw: Int32 = 0
        while waitpid(pid, &raw, 0) < 0 && errno == EINTR {}
        let signal = raw & 0x7f
        let result = signal == 0 ? ((raw >> 8) & 0xff, Int32(0)) : (128 + signal, signal)
        exit = result
        return result
    }

    /// Records the raw status of a child already reaped by the caller (`waitpid` with WNOHANG).
    func markExited(_ raw: Int32) {
        let signal = raw & 0x7f
        exit = signal == 0 ? ((raw >> 8) & 0xff, Int32(0)) : (128 + signal, signal)
    }

    /// The last lines the command wrote to standard error (or to its output, for hooks).
    var tail: String {
        guard let data = FileManager.default.contents(atPath: stderrPath) else { return "" }
        return String(decoding: data.suffix(8192), as: UTF8.self).split(separator: "\n").suffix(10).joined(separator: "\n")
    }

    /// Stops a command that is still running and reaps it.
    func terminate() {
        guard exit == nil else { return }
        kill(pid, SIGTERM)
        wait()
    }
}
