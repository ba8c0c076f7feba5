import Foundation

/// One line of `entries.jsonl.zst`: a tar entry of a filesystem snapshot.
///
/// `offset` is where the entry's first header block (a pax extended header when there is one)
/// starts in the uncompressed tar stream; `length` covers its headers, data and padding, so
/// `offset + length` is the next entry's offset.
///
/// Names are bytes. `rawPath` and `rawLinkTarget` are the exact bytes stored in the tar; `path`
/// and `linkTarget` are their display forms (invalid UTF-8 repaired with U+FFFD). In JSON, a name
/// that is valid UTF-8 is written once, as `path` / `linkTarget`; one that is not also gets
/// `pathBytes` / `linkTargetBytes`, its exact bytes in base64, so the list is lossless.
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
    /// The path's exact bytes, as in the tar header. Compare names with these, never with
    /// `path`: Swift's `String` equality is Unicode-canonical, so NFC and NFD spellings of one
    /// name compare equal although they are two different files.
    public var rawPath: [UInt8]
    /// The link target's exact bytes (symlinks and hard links).
    public var rawLinkTarget: [UInt8]?

    public init(path: String, type: EntryType, mode: UInt32, uid: Int64, gid: Int64, mtime: Date, size: Int64,
                sha256: SHA256Digest?, linkTarget: String?, offset: Int64, length: Int64,
                rawPath: [UInt8]? = nil, rawLinkTarget: [UInt8]? = nil) {
        self.path = path
        self.type = type
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.mtime = mtime
        self.size = size
        self.sha256 = sha256
        self.linkTarget = linkTarget
        self.offset = offset
        self.length = length
        self.rawPath = rawPath ?? Array(path.utf8)
        self.rawLinkTarget = rawLinkTarget ?? linkTarget.map { Array($0.utf8) }
    }

    /// Builds a record from a name's exact bytes; the display forms are derived from them.
    public init(rawPath: [UInt8], type: EntryType, mode: UInt32, uid: Int64, gid: Int64, mtime: Date, size: Int64,
                sha256: SHA256Digest?, rawLinkTarget: [UInt8]?, offset: Int64, length: Int64) {
        self.init(path: EntryRecord.display(rawPath), type: type, mode: mode, uid: uid, gid: gid, mtime: mtime,
                  size: size, sha256: sha256, linkTarget: rawLinkTarget.map(EntryRecord.display),
                  offset: offset, length: length, rawPath: rawPath, rawLinkTarget: rawLinkTarget)
    }

    /// A name's display form: its UTF-8, with invalid sequences replaced by U+FFFD.
    public static func display(_ bytes: [UInt8]) -> String {
        String(decoding: bytes, as: UTF8.self)
    }

    /// Whether `bytes` is valid UTF-8 (so `display` gives them back exactly).
    public static func isValidUTF8(_ bytes: [UInt8]) -> Bool {
        String(validating: bytes, as: UTF8.self) != nil
    }

    private enum CodingKeys: String, CodingKey {
        case path, type, mode, uid, gid, mtime, size, sha256, linkTarget, offset, length, pathBytes, linkTargetBytes
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let path = try c.decode(String.self, forKey: .path)
        let linkTarget = try c.decodeIfPresent(String.self, forKey: .linkTarget)
        func bytes(_ key: CodingKeys) throws -> [UInt8]? {
            guard let text = try c.decodeIfPresent(String.self, forKey: key) else { return nil }
            guard let data = Data(base64Encoded: text) else {
                throw DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription: "not base64: \(text)")
            }
            return Array(data)
        }
        self.init(path: path, type: try c.decode(EntryType.self, forKey: .type), mode: try c.decode(UInt32.self, forKey: .mode),
                  uid: try c.decode(Int64.self, forKey: .uid), gid: try c.decode(Int64.self, forKey: .gid),
                  mtime: try c.decode(Date.self, forKey: .mtime), size: try c.decode(Int64.self, forKey: .size),
                  sha256: try c.decodeIfPresent(SHA256Digest.self, forKey: .sha256), linkTarget: linkTarget,
                  offset: try c.decode(Int64.self, forKey: .offset), length: try c.decode(Int64.self, forKey: .length),
                  rawPath: try bytes(.pathBytes), rawLinkTarget: try bytes(.linkTargetBytes))
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(path, forKey: .path)
        try c.encode(type, forKey: .type)
        try c.encode(mode, forKey: .mode)
        try c.encode(uid, forKey: .uid)
        try c.encode(gid, forKey: .gid)
        try c.encode(mtime, forKey: .mtime)
        try c.encode(size, forKey: .size)
        try c.encodeIfPresent(sha256, forKey: .sha256)
        try c.encodeIfPresent(linkTarget, forKey: .linkTarget)
        try c.encode(offset, forKey: .offset)
        try c.encode(length, forKey: .length)
        if !EntryRecord.isValidUTF8(rawPath) { try c.encode(Data(rawPath).base64EncodedString(), forKey: .pathBytes) }
        if let raw = rawLinkTarget, !EntryRecord.isValidUTF8(raw) {
            try c.encode(Data(raw).base64EncodedString(), forKey: .linkTargetBytes)
        }
    }
}
