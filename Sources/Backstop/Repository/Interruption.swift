import Foundation

/// What `Interruption` throws once SIGINT or SIGTERM arrived.
public struct Interrupted: Error, CustomStringConvertible, ExitStatusProviding {
    public var signal: Int32

    public var description: String {
        "interrupted by \(Interruption.name(of: signal)); what this command had started was cleaned up "
            + "(staging folders, tmp/ files, the writer lock) and nothing stored before was changed"
    }

    public var exitStatus: ExitStatus { .interrupted }
}

/// SIGINT and SIGTERM handling for the whole process: stop, clean up, exit 130.
///
/// `install()` (the CLI calls it first thing) replaces the default handlers with one that only
/// writes the signal number to a pipe (async-signal-safe); a watcher thread reads it and sets a
/// flag that the pipeline's I/O loops check (`check()`, in `FileByteSource.read` and
/// `FileSink`'s writes): the command throws `Interrupted` and unwinds through its own error paths,
/// which remove staging folders and `tmp/` files and release the writer lock. A thread blocked in
/// I/O never reaches a check (a backup reading a quiet `--stdin`), so after `gracePeriod` the
/// watcher runs the registered cleanup actions itself and ends the process with 130; so does a
/// second signal. Handlers installed by `sigaction` reset to the default in child processes, so
/// dump commands and hooks still die by Ctrl-C as usual.
///
/// Cleanup actions (`register`) are what must not be left behind if the process ends while
/// they are registered; each runs at most once, newest first, under the registry's lock. The step
/// that makes a cleanup unnecessary (the rename that commits a snapshot or a restore) runs in
/// `critical(unregistering:)`, under the same lock: the watcher's cleanup either ran entirely
/// before it (then the step does not run and `Interrupted` is thrown) or does not run at all.
public enum Interruption {
    /// How long the watcher waits for the interrupted command to unwind by itself.
    public static let gracePeriod: TimeInterval = 2

    private static let state = State()

    /// Throws `Interrupted` once a signal arrived.
    public static func check() throws {
        if let signal = state.signal { throw Interrupted(signal: signal) }
    }

    /// The error to report for `error` when the process was interrupted meanwhile (whatever the
    /// error says, it is a consequence of the interruption), else `error` itself.
    public static func reported(_ error: Error) -> Error {
        if let signal = state.signal { return Interrupted(signal: signal) }
        return error
    }

    /// Registers `action` to run if the process is ended by a signal while it is registered.
    /// Returns a token for `unregister` or `critical(unregistering:)`. The action must not wait
    /// for the thread that registered it (it runs under the registry's lock).
    @discardableResult
    public static func register(_ action: @escaping @Sendable () -> Void) -> Int {
        state.register(action)
    }

    public static func unregister(_ token: Int) {
        state.unregister(token)
    }

    /// Runs `step` (a rename that commits; nothing that blocks) and then unregisters `token`, as
    /// one step for the signal watcher: if a signal arrived before, `step` does not run, the
    /// cleanup of `token` runs at once and `Interrupted` is thrown; a cleanup that starts meanwhile
    /// waits until it is done. When `step` throws, the token stays registered.
    public static func critical<T>(unregistering token: Int? = nil, _ step: () throws -> T) throws -> T {
        try state.critical(unregistering: token, step)
    }

    /// Installs the SIGINT and SIGTERM handlers and starts the watcher. Idempotent.
    public static func install() {
        state.install()
    }

    static func name(of signal: Int32) -> String {
        switch signal {
        case SIGINT: return "SIGINT"
        case SIGTERM: return "SIGTERM"
        default: return "signal \(signal)"
        }
    }

