import ArgumentParser
import Backstop
import Foundation

struct MigrateCommand: ReportingCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Convert a format-1 repository in place to format 2 (content-addressed frames).",
        discussion: """
        Example: backstop migrate --repo /var/backups/backstop

        Each snapshot's data.tar.zst or data.zst is split into its frames, which are stored once
        under frames/ as they are (no recompression: every frame is decoded only to check it and
        name it); the snapshot keeps its ID, times, source, sections and entry list, and its old
        payload file is removed. backstop.json says format 2 last. Runs under the writer lock, and
        is safe to interrupt: run it again and it finishes. Other commands refuse a format-1
        repository until it is migrated. A repository that is format 2 already is left as it is.
        Needs room for the largest snapshot's payload (its frames are stored before its old file
        is removed).

        Exit codes: 0 migrated (or already format 2); 1 not a repository; 65 a snapshot's payload
        does not match its manifest (that snapshot is left as it is, the repository stays
        format 1); 74 I/O error; 75 lock held; 130 interrupted (run it again).
        """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var outputOptions: OutputOptions
    @OptionGroup var lock: LockOptions

    func run(_ output: Output) throws {
        let path = try repository.path()
        let report = try Repository.migrate(storage: repository.storage(), lockTimeout: try lock.seconds(), warn: output.warning) { s in
            guard !output.json else { return }
            if s.alreadyConverted {
                output.line("\(s.id)  \(s.kind.rawValue)  \(s.source): already converted by an earlier run; \(Output.count(s.frames, "frame"))")
            } else {
                output.line("\(s.id)  \(s.kind.rawValue)  \(s.source): \(Output.count(s.frames, "frame")), \(s.framesNew) new (\(Output.bytes(s.bytesNew))); \(Output.bytes(s.payloadBytes)) payload file removed")
            }
        }
        if output.json {
            output.printJSON(report)
            return
        }
        if report.alreadyCurrent {
            output.line("\(path) is already a format-\(Manifest.currentFormat) repository; nothing to migrate, nothing was changed")
            return
        }
        let count = report.snapshots.count
        output.line("migrated \(Output.count(count, "snapshot")) to format \(Manifest.currentFormat): \(Output.count(report.frames, "frame")), "
            + "\(report.framesNew) stored (\(Output.bytes(report.bytesNew))) in \(String(format: "%.1f", report.duration)) s")
    }
}
