import Foundation

/// The sections a pg_dump archive scanner (custom or tar format) records as the stream passes:
/// the one being written, with its digest and, once its data starts, its content digest (the
/// data without block or member headers, which carry dump IDs and times), and those closed.
struct PgArchiveSections {
    var name = "preamble"
    var kind = Section.Kind.preamble
    private(set) var offset: Int64 = 0
    private var hasher = SHA256Hasher()
    /// Hashes the current section's content from when it is set (its data starts).
    var content: SHA256Hasher?
    /// The content digest, when the content ended before the section does (tar member padding).
    private var contentDigest: SHA256Digest?
    private(set) var closed: [Section] = []

    /// Passes bytes of the current section.
    func update(_ part: UnsafeRawBufferPointer) {
        hasher.update(part)
        content?.update(part)
    }

    /// Ends the content here: what follows in the section (padding) is not content.
    mutating func endContent() {
        if let content { contentDigest = content.finalize() }
        content = nil
    }

    /// Closes the current section at `start` (if it holds any byte) and opens the next there.
    mutating func start(_ name: String, _ kind: Section.Kind, at start: Int64) {
        close(at: start)
        (self.name, self.kind, offset) = (name, kind, start)
        hasher = SHA256Hasher()
        content = nil
        contentDigest = nil
    }

    /// Closes the current section at `end`, unless it is empty.
    mutating func close(at end: Int64) {
        guard end > offset else { return }
        closed.append(Section(name: name, kind: kind, offset: offset, length: end - offset,
                              sha256: hasher.finalize(), contentSHA256: contentDigest ?? content?.finalize()))
    }
}
