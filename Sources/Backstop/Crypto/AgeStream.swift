import Crypto
import Foundation

/// age's payload: a 16-byte nonce, then STREAM (ChaCha20-Poly1305 over 64 KiB chunks, the
/// nonce an 11-byte big-endian chunk counter and a last-chunk flag) under a key derived from the
/// file key and the nonce. Because chunks have fixed sizes, chunk `i` of a payload of known
/// length can be found and decrypted alone: ranged reads decrypt only the chunks they touch.
enum AgeStream {
    static let chunkSize = 64 << 10
    static let sealedChunkSize = chunkSize + 16
    static let nonceSize = 16

    static func payloadKey(fileKey: [UInt8], nonce: [UInt8]) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(inputKeyMaterial: SymmetricKey(data: fileKey), salt: nonce, info: Array("payload".utf8), outputByteCount: 32)
    }

    static func chunkNonce(_ index: Int, last: Bool) -> ChaChaPoly.Nonce {
        var bytes = [UInt8](repeating: 0, count: 12)
        var n = UInt64(index)
        for i in stride(from: 10, through: 3, by: -1) {
            bytes[i] = UInt8(n & 0xff)
            n >>= 8
        }
        bytes[11] = last ? 1 : 0
        return try! ChaChaPoly.Nonce(data: bytes)
    }

    /// The sealed chunks of `plaintext` (one empty last chunk when it is empty), appended to `out`.
    static func seal(_ plaintext: UnsafeRawBufferPointer, key: SymmetricKey, into out: inout [UInt8]) throws {
        let count = max(1, (plaintext.count + chunkSize - 1) / chunkSize)
        out.reserveCapacity(out.count + plaintext.count + 16 * count)
        for i in 0..<count {
            let start = i * chunkSize
            let chunk = UnsafeRawBufferPointer(rebasing: plaintext[start..<min(start + chunkSize, plaintext.count)])
            let box = try ChaChaPoly.seal(chunk, using: key, nonce: chunkNonce(i, last: i == count - 1))
            out.append(contentsOf: box.ciphertext)
            out.append(contentsOf: box.tag)
        }
    }

    /// The layout of a payload whose sealed chunks take `length` bytes (after the nonce): how
    /// many chunks and the plaintext size. Throws for lengths no age writer produces.
    static func layout(sealedLength length: Int64) throws -> (chunks: Int, plaintextSize: Int64) {
        guard length > 0 else { throw AgeError.corruptPayload(object: nil, reason: "the payload has no chunk (it was truncated after the header)") }
        let chunks = Int((length + Int64(sealedChunkSize) - 1) / Int64(sealedChunkSize))
        let lastLength = length - Int64(chunks - 1) * Int64(sealedChunkSize)
        guard lastLength >= 16 else { throw AgeError.corruptPayload(object: nil, reason: "the last chunk is \(lastLength) bytes, shorter than its tag (truncated)") }
        guard lastLength > 16 || chunks == 1 else { throw AgeError.corruptPayload(object: nil, reason: "the last chunk is empty, which only an empty payload may have") }
        return (chunks, length - 16 * Int64(chunks))
    }

    /// Opens sealed chunk `index`; the last chunk must carry the last-chunk flag, and no other may.
    static func open(_ sealed: ArraySlice<UInt8>, index: Int, last: Bool, key: SymmetricKey) throws -> [UInt8] {
        guard sealed.count >= 16,
              let box = try? ChaChaPoly.SealedBox(nonce: chunkNonce(index, last: last), ciphertext: sealed.dropLast(16), tag: sealed.suffix(16)),
              let plain = try? ChaChaPoly.open(box, using: key) else {
            throw AgeError.corruptPayload(object: nil, reason: "chunk \(index) does not authenticate\(last ? " as the last chunk" : "")")
        }
        return Array(plain)
    }
}
