import ArgumentParser
import Backstop
import Foundation

/// `--repo`, shared by every command, and the one way commands find and open their repository.
struct RepositoryOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Repository path, or s3://BUCKET/PREFIX (default: $BACKSTOP_REPO).", valueName: "path"), completion: .directory)
    var repo: String?

    @Option(name: .customLong("s3-endpoint"), help: ArgumentHelp("S3 endpoint URL, e.g. http://127.0.0.1:9000 (default: $AWS_ENDPOINT_URL, else AWS S3 in $AWS_REGION).", valueName: "url"))
    var s3Endpoint: String?

    @Option(name: .customLong("s3-addressing"), help: ArgumentHelp("S3 URL style: path (default with --s3-endpoint) or virtual (BUCKET.host; default on AWS).", valueName: "style"))
    var s3Addressing: String?

    @Option(name: .customLong("cache-dir"), help: ArgumentHelp("Where to keep the catalogs of S3 repositories (default: $XDG_CACHE_HOME/backstop, else ~/.cache/backstop).", valueName: "dir"))
    var cacheDir: String?

    /// What `--s3-endpoint`, `--s3-addressing` and `--cache-dir` add to an s3:// repository.
    func settings() throws -> RepositoryAddress.Settings {
        var addressing: S3Configuration.Addressing?
        if let s3Addressing {
            guard let a = S3Configuration.Addressing(rawValue: s3Addressing) else {
                throw ValidationError("--s3-addressing \(s3Addressing) is not a URL style: use path or virtual")
            }
            addressing = a
        }
        return RepositoryAddress.Settings(endpoint: s3Endpoint, addressing: addressing, cacheDirectory: cacheDir)
    }

    @Option(name: .long, help: ArgumentHelp("An encrypted repository's identity file, for restore, full verify, diff and export (default: $BACKSTOP_IDENTITY).", valueName: "file"))
    var identity: String?

    /// The keys for an encrypted repository: `--identity` or `$BACKSTOP_IDENTITY`, and the
    /// writer key file of `$BACKSTOP_WRITER_KEY` (else its default path).
    func keys() throws -> RepositoryKeys {
        try Self.keys(identity: identity)
    }

    static func keys(identity: String? = nil) throws -> RepositoryKeys {
        let env = ProcessInfo.processInfo.environment
        var keys = RepositoryKeys()
        if let path = identity ?? env["BACKSTOP_IDENTITY"].flatMap({ $0.isEmpty ? nil : $0 }) {
            keys.identities = try AgeKeyFile.identities(atPath: path)
        }
        if let passphraseFile = env["BACKSTOP_PASSPHRASE_FILE"], !passphraseFile.isEmpty, identity == nil {
            keys.identities.append(.scrypt(passphrase: try Self.passphrase(fromFile: passphraseFile)))
        }
        if let writer = env["BACKSTOP_WRITER_KEY"], !writer.isEmpty { keys.writerKeyPath = writer }
        return keys
    }

    /// The first line of `path`, without its newline.
    static func passphrase(fromFile path: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ValidationError("cannot read the passphrase file \(path) (BACKSTOP_PASSPHRASE_FILE)")
        }
        let line = Array(data).split(separator: 0x0A, maxSplits: 1, omittingEmptySubsequences: false).first.map(Array.init) ?? []
        guard !line.isEmpty else { throw ValidationError("the passphrase file \(path) (BACKSTOP_PASSPHRASE_FILE) is empty") }
        return line
    }

    /// `--repo`, else `$BACKSTOP_REPO`, with the words that name it in messages; nil if neither.
    private func given() -> (path: String, fromEnvironment: Bool)? {
        if let repo, !repo.isEmpty { return (repo, false) }
        if let env = ProcessInfo.processInfo.environment["BACKSTOP_REPO"], !env.isEmpty { return (env, true) }
        return nil
    }

    /// The repository's path: `--repo`, else `$BACKSTOP_REPO`.
    func path() throws -> String {
        guard let given = given() else { throw ValidationError("no repository given: pass --repo PATH or set BACKSTOP_REPO") }
        return given.path
    }

    /// The repository of a command that applies `policy` (`run`, `prune`): the policy's own.
    /// `--repo` or `$BACKSTOP_REPO` may name it too; naming another is refused: jobs and retention
    /// rules written for one repository would write to or remove from another.
    func path(policy p: Policy, command: String) throws -> String {
        guard let (given, fromEnvironment) = given() else { return p.repository }
        func canonical(_ path: String) -> String {
            if RepositoryAddress.isRemote(path) { return path.hasSuffix("/") ? String(path.dropLast()) : path }
            return URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path
        }
        if canonical(given) == canonical(p.repository) { return p.repository }
        let named = fromEnvironment ? "$BACKSTOP_REPO (\(given))" : "--repo \(given)"
        let fix = fromEnvironment ? "unset BACKSTOP_REPO or set it to \(p.repository)" : "drop --repo or give \(p.repository)"
        throw ValidationError("""
            \(named) is not the repository of the policy \(p.file) (\(p.repository)); \(command) applies that policy to \
            its own repository only, and nothing was changed: \(fix), or \(command) with a policy for \(given)
            """)
    }

    /// Opens the repository (`--repo`, `$BACKSTOP_REPO`, or with `policy` the policy's) as
    /// every command does: its catalog reconciled, and what the reconcile could not do said on
    /// stderr.
    func open(_ output: Output, policy: Policy? = nil, command: String = "") throws -> Repository {
        let path = try policy.map { try self.path(policy: $0, command: command) } ?? self.path()
        return try Self.open(path, output, settings(), keys: keys())
    }

    /// The backend of the repository (`--repo`, `$BACKSTOP_REPO`), not opened: for commands that
    /// must not read the catalog first (`catalog rebuild`, `migrate`).
    func storage() throws -> StorageBackend {
        try Repository.storage(for: path(), settings())
    }

    /// Opens the repository named `location` (as given to `--repo`, a policy's `repository:`, or
    /// `copy --from/--to`), its catalog reconciled, and what the reconcile could not do said on
    /// stderr. The one place where a repository's name becomes a `Repository`.
    /// `settings`: the flags of an s3:// repository (by default none: the environment's);
    /// `keys`: an encrypted repository's (by default the environment's).
    static func open(_ location: String, _ output: Output, _ settings: RepositoryAddress.Settings = .init(),
                     keys: RepositoryKeys? = nil) throws -> Repository {
        let repo = try Repository.open(location: location, settings, keys: keys ?? Self.keys())
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

    @Flag(help: "Show progress on stderr even when it is not a terminal; with --json, as JSON status lines.")
    var progress = false
}

/// `--lock-timeout`, for commands that write.
struct LockOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("How long to wait for another writer, e.g. 30s, 10m, 1h30m.", valueName: "duration"))
    var lockTimeout: String = "0s"

    func seconds() throws -> TimeInterval {
        guard let d = DurationText.seconds(lockTimeout) else {
            throw ValidationError("--lock-timeout \(lockTimeout) is not a duration: use 90s, 10m, 1h30m, 36h or 30d")
        }
        return d
    }
}

