import ArgumentParser
import Backstop

struct InitCommand: ReportingCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create a repository.",
        discussion: """
        Example: backstop init --repo /var/backups/backstop

        A directory that is not empty (and not a repository) is refused unless --force.

        Exit codes: 0 created; 1 a repository already exists there, or the directory is not
        empty (without --force); 74 the directory cannot be written.
        """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var outputOptions: OutputOptions

    @Option(help: "zstd compression level for new snapshots (1-19).")
    var compressionLevel: Int32 = 3

    @Flag(help: "Create the repository in a directory that is not empty (its files are left as they are).")
    var force = false

    func validate() throws {
        guard (1...19).contains(compressionLevel) else {
            throw ValidationError("--compression-level must be 1 to 19 (3 is the default)")
        }
    }

    func run(_ output: Output) throws {
        let repo = try Repository.create(at: repository.path(), compressionLevel: compressionLevel, force: force)
        if output.json {
            output.printJSON(repo.config)
        } else {
            output.line("created repository \(repo.location) (id \(repo.config.id))")
        }
    }
}
