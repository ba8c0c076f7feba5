import Foundation

/// A parent's entry as the files cache needs it: what the match compares, where it is, and its
/// JSON line, written again as it is (with the new offset) when the entry is reused.
///
/// Lines are read by a small scanner of the flat objects the writer produces (no JSON decoder
/// per entry: 100,000 entries would cost seconds); a line it does not take is decoded as an
/// `EntryRecord` (`record`), and encoded again when reused.
struct CachedEntry {
    var rawPath: [UInt8] = []
    var type: EntryType = .file
    var size: Int64 = 0
    var mtime = FileTime(seconds: 0, nanoseconds: 0)
    var ctime: FileTime?
    var inode: UInt64?
    var device: UInt64?
    var offset: Int64 = 0
    var length: Int64 = 0
    var rawLinkTarget: [UInt8]?
    /// The line, and where the digits of its `offset` are in it.
    var line: [UInt8] = []
    var offsetDigits: Range<Int>?
    /// Set when the scanner did not take the line.
    var record: EntryRecord?

    init(record r: EntryRecord) {
        rawPath = r.rawPath
        type = r.type
        size = r.size
        mtime = r.modificationTime
        ctime = r.changeTime
        inode = r.inode
        device = r.device
        offset = r.offset
        length = r.length
        rawLinkTarget = r.rawLinkTarget
        record = r
    }

