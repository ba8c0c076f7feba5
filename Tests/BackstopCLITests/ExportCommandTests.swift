import Backstop
import Foundation
import Testing

@Suite struct ExportCommandTests {
    /// A repository with a filesystem snapshot of a tree whose 3 MiB file spans several frames.
    private func filesystemSnapshot(_ s: Scratch) throws -> String {
        try V1Fixture.makeTree(at: s.sub("src/tree"))
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        let b = try CLI.run(["backup", s.sub("src/tree"), "--source", "files", "--repo", s.repo])
        #expect(b.status == 0, "\(b.stderr)")
        return b.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The frame objects of a snapshot, in `frames.tsv` order.
    private func frameFiles(_ s: Scratch, _ id: String) throws -> [String] {
        try String(contentsOfFile: s.repo + "/snapshots/\(id)/frames.tsv", encoding: .utf8).split(separator: "\n").map {
            let hex = $0.split(separator: "\t")[0]
            return s.repo + "/frames/\(hex.prefix(2))/\(hex)"
        }
    }

    /// Proves: the exported file is the classic single-file payload that the standard tools
    /// read alone: `zstd -dc FILE | tar -x` gives back the source tree (contents, modes, mtimes,
    /// the symlink), and the file is the frames in order plus a seek table.
    @Test func aFilesystemExportUnpacksWithZstdAndTar() throws {
        let s = Scratch()
        let id = try filesystemSnapshot(s)
        let frames = try frameFiles(s, id)
        #expect(frames.count > 3, "the 3 MiB file spans several frames: \(frames.count)")
        let r = try CLI.run(["export", id, "--to", s.sub("out.tar.zst"), "--repo", s.repo])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("exported \(id) to \(s.sub("out.tar.zst")): \(frames.count) frames"), "\(r.stdout)")
        try FileManager.default.createDirectory(atPath: s.sub("unpacked"), withIntermediateDirectories: true)
        try sh("zstd -dc '\(s.sub("out.tar.zst"))' | tar -x -C '\(s.sub("unpacked"))'")
        try sh("diff -r --no-dereference '\(s.sub("src/tree"))' '\(s.sub("unpacked/tree"))'")
        #expect(try V1Fixture.metadata(s.sub("unpacked/tree")) == (try V1Fixture.metadata(s.sub("src/tree"))))
        // The frames concatenated, then a skippable frame (the seek table) and nothing else.
        let framesOnly = try sh("cat \(frames.map { "'\($0)'" }.joined(separator: " ")) | sha256sum")
        let size = try sh("cat \(frames.map { "'\($0)'" }.joined(separator: " ")) | wc -c").trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try sh("head -c \(size) '\(s.sub("out.tar.zst"))' | sha256sum") == framesOnly)
        #expect(try sh("tail -c +\(Int(size)! + 1) '\(s.sub("out.tar.zst"))' | head -c 4 | od -An -tx1").contains("5e 2a 4d 18"))
    }

    /// Proves: `--to -` writes the logical snapshot's payload to stdout, and `zstd -dc` of it
    /// is the dump, byte for byte.
    @Test func aLogicalExportToStdoutDecompressesToTheDump() throws {
        let s = Scratch()
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        let b = try CLI.run(["backup", "--stdin", "--source", "shop", "--repo", s.repo], stdinFile: V1Fixture.dump)
        #expect(b.status == 0, "\(b.stderr)")
        try sh("'\(CLI.binary)' export --latest --source shop --to - --repo '\(s.repo)' > '\(s.sub("shop.zst"))' 2> '\(s.sub("err"))'")
        #expect(try String(contentsOfFile: s.sub("err"), encoding: .utf8).contains("to standard output"))
        try sh("zstd -dc '\(s.sub("shop.zst"))' > '\(s.sub("shop.sql"))'")
        try sh("cmp '\(V1Fixture.dump)' '\(s.sub("shop.sql"))'")
    }

    /// Proves: a damaged frame stops the export with 65 naming the frame; no FILE (and no
    /// temporary file) is left; to `-`, the message says how many bytes had gone out.
    @Test func aDamagedFrameStopsTheExport() throws {
        let s = Scratch()
        let id = try filesystemSnapshot(s)
        let frames = try frameFiles(s, id)
        // The second frame: one byte in its compressed data changed.
        let victim = frames[1]
        chmod(victim, 0o644)
        try sh("printf '\\x55' | dd of='\(victim)' bs=1 seek=1000 conv=notrunc status=none")
        try FileManager.default.createDirectory(atPath: s.sub("out"), withIntermediateDirectories: true)
        let file = try CLI.run(["export", id, "--to", s.sub("out/x.tar.zst"), "--repo", s.repo])
        #expect(file.status == 65, "\(file.stdout)\(file.stderr)")
        let name = (victim as NSString).lastPathComponent
        #expect(file.stderr.contains(name) && file.stderr.contains("the partial file was removed"), "\(file.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: s.sub("out")).isEmpty)

        try sh("'\(CLI.binary)' export \(id) --to - --repo '\(s.repo)' > '\(s.sub("stdout.bin"))' 2> '\(s.sub("err"))' || echo $? > '\(s.sub("status"))'")
        #expect(try String(contentsOfFile: s.sub("status"), encoding: .utf8) == "65\n")
        let firstFrame = try FileManager.default.attributesOfItem(atPath: frames[0])[.size] as? Int
        let out = try FileManager.default.attributesOfItem(atPath: s.sub("stdout.bin"))[.size] as? Int
        #expect(out == firstFrame, "only the frame before the damaged one went out")
        #expect(try String(contentsOfFile: s.sub("err"), encoding: .utf8).contains("\(firstFrame ?? -1) bytes had already gone to standard output"))
    }

    /// Proves: a reader that goes away (a broken pipe on `--to -`) is an I/O error of the
    /// target (74), not an integrity failure, and the message says bytes had gone out.
    @Test func aBrokenPipeIsAnIOError() throws {
        let s = Scratch()
        let id = try filesystemSnapshot(s)
        let status = try sh("'\(CLI.binary)' export \(id) --to - --repo '\(s.repo)' 2> '\(s.sub("err"))' | head -c 10 > /dev/null; echo ${PIPESTATUS[0]}")
        #expect(status == "74\n")
        let err = try String(contentsOfFile: s.sub("err"), encoding: .utf8)
        #expect(err.contains("cannot export snapshot \(id)") && err.contains("bytes had already gone to standard output"), "\(err)")
        #expect(!err.contains("damaged"), "\(err)")
    }

    /// Proves: an existing FILE is never replaced (73), and a missing snapshot is 66.
    @Test func anExistingFileIsKeptAndAMissingSnapshotIsNoMatch() throws {
        let s = Scratch()
        let id = try filesystemSnapshot(s)
        try s.write("keep.tar.zst", "mine\n")
        let r = try CLI.run(["export", id, "--to", s.sub("keep.tar.zst"), "--repo", s.repo])
        #expect(r.status == 73, "\(r.stderr)")
        #expect(r.stderr.contains("exists; export never replaces a file"), "\(r.stderr)")
        #expect(try String(contentsOfFile: s.sub("keep.tar.zst"), encoding: .utf8) == "mine\n")
        let missing = try CLI.run(["export", "20000101T000000Z-00000000", "--to", s.sub("n.tar.zst"), "--repo", s.repo])
        #expect(missing.status == 66, "\(missing.stderr)")
    }
}
