/// Recognises a dump's format from its first lines, for `--format auto`.
public enum DumpFormatDetector {
    /// How many leading bytes `detect` looks at.
    public static let window = 64 << 10

    /// The format named by the dump's header, or `.raw` when the head is no known dump's.
    public static func detect(_ head: [UInt8]) -> DumpFormat {
        let text = String(decoding: head.prefix(window), as: UTF8.self)
        for line in text.split(separator: "\n", omittingEmptySubsequences: true).prefix(50) {
            if line.hasPrefix("-- MySQL dump") || line.hasPrefix("-- MariaDB dump") { return .mysqldump }
            if line.hasPrefix("-- PostgreSQL database cluster dump") { return .pgdumpall }
            if line.hasPrefix("-- PostgreSQL database dump") { return .pgdump }
        }
        return .raw
    }
}
