import Foundation

/// What `backstop --version` reports: this build, the formats it writes and reads, and the
/// C libraries it runs with (asked at run time, so a library upgraded under the binary shows).
public struct BackstopVersion: Codable, Sendable {
    /// The release, written into every manifest and verification record as `toolVersion`.
    public static let current = "0.1.0"

    public struct Formats: Codable, Sendable {
        /// `backstop.json`'s `format` and each manifest's `format` (what this build writes).
        public var repository: Int
        /// Older repository formats `backstop migrate` converts to `repository`.
        public var migratesFrom: [Int]
        /// `--json` documents' `schemaVersion`.
        public var json: Int
    }

    public struct Libraries: Codable, Sendable {
        public var zstd: String
        public var libarchive: String
        public var openssl: String
    }

    public var version: String
    /// The git commit the installed binary was built from (`git describe`, recorded by
    /// scripts/install.sh), or "unknown" (a build from a tarball, or not installed by it).
    public var commit: String
    public var formats: Formats
    public var libraries: Libraries

    /// This process's version report; `commit` as found by `commit(besideExecutable:)`.
    public static func report(commit: String, jsonSchemaVersion: Int) -> BackstopVersion {
        BackstopVersion(version: current, commit: commit,
                        formats: Formats(repository: Manifest.currentFormat, migratesFrom: [1], json: jsonSchemaVersion),
                        libraries: Libraries(zstd: ZstdLibrary.version, libarchive: LibArchiveLibrary.version, openssl: OpenSSLLibrary.version))
    }

    /// The commit scripts/install.sh recorded for `executable` in `PREFIX/share/backstop/COMMIT`
    /// (beside `PREFIX/bin/backstop`), or "unknown".
    public static func commit(besideExecutable executable: String) -> String {
        let bin = URL(fileURLWithPath: executable).resolvingSymlinksInPath().deletingLastPathComponent()
        let file = bin.deletingLastPathComponent().appendingPathComponent("share/backstop/COMMIT")
        guard let text = try? String(contentsOf: file, encoding: .utf8) else { return "unknown" }
        let commit = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return commit.isEmpty ? "unknown" : commit
    }

    /// The human-readable report, one fact a line.
    public var text: String {
        """
        backstop \(version)
        commit: \(commit)
        formats: repository \(formats.repository) (migrates \(formats.migratesFrom.map(String.init).joined(separator: ", "))), JSON schema \(formats.json)
        zstd: \(libraries.zstd)
        libarchive: \(libraries.libarchive)
        openssl: \(libraries.openssl)
        """
    }
}
