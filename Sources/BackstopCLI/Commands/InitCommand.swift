import ArgumentParser
import Backstop

struct InitCommand: ReportingCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create a repository.",
        discussion: """
        Example: backstop init --repo /var/backups/backstop
                 backstop init --repo s3://my-bucket/backstop --s3-endpoint http://127.0.0.1:9000

        On S3 the bucket must exist; init writes backstop.json under the prefix.

        A directory that is not empty (and not a repository) is refused unless --force.

        Exit codes: 0 created; 1 a repository already exists there, or the directory is not
        empty (without --force); 74 the directory cannot be written; 69 the S3 server cannot be
        reached or the bucket does not exist; 77 S3 credentials refused.
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
        let repo = try Repository.create(location: repository.path(), repository.settings(), compressionLevel: compressionLevel, force: force)
        if output.json {
            output.printJSON(repo.config)
        } else {
            output.line("created repository \(repo.location) (id \(repo.config.id))")
        }
    }
}
