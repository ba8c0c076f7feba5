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
///
/// The mtime is exact: `modificationTime` holds seconds and nanoseconds, written in JSON as
/// `mtime` with nine fractional digits (`2023-11-14T22:13:20.987654321Z`); `mtime` as a `Date`
/// is its approximation (a `Double` keeps about a microsecond).
public struct EntryRecord: Codable, Sendable, Equatable {
    public var path: String
    public var type: EntryType
    public var mode: UInt32
    public var uid: Int64
    public var gid: Int64
    /// The mtime exactly as the filesystem and the tar header hold it.
    public var modificationTime: FileTime
    /// `modificationTime` as a `Date` (to about a microsecond); setting it sets `modificationTime`.
    public var mtime: Date {
        get { modificationTime.date }
        set { modificationTime = FileTime(newValue) }
    }
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
    /// For the files cache (format 2 lists write them for every entry; older lists lack them):
    /// the inode number, the device, and the ctime (`st_ctim`, exact, JSON `ctime` in the form
    /// of `mtime`) the entry had when it was stored. Never part of the tar stream.
    public var inode: UInt64?
    public var device: UInt64?
    public var changeTime: FileTime?

    public init(path: String, type: EntryType, mode: UInt32, uid: Int64, gid: Int64, mtime: Date, size: Int64,
                sha256: SHA256Digest?, linkTarget: String?, offset: Int64, length: Int64,
                rawPath: [UInt8]? = nil, rawLinkTarget: [UInt8]? = nil, modificationTime: FileTime? = nil) {
        self.path = path
        self.type = type
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.modificationTime = modificationTime ?? FileTime(mtime)
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
        self.init(rawPath: rawPath, type: type, mode: mode, uid: uid, gid: gid, modificationTime: FileTime(mtime), size: size,
                  sha256: sha256, rawLinkTarget: rawLinkTarget, offset: offset, length: length)
    }

    /// Builds a record from a name's exact bytes and an exact mtime.
    public init(rawPath: [UInt8], type: EntryType, mode: UInt32, uid: Int64, gid: Int64, modificationTime: FileTime, size: Int64,
                sha256: SHA256Digest?, rawLinkTarget: [UInt8]?, offset: Int64, length: Int64) {
        self.init(path: EntryRecord.display(rawPath), type: type, mode: mode, uid: uid, gid: gid, mtime: modificationTime.date,
                  size: size, sha256: sha256, linkTarget: rawLinkTarget.map(EntryRecord.display),
                  offset: offset, length: length, rawPath: rawPath, rawLinkTarget: rawLinkTarget, modificationTime: modificationTime)
    }

    /// A name's display form: its UTF-8, with invalid sequences replaced by U+FFFD.
    public static func display(_ bytes: [UInt8]) -> String {
        String(decoding: bytes, as: UTF8.self)
    }

    /// A name for people to read, unambiguous and on one line (as `ls -b` and GNU tar's escape
    /// quoting): valid UTF-8 as is, except a backslash as `\\` and control characters as `\n`,
    /// `\t` or `\xNN`; each byte that is not part of valid UTF-8 as `\xNN` (`bad\xff`).
    /// Different names always read differently, and a valid UTF-8 name without backslashes or
    /// control characters reads as itself.
    public static func escaped(_ bytes: [UInt8]) -> String {
        var out = ""
        func hex(_ b: UInt8) { out += "\\x" + (b < 16 ? "0" : "") + String(b, radix: 16) }
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            // The length of the UTF-8 sequence starting here, if it is a valid one.
            var length = 0
            switch b {
            case 0x00...0x7F: length = 1
            case 0xC2...0xDF: length = 2
            case 0xE0...0xEF: length = 3
            case 0xF0...0xF4: length = 4
            default: length = 0
            }
            if length > 1 {
                let end = i + length
                if end > bytes.count || String(validating: bytes[i..<end], as: UTF8.self) == nil { length = 0 }
            }
            switch length {
            case 0: hex(b); i += 1
            case 1:
                switch b {
                case 0x5C: out += "\\\\"
                case 0x0A: out += "\\n"
                case 0x09: out += "\\t"
                case 0x00..<0x20, 0x7F: hex(b)
                default: out.unicodeScalars.append(Unicode.Scalar(b))
                }
                i += 1
            default:
                out += String(decoding: bytes[i..<(i + length)], as: UTF8.self)
                i += length
            }
        }
        return out
    }

    /// `rawPath` for people to read (see `escaped`).
    public var escapedPath: String { EntryRecord.escaped(rawPath) }

    /// `rawLinkTarget` for people to read (see `escaped`).
    public var escapedLinkTarget: String? { rawLinkTarget.map(EntryRecord.escaped) }

    /// Whether `bytes` is valid UTF-8 (so `display` gives them back exactly).
    public static func isValidUTF8(_ bytes: [UInt8]) -> Bool {
        String(validating: bytes, as: UTF8.self) != nil
    }

    private enum CodingKeys: String, CodingKey {
        case path, type, mode, uid, gid, mtime, size, sha256, linkTarget, offset, length, pathBytes, linkTargetBytes
        case inode, device, ctime
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
                  mtime: Date(timeIntervalSince1970: 0), size: try c.decode(Int64.self, forKey: .size),
                  sha256: try c.decodeIfPresent(SHA256Digest.self, forKey: .sha256), linkTarget: linkTarget,
                  offset: try c.decode(Int64.self, forKey: .offset), length: try c.decode(Int64.self, forKey: .length),
                  rawPath: try bytes(.pathBytes), rawLinkTarget: try bytes(.linkTargetBytes),
                  modificationTime: try c.decode(FileTime.self, forKey: .mtime))
        inode = try c.decodeIfPresent(UInt64.self, forKey: .inode)
        device = try c.decodeIfPresent(UInt64.self, forKey: .device)
        changeTime = try c.decodeIfPresent(FileTime.self, forKey: .ctime)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(path, forKey: .path)
        try c.encode(type, forKey: .type)
        try c.encode(mode, forKey: .mode)
        try c.encode(uid, forKey: .uid)
        try c.encode(gid, forKey: .gid)
        try c.encode(modificationTime, forKey: .mtime)
        try c.encode(size, forKey: .size)
        try c.encodeIfPresent(sha256, forKey: .sha256)
        try c.encodeIfPresent(linkTarget, forKey: .linkTarget)
        try c.encode(offset, forKey: .offset)
        try c.encode(length, forKey: .length)
        if !EntryRecord.isValidUTF8(rawPath) { try c.encode(Data(rawPath).base64EncodedString(), forKey: .pathBytes) }
        if let raw = rawLinkTarget, !EntryRecord.isValidUTF8(raw) {
            try c.encode(Data(raw).base64EncodedString(), forKey: .linkTargetBytes)
        }
        try c.encodeIfPresent(inode, forKey: .inode)
        try c.encodeIfPresent(device, forKey: .device)
        try c.encodeIfPresent(changeTime, forKey: .ctime)
    }
}
