import Foundation

/// One line of `entries.jsonl.zst`: a tar entry of a filesystem snapshot.
///
/// `offset` is where the entry's first header block (a pax extended header when there is one)
/// starts in the uncompressed tar stream; `length` covers its headers, data and padding, so
/// `offset + length` is the next entry's offset.
public struct EntryRecord: Codable, Sendable, Equatable {
    public var path: String
    public var type: EntryType
    public var mode: UInt32
    public var uid: Int64
    public var gid: Int64
    public var mtime: Date
    public var size: Int64
    public var sha256: SHA256Digest?
    public var linkTarget: String?
    public var offset: Int64
    public var length: Int64
}
