import Foundation
import Testing
@testable import Backstop

/// The local paths of a repository on a `LocalBackend`: for tests about the local disk (files
/// damaged in place, permissions, what a crash leaves on disk). Tests that are not about the disk
/// go through keys (`repo.storage`) and run on every backend (`Backends`).
extension Repository {
    var local: LocalBackend {
        guard let local = storage as? LocalBackend else { preconditionFailure("a test about the local disk got \(storage.location)") }
        return local
    }
    var path: String { local.root }
    var snapshotsDirectory: String { local.path(of: RepositoryLayout.snapshots) }
    var eventsDirectory: String { local.path(of: RepositoryLayout.events) }
    var tmpDirectory: String { local.root + "/tmp" }
    var locksDirectory: String { local.root + "/locks" }
    var catalogPath: String { local.defaultCatalogPath! }
    func snapshotDirectory(_ id: SnapshotID) -> String { local.path(of: RepositoryLayout.snapshot(id)) }
    func snapshotFolders() throws -> [SnapshotID] { try snapshotIDs() }
}

/// Format 2 on the local disk: a snapshot's payload is the frame objects `frames.tsv` lists.
extension Repository {
    /// `frames.tsv` of snapshot `m`.
    func frameRefs(_ m: Manifest) throws -> [FrameRef] { try SnapshotReader(repository: self, manifest: m).frameList() }

    /// The payload's frames as one virtual seekable file sees them (offsets in the concatenation of
    /// the frame objects, in `frames.tsv` order): what format 1's `manifest.frames` listed.
    func payloadFrames(_ m: Manifest) throws -> [FrameInfo] { try SnapshotReader(repository: self, manifest: m).payload().frames }

    /// The local path of the object of a frame.
    func framePath(_ id: SHA256Digest) -> String { local.path(of: RepositoryLayout.frame(id)) }

    /// The local path of the object of frame `index` of snapshot `m`.
    func framePath(_ m: Manifest, _ index: Int) throws -> String { framePath(try frameRefs(m)[index].id) }

    /// The key (`frames/ab/<id>`) of frame `index` of snapshot `m`, as messages name it.
    func frameKey(_ m: Manifest, _ index: Int) throws -> String { RepositoryLayout.frame(try frameRefs(m)[index].id).description }

    /// Every frame object stored, by key.
    func storedFrameKeys() throws -> Set<String> { Set(try storage.list(under: RepositoryLayout.frames).map(\.description)) }

    /// The payload as format 1 stored it: the frame objects concatenated in `frames.tsv` order (a
    /// valid zstd stream; without a seek table).
    func concatenatedPayload(_ m: Manifest) throws -> [UInt8] {
        var out: [UInt8] = []
        for f in try frameRefs(m) { out += try readFile(framePath(f.id)) }
        return out
    }

    /// Flips bit `bit` of the byte at `offset` of the virtual payload (the frame objects
    /// concatenated): the frame object holding it is changed in place. Returns the frame's index.
    @discardableResult
    func flipPayloadBit(_ m: Manifest, atCompressedOffset offset: Int64, bit: Int = 0) throws -> Int {
        let frames = try payloadFrames(m)
        let index = try #require(frames.firstIndex { offset >= $0.compressedOffset && offset < $0.compressedOffset + Int64($0.compressedSize) },
                                 "offset \(offset) is outside the payload's frames")
        try flipFrameBit(m, index, at: Int(offset - frames[index].compressedOffset), bit: bit)
        return index
    }

    /// Flips bit `bit` of byte `at` of the object of frame `index` of `m`.
    func flipFrameBit(_ m: Manifest, _ index: Int, at: Int, bit: Int = 0) throws {
        let path = try framePath(m, index)
        chmod(path, 0o644)
        var bytes = try readFile(path)
        bytes[at] ^= UInt8(1 << bit)
        try writeFile(path, bytes)
    }

    /// Replaces the object of frame `index` of `m` (same key) by `bytes`.
    func replaceFrame(_ m: Manifest, _ index: Int, with bytes: [UInt8]) throws {
        let path = try framePath(m, index)
        chmod(path, 0o644)
        try writeFile(path, bytes)
    }
}

extension Repository {
    /// Replaces the object of frame `index` of `m` by a valid zstd frame (content checksum and
    /// all) of the same stored size whose content differs from the original in one byte: only
    /// the frame's ID can tell. Returns the frame's key.
    @discardableResult
    func forgeFrame(_ m: Manifest, _ index: Int) throws -> String {
        let path = try framePath(m, index)
        let original = try readFile(path)
        let info = try payloadFrames(m)[index]
        var content = try original.withUnsafeBytes { try ZstdDecompressor().decompressFrame($0, expectedSize: info.uncompressedSize) }
        let compressor = try ZstdCompressor(level: 3)
        for position in stride(from: content.count / 2, to: content.count, by: 1) {
            let saved = content[position]
            content[position] = saved == 0x41 ? 0x42 : 0x41
            var out: [UInt8] = []
            let size = try content.withUnsafeBytes { try compressor.compressFrame($0, into: &out) }
            if size == original.count {
                try replaceFrame(m, index, with: Array(out.prefix(size)))
                return try frameKey(m, index)
            }
            content[position] = saved
        }
        throw RepositoryError.unreadableManifest(id: m.id.rawValue, reason: "test support: no one-byte change of frame \(index) keeps its stored size")
    }
}

extension Repository {
    /// The README's standard-tool recipe (`cut`, `sed`, `xargs cat`), run in the snapshot's
    /// folder: a shell command writing the payload's zstd stream to standard output.
    func catFramesCommand(_ m: Manifest) -> String {
        #"cd '\#(snapshotDirectory(m.id))' && cut -f1 frames.tsv | sed 's|^\(..\)|../../frames/\1/\1|' | xargs cat"#
    }
}
