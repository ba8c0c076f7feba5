import Foundation

/// The digest of a stored payload file, computed by a whole restore from what it reads anyway:
/// every frame's stored bytes, in order, then the seek table (the reader checked that the frames
/// start at 0, follow one another and end where the seek table begins, so these bytes are the
/// whole file). Decoding alone cannot catch every damaged byte: some bits of a zstd frame do not
/// change what it decodes to, so a file that no longer matches the manifest could otherwise
/// restore "successfully" while `verify` reports it corrupt.
final class StoredFileCheck {
    private let payload: SeekableZstdReader
    private let manifest: Manifest
    private let hasher = SHA256Hasher()
    private var next = 0

    init(payload: SeekableZstdReader, manifest: Manifest) {
        self.payload = payload
        self.manifest = manifest
    }

    /// Takes frame `index`'s stored bytes; frames must come in order, each once.
    func add(frame index: Int, stored bytes: [UInt8]) {
        precondition(index == next, "stored frames out of order: \(index) after \(next - 1)")
        hasher.update(bytes)
        next += 1
    }

    /// After every frame: hashes the seek table and compares the file's digest with the
    /// manifest's. Throws `RestoreError.corrupt` naming the payload.
    func finish() throws {
        precondition(next == payload.frames.count, "\(payload.frames.count - next) frames were not hashed")
        let file = manifest.payloadName
        let dataEnd = payload.frames.last.map { $0.compressedOffset + Int64($0.compressedSize) } ?? 0
        do {
            hasher.update(try payload.source.read(at: dataEnd, count: Int(payload.source.size - dataEnd)))
        } catch {
            throw RestoreError.corrupt(snapshot: manifest.id, file: file, location: "seek table", reason: "\(error)")
        }
        guard let want = manifest.files.first(where: { $0.name == file })?.sha256 else {
            throw RestoreError.corrupt(snapshot: manifest.id, file: "manifest.json", location: "", reason: "lists no digest for \(file)")
        }
        guard hasher.finalize() == want else {
            throw RestoreError.corrupt(snapshot: manifest.id, file: file, location: "",
                                       reason: "the stored file's SHA-256 differs from the manifest's: it was altered (even if it still decodes)")
        }
    }
}