    fileprivate final class State: @unchecked Sendable {
        // Recursive: a cleanup or a critical step may ask `signal` on the thread that holds it.
        private let lock = NSRecursiveLock()
        private var received: Int32?
        private var actions: [(Int, @Sendable () -> Void)] = []
        private var nextToken = 0
        private var installed = false

        var signal: Int32? {
            lock.lock()
            defer { lock.unlock() }
            return received
        }

        func register(_ action: @escaping @Sendable () -> Void) -> Int {
            lock.lock()
            defer { lock.unlock() }
            nextToken += 1
            actions.append((nextToken, action))
            return nextToken
        }

        func unregister(_ token: Int) {
            lock.lock()
            actions.removeAll { $0.0 == token }
            lock.unlock()
        }

        func critical<T>(unregistering token: Int?, _ step: () throws -> T) throws -> T {
            FaultInjection.signalBeforeCommit()
            lock.lock()
            defer { lock.unlock() }
            if let received {
                // The step will not happen: what it would have made unnecessary is cleaned now.
                if let token, let i = actions.firstIndex(where: { $0.0 == token }) {
                    let action = actions.remove(at: i).1
                    action()
                }
                throw Interrupted(signal: received)
            }
            let result = try step()
            if let token { actions.removeAll { $0.0 == token } }
            return result
        }

        func install() {
            lock.lock()
            defer { lock.unlock() }
            guard !installed else { return }
            installed = true
            // A parent may have started us with these blocked (threads of a test runner, some
            // supervisors): unblock them, or the handler would never run.
            var unblock = sigset_t()
            sigemptyset(&unblock)
            sigaddset(&unblock, SIGINT)
            sigaddset(&unblock, SIGTERM)
            pthread_sigmask(SIG_UNBLOCK, &unblock, nil)
            var fds: [Int32] = [0, 0]
            guard pipe(&fds) == 0 else { return }
            _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
            _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
            // A flood of signals fills the pipe: the handler must then drop the byte, not block
            // (the watcher needs only one to act).
            _ = fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) | O_NONBLOCK)
            interruptionPipeWriteEnd = fds[1]
            let readEnd = fds[0]
            let watcher = Thread { [self] in watch(readEnd) }
            watcher.name = "backstop-signals"
            watcher.start()
            for sig in [SIGINT, SIGTERM] {
                var action = sigaction()
                action.__sigaction_handler.sa_handler = { sig in
                    // Async-signal-safe only: write(2), and errno saved for the interrupted code.
                    let savedErrno = errno
                    var byte = UInt8(truncatingIfNeeded: sig)
                    _ = Glibc.write(interruptionPipeWriteEnd, &byte, 1)
                    errno = savedErrno
                }
                sigemptyset(&action.sa_mask)
                action.sa_flags = SA_RESTART
                sigaction(sig, &action, nil)
            }
        }

        private func watch(_ fd: Int32) {
            var signals = 0
            var byte: UInt8 = 0
            while true {
                let n = Glibc.read(fd, &byte, 1)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return }
                signals += 1
                lock.lock()
                if received == nil { received = Int32(byte) }
                lock.unlock()
                if signals == 1 {
                    // Give the command its chance to unwind through its own error paths; it
                    // exits 130 itself. A second signal or the grace period ends it here.
                    DispatchQueue.global().asyncAfter(deadline: .now() + gracePeriod) { [self] in terminate() }
                } else {
                    terminate()
                }
            }
        }

        /// Runs the registered cleanups, newest first, and ends the process with 130. Holds the
        /// lock to the end, so no critical step runs during or after the cleanups.
        private func terminate() {
            lock.lock()
            FaultInjection.slowCleanup()
            let pending = actions.reversed().map(\.1)
            actions.removeAll()
            let sig = received ?? SIGTERM
            for action in pending { action() }
            let message = Array("backstop: error: \(Interrupted(signal: sig))\n".utf8)
            _ = message.withUnsafeBytes { Glibc.write(2, $0.baseAddress, $0.count) }
            _exit(ExitStatus.interrupted.rawValue)
        }
    }
}

/// The pipe the signal handler writes to; set before the handlers are installed.
nonisolated(unsafe) private var interruptionPipeWriteEnd: Int32 = -1
