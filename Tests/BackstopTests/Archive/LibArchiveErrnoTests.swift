import Foundation
import Testing
@testable import Backstop

/// libarchive takes a name it could not convert for "out of memory" when `errno` is ENOMEM
/// after the conversion, which does not set it: an ENOMEM left on the thread by earlier work
/// turned the expected fallback (non-UTF-8 names written as bytes; UTF-8 names read as bytes
/// under the C locale) into a fatal "Can't allocate memory for Pathname". The test fixture
/// builder had the same flaw: an archive lost every member after the first, one run in three.
@Suite struct LibArchiveErrnoTests {
    static let names: [[UInt8]] = [
        Array("caf\u{00E9}".utf8),            // UTF-8: converted when written, a byte fallback when read
        Array("bad".utf8) + [0xFF],           // not UTF-8: written as bytes (hdrcharset=BINARY)
        Array("link".utf8),
    ]

    static func entry(_ name: [UInt8], type: EntryType, link: [UInt8]? = nil) -> TarEntry {
        TarEntry(path: EntryRecord.display(name), rawPath: name, type: type, size: 0, mode: type == .symlink ? 0o777 : 0o755,
                 linkTarget: link.map(EntryRecord.display), rawLinkTarget: link, uid: 0, gid: 0, userName: nil, groupName: nil,
                 mtime: timespec(tv_sec: 1_700_000_000, tv_nsec: 0), device: 0, xattrs: [])
    }

    /// Proves: entries whose names need the fallback are written and read back exactly though
    /// errno is ENOMEM before each header (before the fix: "Can't allocate memory for Pathname").
    @Test func aLeftoverENOMEMDoesNotFailANameConversion() throws {
        let sink = MemorySink()
        let writer = try TarWriter(sink: sink)
        let entries = [Self.entry(Self.names[0], type: .directory), Self.entry(Self.names[1], type: .directory),
                       Self.entry(Self.names[2], type: .symlink, link: Self.names[1])]
        for e in entries {
            errno = ENOMEM
            _ = try writer.writeHeader(copying: e, storedPath: e.rawPath, linkTarget: e.rawLinkTarget)
            try writer.finishEntry()
        }
        try writer.close()

        var chunks = [sink.bytes]
        let reader = try TarReader(next: { chunks.isEmpty ? nil : chunks.removeFirst() })
        var read: [(name: [UInt8], link: [UInt8]?)] = []
        while true {
            errno = ENOMEM
            guard let e = try reader.nextEntry() else { break }
            read.append((e.rawPath, e.rawLinkTarget))
        }
        #expect(read.map(\.name) == Self.names)
        #expect(read.last?.link == Self.names[1])
    }
}
