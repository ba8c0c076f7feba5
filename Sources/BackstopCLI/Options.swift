import ArgumentParser
import Backstop
import Foundation

/// `--repo`, shared by every command.
struct RepositoryOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Repository path (default: $BACKSTOP_REPO).", valueName: "path"))
    var repo: String?

    func path() throws -> String {
        if let repo, !repo.isEmpty { return repo }
        if let env = ProcessInfo.processInfo.environment["BACKSTOP_REPO"], !env.isEmpty { return env }
        throw ValidationError("no repository given: pass --repo PATH or set BACKSTOP_REPO")
    }

    func open(_ output: Output) throws -> Repository {
        try Self.open(at: path(), output)
    }

    /// Opens the repository at `path` as every command does: its catalog reconciled, and what
    /// the reconcile could not do said on stderr.
    static func open(at path: String, _ output: Output) throws -> Repository {
        let repo = try Repository.open(at: path)
        for u in repo.reconciled.unreadable {
            output.warning("snapshots/\(u.id) is left out of the catalog (list, select, restore do not see it): \(u.reason)")
        }
        if let reason = repo.reconciled.notSaved {
            output.warning("the catalog could not be brought up to date with snapshots/ (\(reason)); it may miss the newest snapshots")
        }
        return repo
    }
}

/// `--json` and `--quiet`, for commands that report.
struct OutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Print the report as JSON on stdout (failures too).")
    var json = false

    @Flag(name: [.short, .long], help: "Print nothing but errors and warnings.")
    var quiet = false
}

/// `--lock-timeout`, for commands that write.
struct LockOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("How long to wait for another writer, e.g. 30s, 10m (default 0s).", valueName: "duration"))
    var lockTimeout: String = "0s"

    func seconds() throws -> TimeInterval {
        guard let d = DurationText.seconds(lockTimeout) else {
            throw ValidationError("--lock-timeout \(lockTimeout) is not a duration: use 90s, 10m, 36h or 30d")
        }
        return d
    }
}

