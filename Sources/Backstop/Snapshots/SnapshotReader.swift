import Foundation

/// Reads a committed snapshot's files: the payload's frames and the entry list. Never writes.
public struct SnapshotReader {
    public let storage: StorageBackend
    public let manifest: Manifest

    public init(repository: Repository, manifest: Manifest) {
        storage = repository.storage
        self.manifest = manifest
    }

    /// The payload, frame by frame: format 2's frames (each checked against its ID as it is
    /// decoded) seen as one seekable file.
    public func payload() throws -> SeekableZstdReader {
        let frames = try frameList()
        let reader = try SeekableZstdReader(source: FrameListSource(storage: storage, frames: frames))
        reader.frameDigests = frames.map(\.id)
        let storage = self.storage
        reader.frameID = { try storage.frameID(of: $0) }
        return reader
    }

    /// `frames.tsv`, parsed.
    public func frameList() throws -> [FrameRef] {
        try FrameList.decode(storage.read(RepositoryLayout.snapshotFile(manifest.id, "frames.tsv")), snapshot: manifest.id)
    }

    /// Every entry of a filesystem snapshot, in tar order.
    public func entries() throws -> [EntryRecord] {
        let reader = try SeekableZstdReader(source: storage.open(RepositoryLayout.snapshotFile(manifest.id, "entries.jsonl.zst")))
        return try Self.decodeEntries(reader, id: manifest.id)
    }

    static func decodeEntries(_ reader: SeekableZstdReader, id: SnapshotID) throws -> [EntryRecord] {
        let decoder = Timestamp.jsonDecoder()
        var out: [EntryRecord] = []
        var carry: [UInt8] = []
        var lineNumber = 0
        for i in reader.frames.indices {
            carry.append(contentsOf: try reader.decodeFrame(i))
            var start = 0
            while let nl = carry[start...].firstIndex(of: 0x0A) {
                lineNumber += 1
                do {
                    out.append(try decoder.decode(EntryRecord.self, from: Data(carry[start..<nl])))
                } catch {
                    throw RepositoryError.unreadableManifest(id: id.rawValue, reason: "entries.jsonl.zst line \(lineNumber): \(error)")
                }
                start = nl + 1
            }
            carry.removeFirst(start)
        }
        return out
    }
}