    /// Scans one line; nil when it is not a flat object of strings and integers with the
    /// fields the cache needs, in the forms the writer uses.
    init?(line slice: ArraySlice<UInt8>) {
        let b = Array(slice)
        line = b
        var i = 0
        let n = b.count
        var path: [UInt8]?, pathBytes: [UInt8]?, link: [UInt8]?, linkBytes: [UInt8]?
        var typeText: [UInt8]?, mtimeText: [UInt8]?, ctimeText: [UInt8]?
        var have = (size: false, offset: false, length: false)

        func string() -> [UInt8]? {
            guard i < n, b[i] == 0x22 else { return nil }
            i += 1
            var out: [UInt8] = []
            while i < n {
                let c = b[i]
                if c == 0x22 { i += 1; return out }
                if c != 0x5C { out.append(c); i += 1; continue }
                guard i + 1 < n else { return nil }
                let e = b[i + 1]
                i += 2
                switch e {
                case 0x22, 0x5C, 0x2F: out.append(e)
                case 0x62: out.append(0x08)
                case 0x66: out.append(0x0C)
                case 0x6E: out.append(0x0A)
                case 0x72: out.append(0x0D)
                case 0x74: out.append(0x09)
                case 0x75:
                    guard var scalar = hex4() else { return nil }
                    if (0xD800..<0xDC00).contains(scalar) {
                        guard i + 1 < n, b[i] == 0x5C, b[i + 1] == 0x75 else { return nil }
                        i += 2
                        guard let low = hex4(), (0xDC00..<0xE000).contains(low) else { return nil }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let u = Unicode.Scalar(scalar) else { return nil }
                    out.append(contentsOf: Array(String(Character(u)).utf8))
                default: return nil
                }
            }
            return nil
        }
        func hex4() -> UInt32? {
            guard i + 4 <= n else { return nil }
            var v: UInt32 = 0
            for _ in 0..<4 {
                let c = b[i]
                let d: UInt32
                switch c {
                case 0x30...0x39: d = UInt32(c - 0x30)
                case 0x41...0x46: d = UInt32(c - 0x41 + 10)
                case 0x61...0x66: d = UInt32(c - 0x61 + 10)
                default: return nil
                }
                v = v << 4 | d
                i += 1
            }
            return v
        }
        func integer() -> (value: Int64, unsigned: UInt64, negative: Bool)? {
            let negative = i < n && b[i] == 0x2D
            if negative { i += 1 }
            let start = i
            var v: UInt64 = 0
            while i < n, b[i] >= 0x30, b[i] <= 0x39 {
                let (m, o1) = v.multipliedReportingOverflow(by: 10)
                let (a, o2) = m.addingReportingOverflow(UInt64(b[i] - 0x30))
                guard !o1, !o2 else { return nil }
                v = a
                i += 1
            }
            guard i > start else { return nil }
            if negative { return v <= UInt64(Int64.max) ? (-Int64(v), 0, true) : nil }
            return (v <= UInt64(Int64.max) ? Int64(v) : -1, v, false)
        }

        guard n > 1, b[0] == 0x7B else { return nil }
        i = 1
        while true {
            guard let key = string(), i < n, b[i] == 0x3A else { return nil }
            i += 1
            guard i < n else { return nil }
            if b[i] == 0x22 {
                guard let value = string() else { return nil }
                switch key {
                case Array("path".utf8): path = value
                case Array("pathBytes".utf8): pathBytes = value
                case Array("linkTarget".utf8): link = value
                case Array("linkTargetBytes".utf8): linkBytes = value
                case Array("type".utf8): typeText = value
                case Array("mtime".utf8): mtimeText = value
                case Array("ctime".utf8): ctimeText = value
                default: break
                }
            } else {
                let start = i
                guard let v = integer() else { return nil }
                switch key {
                case Array("size".utf8): guard v.value >= 0 else { return nil }; size = v.value; have.size = true
                case Array("offset".utf8): guard v.value >= 0 else { return nil }; offset = v.value; have.offset = true; offsetDigits = start..<i
                case Array("length".utf8): guard v.value >= 0 else { return nil }; length = v.value; have.length = true
                case Array("inode".utf8): guard !v.negative else { return nil }; inode = v.unsigned
                case Array("device".utf8): guard !v.negative else { return nil }; device = v.unsigned
                default: break
                }
            }
            guard i < n else { return nil }
            if b[i] == 0x2C { i += 1; continue }
            guard b[i] == 0x7D, i == n - 1 else { return nil }
            break
        }
        guard have.size, have.offset, have.length, let path, let typeText, let mtimeText,
              let t = EntryType(rawValue: String(decoding: typeText, as: UTF8.self)),
              let m = CachedEntry.fileTime(mtimeText) else { return nil }
        type = t
        mtime = m
        if let ctimeText {
            guard let c = CachedEntry.fileTime(ctimeText) else { return nil }
            ctime = c
        }
        if let pathBytes {
            guard let data = Data(base64Encoded: Data(pathBytes)) else { return nil }
            rawPath = Array(data)
        } else {
            rawPath = path
        }
        if let linkBytes {
            guard let data = Data(base64Encoded: Data(linkBytes)) else { return nil }
            rawLinkTarget = Array(data)
        } else {
            rawLinkTarget = link
        }
    }

    /// `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ` read directly; other forms by `FileTime(rfc3339:)`.
    static func fileTime(_ text: [UInt8]) -> FileTime? {
        guard text.count == 30, text[4] == 0x2D, text[7] == 0x2D, text[10] == 0x54, text[13] == 0x3A,
              text[16] == 0x3A, text[19] == 0x2E, text[29] == 0x5A else {
            return FileTime(rfc3339: String(decoding: text, as: UTF8.self))
        }
        func digits(_ from: Int, _ count: Int) -> Int64? {
            var v: Int64 = 0
            for k in from..<(from + count) {
                let c = text[k]
                guard c >= 0x30, c <= 0x39 else { return nil }
                v = v * 10 + Int64(c - 0x30)
            }
            return v
        }
        guard let y = digits(0, 4), let mo = digits(5, 2), let d = digits(8, 2), let h = digits(11, 2),
              let mi = digits(14, 2), let s = digits(17, 2), let ns = digits(20, 9),
              (1...12).contains(mo), (1...31).contains(d), h < 24, mi < 60, s < 60 else {
            return FileTime(rfc3339: String(decoding: text, as: UTF8.self))
        }
        // Days from 1970-01-01 (the proleptic Gregorian calendar, as `timegm`).
        let yy = mo <= 2 ? y - 1 : y
        let era = (yy >= 0 ? yy : yy - 399) / 400
        let yoe = yy - era * 400
        let doy = (153 * (mo > 2 ? mo - 3 : mo + 9) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        return FileTime(seconds: days * 86_400 + h * 3600 + mi * 60 + s, nanoseconds: Int32(ns))
    }

    /// The line to write for this entry at `newOffset` (without the newline).
    func line(at newOffset: Int64, encoder: JSONEncoder) throws -> [UInt8] {
        if var r = record {
            r.offset = newOffset
            return Array(try encoder.encode(r))
        }
        guard let digits = offsetDigits else { preconditionFailure("a scanned entry has its offset") }
        if newOffset == offset { return line }
        return Array(line[..<digits.lowerBound]) + Array(String(newOffset).utf8) + Array(line[digits.upperBound...])
    }
}
