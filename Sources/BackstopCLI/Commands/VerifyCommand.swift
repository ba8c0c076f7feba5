import ArgumentParser
import Backstop
import Foundation

struct VerifyCommand: ReportingCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Verify snapshots: stored digests (--quick) or everything, decoded (default).",
        discussion: """
        Examples:
          backstop verify --all --junit verify.xml  # CI: fail on a corrupt snapshot
          backstop verify --sample 3 --quick        # cron: the 3 verified longest ago
          backstop verify 1a2b --json

        Quick: every stored file's digest against SHA256SUMS and the manifest.
        Full: also every frame decoded, the seek table, the stream digest, every entry's or
        section's digest, and the tar structure. Results go to the catalog's history, which
        `list` shows and selection uses (a snapshot whose last verification failed is skipped).

        With --all, every archived log segment is read too (backstop logs check), and a gap or a
        corrupt segment fails the run.
        Exit codes: 0 all passed; 65 any snapshot is corrupt or missing a file (or, with --all, a
        log segment is corrupt or missing); 66 a named
        snapshot does not exist; 64 usage; 1 not a repository.
        """)

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var outputOptions: OutputOptions

    @OptionGroup var selection: SelectionOptions

    @Argument(help: "Snapshots to verify (IDs or unique prefixes).")
    var snapshots: [String] = []

    @Flag(help: "Verify every snapshot.")
    var all = false

    // Unconditional, so `--sample -1` reaches validate() instead of reading as a flag.
    @Option(parsing: .unconditional, help: "Verify the N snapshots verified longest ago (never-verified first).")
    var sample: Int?

    @Flag(help: "Only hash the stored files; do not decode.")
    var quick = false

    @Option(help: ArgumentHelp("Also write a JUnit XML report to this file.", valueName: "file"))
    var junit: String?

    func validate() throws {
        try selection.validateSelection()
        let ways = (snapshots.isEmpty ? 0 : 1) + (all ? 1 : 0) + (sample == nil ? 0 : 1) + (selection.isGiven ? 1 : 0)
        if ways == 0 { throw ValidationError("name snapshots to verify, or give --all, --sample N or selection flags") }
        if ways > 1 { throw ValidationError("snapshot names, --all, --sample and selection flags exclude each other; give one") }
        if let sample, sample < 1 { throw ValidationError("--sample must be at least 1") }
    }

    func run(_ output: Output) throws {
        MallocTuning.forFrameReading()
        let repo = try repository.open(output)
        let ids: [SnapshotID]
        if all {
            ids = try repo.snapshotIDs()
        } else if let sample {
            ids = try repo.sampleToVerify(sample)
        } else if selection.isGiven {
            ids = [try selection.resolve(nil, in: repo)]
        } else {
            ids = try snapshots.map { try repo.resolve($0) }
        }
        let mode: VerificationMode = quick ? .quick : .full
        if mode == .full { try repo.requireIdentity(for: "a full verification (or use --quick, which needs no key)") }
        var warnings: [String] = []
        let ledger = FrameLedger()
        let meter = ProgressMeter(output, action: "verify", unit: .items)
        var done: Int64 = 0
        meter.update(done: 0, total: Int64(ids.count), current: ids.first?.rawValue)
        let results = try repo.verify(ids, mode: mode, ledger: ledger, warn: { meter.finish(); warnings.append($0); output.warning($0) }) { result in
            done += 1
            meter.finish()
            defer { meter.update(done: done, total: Int64(ids.count), current: done < ids.count ? ids[Int(done)].rawValue : nil) }
            guard !output.json else { return }
            if result.passed {
                output.line("ok      \(result.snapshot)  \(result.source ?? "?")  (\(mode.rawValue), \(String(format: "%.2f", result.duration)) s, \(Output.bytes(result.bytesRead)) read)")
            } else {
                output.result("FAILED  \(result.snapshot)  \(result.source ?? "?")  (\(mode.rawValue))")
                for p in result.problems { output.result("        \(p)") }
            }
        }
        meter.finish()
        if let junit {
            do {
                try JUnitReport.render(results).write(toFile: junit, atomically: true, encoding: .utf8)
            } catch {
                throw FileError.write(path: junit, errno: errno)
            }
        }
        // `--sample` also checks a rotating share of the frames themselves.
        let frameSample = sample == nil ? nil : try repo.verifyFrameSample(ledger: ledger, warn: { warnings.append($0); output.warning($0) })
        let failed = results.filter { !$0.passed }
        // `--all` also reads every archived log segment and looks for gaps in each chain.
        let logProblems = all ? try repo.logSources().flatMap { source in try repo.checkLogs(source: source).problems.map { "logs/\(source): \($0)" } } : []
        if output.json {
            output.printJSON(VerifyReport(passed: results.count - failed.count, failed: failed.count, results: results, warnings: warnings, frameSample: frameSample,
                                          logProblems: all ? logProblems : nil))
        } else {
            output.line("\(results.count) verified: \(results.count - failed.count) passed, \(failed.count) failed")
            if let frameSample {
                output.line("frames: \(frameSample.framesChecked) checked in frames/\(frameSample.folders.first ?? "")–\(frameSample.folders.last ?? "")/, \(frameSample.bad.count) bad (the next sample starts at frames/\(frameSample.nextFolder)/)")
                for b in frameSample.bad {
                    output.result("FAILED  \(b.key): \(b.problem); used by \(b.snapshots.isEmpty ? "no snapshot" : b.snapshots.map(\.rawValue).joined(separator: ", "))")
                }
            }
        }
        for p in logProblems where !output.json { output.result("FAILED  \(p)") }
        for f in failed { output.error(f.summary) }
        // Data found wrong is 65; when the only failures are reads the storage refused (an I/O
        // error proves nothing about the data, and nothing was recorded), 74.
        if failed.contains(where: { $0.problems.contains { !$0.isReadFailure } }) || !(frameSample?.bad.isEmpty ?? true) || !logProblems.isEmpty {
            throw CommandExit(status: .integrity)
        }
        if !failed.isEmpty { throw CommandExit(status: .ioError) }
    }
}

struct VerifyReport: JSONReport {
    var passed: Int
    var failed: Int
    var results: [VerificationResult]
    var warnings: [String]
    /// `--sample`: the frames checked beside the snapshots.
    var frameSample: FrameSampleReport?
    /// `--all`: gaps and corrupt segments in the archived logs (empty when intact).
    var logProblems: [String]?
}
