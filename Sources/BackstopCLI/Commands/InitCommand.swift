import ArgumentParser
import Backstop
import Foundation

struct InitCommand: ReportingCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create a repository.",
        discussion: """
        Examples:
          backstop init --repo /var/backups/backstop
          backstop init --repo s3://bucket/backstop --s3-endpoint http://10.0.0.5:9000
          backstop init --repo /var/backups/backstop --encrypt --recipient age1…

        On S3 the bucket must exist; init writes backstop.json under the prefix.

        A directory that is not empty (and not a repository) is refused unless --force.

        With --encrypt, frames, frame lists and entry lists are stored as age files encrypted to
        the recipients (--recipient, --recipients-file) or to a passphrase (--passphrase, read
        from the terminal or $BACKSTOP_PASSPHRASE_FILE). A writer key file (mode 0600) is written
        to --writer-key, else $BACKSTOP_WRITER_KEY, else
        $XDG_CONFIG_HOME/backstop/writer-keys/<id>.json: backups need it (or an identity);
        restores need an identity (--identity or $BACKSTOP_IDENTITY).

        Exit codes: 0 created; 1 a repository already exists there, or the directory is not
        empty (without --force); 64 a bad recipient or flag; 74 the directory cannot be written;
        69 the S3 server cannot be reached or the bucket does not exist; 77 S3 credentials refused.
        """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var outputOptions: OutputOptions

    @Option(help: "zstd compression level for new snapshots (1-19).")
    var compressionLevel: Int32 = 3

    @Flag(help: "Create the repository in a directory that is not empty (its files are left as they are).")
    var force = false

    @Flag(help: "Encrypt the repository (age format) to --recipient/--recipients-file or --passphrase.")
    var encrypt = false

    @Option(name: .customLong("recipient"), help: ArgumentHelp("An age X25519 recipient (age1…); repeatable.", valueName: "age1…"))
    var recipients: [String] = []

    @Option(name: .customLong("recipients-file"), help: ArgumentHelp("A file of recipients, one per line (# comments); repeatable.", valueName: "file"))
    var recipientsFiles: [String] = []

    @Flag(help: "Encrypt to a passphrase (scrypt) instead of recipients.")
    var passphrase = false

    @Option(help: ArgumentHelp("Where to write the writer key file (default: $BACKSTOP_WRITER_KEY, else under $XDG_CONFIG_HOME/backstop/writer-keys/).", valueName: "file"))
    var writerKey: String?

    func validate() throws {
        guard (1...19).contains(compressionLevel) else {
            throw ValidationError("--compression-level must be 1 to 19 (3 is the default)")
        }
        let keyed = !recipients.isEmpty || !recipientsFiles.isEmpty
        if encrypt && !keyed && !passphrase {
            throw ValidationError("--encrypt needs --recipient age1… (or --recipients-file FILE), or --passphrase; make a key with `backstop key generate --output FILE`")
        }
        if !encrypt && (keyed || passphrase || writerKey != nil) {
            throw ValidationError("--recipient, --recipients-file, --passphrase and --writer-key apply only with --encrypt")
        }
        if passphrase && keyed {
            throw ValidationError("--passphrase cannot be combined with --recipient or --recipients-file (the age format allows a passphrase only alone)")
        }
    }

    func run(_ output: Output) throws {
        var given: [AgeRecipient] = []
        if encrypt {
            given = try recipients.map { try AgeRecipient(parsing: $0, source: "--recipient") }
            for file in recipientsFiles { given += try AgeKeyFile.recipients(atPath: file) }
            if passphrase { given = [.scrypt(passphrase: try readPassphrase(), workFactor: 18)] }
        }
        let env = ProcessInfo.processInfo.environment["BACKSTOP_WRITER_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        let repo = try Repository.create(location: repository.path(), repository.settings(), compressionLevel: compressionLevel, force: force,
                                         encryptTo: given, writerKeyPath: writerKey ?? env)
        if output.json {
            output.printJSON(repo.config)
        } else {
            output.line("created repository \(repo.location) (id \(repo.config.id))")
            if let encryption = repo.config.encryption {
                output.line("encrypted to \(encryption.isPassphrase ? "a passphrase" : encryption.recipients.joined(separator: ", "))")
                output.line("writer key: \(writerKey ?? env ?? WriterKey.defaultPath(repositoryID: repo.config.id)) (backups need it or an identity; keep it mode 0600)")
            }
        }
    }

    /// The passphrase from `$BACKSTOP_PASSPHRASE_FILE`, else typed twice on the terminal.
    private func readPassphrase() throws -> [UInt8] {
        if let file = ProcessInfo.processInfo.environment["BACKSTOP_PASSPHRASE_FILE"], !file.isEmpty {
            return try RepositoryOptions.passphrase(fromFile: file)
        }
        guard isatty(STDIN_FILENO) == 1, let first = getpass("Passphrase: ").map({ String(cString: $0) }), !first.isEmpty else {
            throw ValidationError("--passphrase needs a terminal to read it from, or BACKSTOP_PASSPHRASE_FILE naming a file that holds it")
        }
        guard let again = getpass("Passphrase again: ").map({ String(cString: $0) }), again == first else {
            throw ValidationError("the passphrases typed differ; nothing was created")
        }
        return Array(first.utf8)
    }
}
