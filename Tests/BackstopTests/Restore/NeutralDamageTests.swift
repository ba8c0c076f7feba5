import Foundation
import Testing
@testable import Backstop

/// Some bits of a zstd frame do not change what it decodes to (found by the drill: one flipped
/// byte in the middle of a data directory's payload restored "successfully" about one time in a
/// hundred). Such a stored file no longer matches `SHA256SUMS`, `verify` reports it corrupt, and so
/// must a whole restore, which reads every byte of it anyway.
@Suite struct NeutralDamageTests {
    /// The first position in `payload`'s first frame where flipping bit 4 leaves the decoded
    /// frame unchanged, searched byte by byte.
    func neutralFlip(in payload: [UInt8], frame: FrameInfo) throws -> Int? {
        let decoder = ZstdDecompressor()
        let range = Int(frame.compressedOffset)..<(Int(frame.compressedOffset) + Int(frame.compressedSize))
        let original = try payload[range].withUnsafeBytes { try decoder.decompressFrame($0, expectedSize: Int(frame.uncompressedSize)) }
        var copy = Array(payload[range])
        for i in copy.indices.dropFirst(8) {
            copy[i] ^= 0x10
            defer { copy[i] ^= 0x10 }
            if let decoded = try? copy.withUnsafeBytes({ try decoder.decompressFrame($0, expectedSize: Int(frame.uncompressedSize)) }),
               decoded == original {
                return range.lowerBound + i
            }
        }
        return nil
    }

    /// Proves: a whole filesystem restore and a whole logical restore of a payload damaged where
    /// decoding cannot see it exit 65 naming the payload, and write nothing. (Before the payload
    /// was hashed ahead of a whole restore, both restores succeeded.)
    @Test func aDamagedPayloadThatStillDecodesStopsAWholeRestore() throws {
        let dir = TemporaryDirectory()
        var gen = SeededBytes(seed: 7)
        try writeFile(dir.sub("tree/notes.txt"), gen.text(300_000))
        let repo = try makeRepository(dir)
        let fs = try FilesystemSnapshotWriter(paths: [dir.sub("tree")], options: BackupOptions(source: "tree")).write(to: repo)
        try writeFile(dir.sub("dump.sql"), gen.text(300_000))
        let logical = try LogicalSnapshotWriter(input: .command("cat '\(dir.sub("dump.sql"))'"), format: .raw,
                                                options: BackupOptions(source: "stream")).write(to: repo)
        for m in [fs, logical] {
            let file = dir.sub("repo/snapshots/\(m.id)/\(m.payloadName)")
            var payload = try readFile(file)
            let position = try #require(try neutralFlip(in: payload, frame: m.frames[0]), "no decode-neutral bit in \(m.payloadName)")
            payload[position] ^= 0x10
            try writeFile(file, payload)
            let target = dir.sub("out-\(m.kind.rawValue)")
            do {
                if m.kind == .filesystem {
                    _ = try FilesystemRestore(repository: repo, manifest: m).run(to: target)
                } else {
                    _ = try LogicalRestore(repository: repo, manifest: m).run(to: target)
                }
                Issue.record("\(m.kind) restore of a payload that no longer matches SHA256SUMS succeeded")
            } catch let RestoreError.corrupt(_, file, _, _) {
                #expect(file == m.payloadName)
            }
            #expect(!FileSystem.exists(target))
            if m.kind == .logical {
                // `--to -`: the stored file's digest is checked before the first byte goes out.
                let sink = MemorySink()
                do {
                    _ = try LogicalRestore(repository: repo, manifest: m).stream(into: sink)
                    Issue.record("a whole --to - restore of a payload that no longer matches SHA256SUMS succeeded")
                } catch let RestoreError.corrupt(_, file, _, _) {
                    #expect(file == m.payloadName)
                }
                #expect(sink.bytes.count == 0, "bytes reached the stream")
            }
        }
    }
}
