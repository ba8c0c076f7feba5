import ArgumentParser
import Backstop
import Foundation

/// Value completions for the shells' completion scripts (`--generate-completion-script`).
enum Completions {
    static let kinds = CompletionKind.list(SnapshotKind.allCases.map(\.rawValue))
    static let formats = CompletionKind.list(DumpFormatChoice.allCases.map(\.rawValue))
    static let policies = CompletionKind.file(extensions: ["yaml", "yml"])

    /// The source names in the repository the command line names (`--repo`, else
    /// `$BACKSTOP_REPO`), from its catalog; nothing when there is none or it cannot be read.
    static let sources = CompletionKind.custom { words, _, prefix in
        var location = ProcessInfo.processInfo.environment["BACKSTOP_REPO"]
        for (i, word) in words.enumerated() {
            if word == "--repo", i + 1 < words.count { location = words[i + 1] }
            if word.hasPrefix("--repo=") { location = String(word.dropFirst("--repo=".count)) }
        }
        guard let location, !location.isEmpty, let repo = try? Repository.open(at: location),
              let snapshots = try? repo.snapshots() else { return [] }
        return Set(snapshots.map(\.source)).sorted().filter { $0.hasPrefix(prefix) }
    }
}
