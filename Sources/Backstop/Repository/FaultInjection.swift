import Foundation

/// Crash points for tests: `BACKSTOP_FAULT=NAME` makes the process exit abruptly (as SIGKILL
/// would) when it reaches the point of that name. Unset in normal use.
enum FaultInjection {
    static let active = ProcessInfo.processInfo.environment["BACKSTOP_FAULT"]

    static func point(_ name: String) {
        if active == name { _exit(137) }
    }
}

extension FaultInjection {
    /// `BACKSTOP_FAULT=signal-before-commit`: a committing step sends SIGTERM to its own process
    /// and lets the grace period pass before it renames (the watcher's cleanup starts meanwhile).
    static func signalBeforeCommit() {
        guard active == "signal-before-commit" else { return }
        kill(getpid(), SIGTERM)
        usleep(useconds_t((Interruption.gracePeriod + 0.5) * 1_000_000))
    }

    /// With `signal-before-commit`, the watcher's cleanup starts one second late, so the
    /// committing step reaches its rename while the cleanup is under way.
    static func slowCleanup() {
        guard active == "signal-before-commit" else { return }
        sleep(1)
    }
}
