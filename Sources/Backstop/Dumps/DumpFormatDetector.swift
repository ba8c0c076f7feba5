/// Recognises a dump's format from its first bytes, for `--format auto`.
public enum DumpFormatDetector {
    /// How many leading bytes `detect` looks at.
    public static let window = 64 << 10

    /// The format named by the dump's header, or `.raw` when the head is no known dump's.
    ///
    /// pg_dump's custom format starts with the magic `PGDMP`; its tar format with a tar header
    /// for the member `toc.dat` (whose data starts with `PGDMP`). Text dumps are told by their
    /// first comment lines.
    public static func detect(_ head: [UInt8]) -> DumpFormat {
        if head.starts(with: magic) { return .pgdumpCustom }
        if isPgTar(head) { return .pgdumpTar }
        let text = String(decoding: head.prefix(window), as: UTF8.self)
        for line in text.split(separator: "\n", omittingEmptySubsequences: true).prefix(50) {
            if line.hasPrefix("-- MySQL dump") || line.hasPrefix("-- MariaDB dump") { return .mysqldump }
            if line.hasPrefix("-- PostgreSQL database cluster dump") { return .pgdumpall }
            if line.hasPrefix("-- PostgreSQL database dump") { return .pgdump }
        }
        return .raw
    }

    private static let magic = Array("PGDMP".utf8)

    /// A tar stream whose first member is `toc.dat`: the name field, and as far as the head goes,
    /// the ustar magic and the archive magic at the start of the member's data.
    private static func isPgTar(_ head: [UInt8]) -> Bool {
        guard head.starts(with: Array("toc.dat".utf8) + [0]) else { return false }
        if head.count >= 262, !head[257..<262].elementsEqual("ustar".utf8) { return false }
        if head.count >= 517, !head[512..<517].elementsEqual(magic) { return false }
        return true
    }
}
