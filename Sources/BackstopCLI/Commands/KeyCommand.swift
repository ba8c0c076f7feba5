import ArgumentParser
import Backstop
import Foundation

struct KeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key",
        abstract: "Make and manage the age keys of encrypted repositories.",
        subcommands: [KeyGenerateCommand.self, KeyAddRecipientCommand.self, KeyRemoveRecipientCommand.self])
}

struct KeyGenerateCommand: ReportingCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Write a new X25519 identity file (mode 0600) and print its recipient.",
        discussion: """
        Example: backstop key generate --output /root/backstop-key.txt

        The file is in `age-keygen`'s format (`age -d -i FILE` reads it). Keep it off the hosts
        that only back up: they need the recipient (age1…), printed on stdout, not the identity.

        Exit codes: 0 written; 64 the file exists (never overwritten); 74 it cannot be written.
        """)

    @OptionGroup var outputOptions: OutputOptions

    @Option(name: [.short, .long], help: ArgumentHelp("Where to write the identity file.", valueName: "file"))
    var output: String

    func run(_ out: Output) throws {
        let identity = AgeIdentity.generate()
        try AgeKeyFile.writeNew(identity, to: output)
        let recipient = identity.recipient!.description
        if out.json {
            out.printJSON(KeyGenerateReport(identityFile: output, recipient: recipient))
        } else {
            print(recipient)
        }
    }
}

/// What `add-recipient` and `remove-recipient` share: they re-wrap the keyed-hash key in
/// `backstop.json` under the writer lease.
private func changeRecipients(_ repository: RepositoryOptions, _ lock: LockOptions, _ output: Output, command: String,
                              adding: [AgeRecipient], removing: [String]) throws {
    let repo = try repository.open(output)
    let change = try repo.withWriterLock(command: command, timeout: try lock.seconds(), warn: output.warning) {
        try repo.changeRecipients(adding: adding, removing: removing)
    }
    if output.json {
        output.printJSON(RecipientChangeReport(recipients: change.recipients, added: change.added, removed: change.removed,
                                               framesRewrapped: change.framesRewrapped))
        return
    }
    output.line("recipients of \(repo.location): \(change.recipients.joined(separator: ", "))")
    if let n = change.framesRewrapped {
        output.line("re-wrapped the file keys of \(n) frame objects for these recipients; the frame and entry lists of snapshots taken before stay encrypted to the recipients of their time")
    } else {
        output.line("frame objects were NOT re-wrapped (no identity given): they stay encrypted to the recipients of their time; run again with --identity FILE to re-wrap them")
    }
    if !change.added.isEmpty {
        output.line("\(change.added.joined(separator: ", ")) can read snapshots taken from now on\(change.framesRewrapped == nil ? " (only their new frames, until the frames are re-wrapped)" : ""), not the ones taken before")
    }
    if !change.removed.isEmpty {
        output.line("\(change.removed.joined(separator: ", ")) can no longer unwrap new backups\(change.framesRewrapped == nil ? "" : " or the stored frames"); but it can still decrypt the frame and entry lists of snapshots taken before, and anything it copied before (or file keys it kept): to cut it off entirely, start a new repository with new recipients (copy cannot re-encrypt yet: it refuses repositories with other keys)")
    }
}

struct KeyAddRecipientCommand: ReportingCommand {
    static let configuration = CommandConfiguration(
        commandName: "add-recipient",
        abstract: "Encrypt new backups of an encrypted repository to another recipient too.",
        discussion: """
        Example: backstop key add-recipient age1… --repo /var/backups/backstop

        Re-wraps the keyed-hash key in backstop.json for the new set of recipients (needs the
        writer key file or --identity). Objects already stored are not re-encrypted: the new
        recipient can read only snapshots written from now on.

        Exit codes: 0 changed; 64 a bad recipient, or a passphrase repository; 75 the writer lock
        is held; 77 neither the writer key nor an identity.
        """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var outputOptions: OutputOptions
    @OptionGroup var lock: LockOptions
    @Argument(help: "The recipient to add (age1…).") var recipient: String

    func run(_ output: Output) throws {
        let r = try AgeRecipient(parsing: recipient, source: "recipient")
        try changeRecipients(repository, lock, output, command: "key add-recipient", adding: [r], removing: [])
    }
}

struct KeyRemoveRecipientCommand: ReportingCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove-recipient",
        abstract: "Stop encrypting new backups of an encrypted repository to a recipient.",
        discussion: """
        Example: backstop key remove-recipient age1… --repo /var/backups/backstop

        Re-wraps the keyed-hash key in backstop.json for the remaining recipients. What is
        already stored stays encrypted to the removed recipient too: its identity still
        decrypts every snapshot written before (copy them to a new repository to re-encrypt).

        Exit codes: 0 changed; 64 not a recipient, the last one, or a passphrase repository;
        75 the writer lock is held; 77 neither the writer key nor an identity.
        """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var outputOptions: OutputOptions
    @OptionGroup var lock: LockOptions
    @Argument(help: "The recipient to remove (age1…).") var recipient: String

    func run(_ output: Output) throws {
        try changeRecipients(repository, lock, output, command: "key remove-recipient", adding: [], removing: [recipient])
    }
}

/// `key generate --json`.
struct KeyGenerateReport: JSONReport {
    var identityFile: String
    var recipient: String
}

/// `key add-recipient --json`, `key remove-recipient --json`.
struct RecipientChangeReport: JSONReport {
    var recipients: [String]
    var added: [String]
    var removed: [String]
    /// Frame objects whose file keys were re-wrapped (nil: none, no identity was given).
    var framesRewrapped: Int?
}
