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

    /// Format 1 hashed the stored payload file ahead of a whole restore, so a decode-neutral bit
    /// flip was caught. Format 2 names each frame by the SHA-256 of its decoded bytes, so:
    /// (1) a decode-neutral flip in a frame object is harmless (the restore is byte for byte the
    /// source, checked against the ID), and (2) a frame object that decodes cleanly (valid zstd,
    /// correct content checksum, same stored size) to bytes that are not its ID stops a whole
    /// restore of either kind with 65 naming the frame, and writes nothing.
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
            // (1) A decode-neutral flip: the content is intact, and the restore says so.
            let file = try repo.framePath(m, 0)
            chmod(file, 0o644)
            let original = try readFile(file)
            var object = original
            let info = try repo.payloadFrames(m)[0]
            let position = try #require(try neutralFlip(in: object, frame: FrameInfo(uncompressedOffset: 0, uncompressedSize: info.uncompressedSize,
                                                                                      compressedOffset: 0, compressedSize: info.compressedSize)),
                                        "no decode-neutral bit in frame 0 of \(m.id)")
            object[position] ^= 0x10
            try writeFile(file, object)
            let neutral = dir.sub("neutral-\(m.kind.rawValue)")
            if m.kind == .filesystem {
                _ = try FilesystemRestore(repository: repo, manifest: m).run(to: neutral)
                #expect(try readFile(neutral + "/tree/notes.txt") == readFile(dir.sub("tree/notes.txt")))
            } else {
                _ = try LogicalRestore(repository: repo, manifest: m).run(to: neutral)
                #expect(try readFile(neutral) == readFile(dir.sub("dump.sql")))
            }
            try writeFile(file, original)

            // (2) A frame that decodes cleanly to other bytes than its ID.
            let key = try repo.forgeFrame(m, 0)
            let target = dir.sub("out-\(m.kind.rawValue)")
            do {
                if m.kind == .filesystem {
                    _ = try FilesystemRestore(repository: repo, manifest: m).run(to: target)
                } else {
                    _ = try LogicalRestore(repository: repo, manifest: m).run(to: target)
                }
                Issue.record("\(m.kind) restore of a frame that does not hash to its ID succeeded")
            } catch let error as RestoreError {
                guard case let .corrupt(_, file, _, reason) = error else { Issue.record("\(error)"); continue }
                #expect(file == m.payloadName)
                #expect(reason.contains(key), "\(reason)")
                #expect(error.exitStatus == .integrity)
            }
            #expect(!FileSystem.exists(target))
            if m.kind == .logical {
                // `--to -`: the frames are checked before the first byte goes out.
                let sink = MemorySink()
                do {
                    _ = try LogicalRestore(repository: repo, manifest: m).stream(into: sink)
                    Issue.record("a whole --to - restore of a frame that does not hash to its ID succeeded")
                } catch let RestoreError.corrupt(_, file, _, _) {
                    #expect(file == m.payloadName)
                }
                #expect(sink.bytes.count == 0, "bytes reached the stream")
            }
        }
    }
}
