import Foundation
import Testing
@testable import Backstop

/// Our age implementation on its own: round trips, keys, the seekable reader, and refusals of
/// wrong keys, tampering and truncation (the last-chunk flag included).
@Suite struct AgeTests {
    static func payload(_ count: Int, seed: UInt64 = 7) -> [UInt8] {
        var g = SeededBytes(seed: seed)
        return g.bytes(count)
    }

    @Test(arguments: [0, 1, 65535, 65536, 65537, 3 * 65536, 200_000])
    func roundTrip(size: Int) throws {
        let identity = AgeIdentity.generate()
        let plain = Self.payload(size)
        let file = try Age.encrypt(plain, to: [identity.recipient!])
        #expect(try Age.decrypt(file, identities: [identity]) == plain)
        let source = try AgeDecryptingSource(MemoryByteSource(file), keyring: AgeKeyring(identities: [identity]), object: "x")
        #expect(source.size == Int64(size))
        #expect(try source.read(at: 0, count: size) == plain)
    }

    /// Proves the streaming writer (frames and snapshot files of an encrypted repository): any
    /// size around the 64 KiB chunk boundaries, written in one piece or in uneven pieces, is a
    /// whole age file of the size `sealedSize` says (the last chunk flagged, an empty payload one
    /// empty chunk) that decrypts to the bytes written.
    @Test(arguments: [0, 1, 65535, 65536, 65537, 2 * 65536, 3 * 65536 + 5, 200_000])
    func theStreamingWriterMakesWholeAgeFiles(size: Int) throws {
        let identity = AgeIdentity.generate()
        let sealer = try AgeSealer(recipients: [identity.recipient!])
        let plain = Self.payload(size, seed: UInt64(size) + 1)
        for pieces in [[size], [1, 65535, 3, 70_000, 65536], [size / 3, size / 3]] {
            let storage = MemoryBackend()
            let key = StorageKey("frames", "ab", "streamed")
            let writer = EncryptingObjectWriter(try storage.makeWriter(for: key), sealer: sealer, hashing: pieces.count == 1)
            var offset = 0
            for n in pieces + [size] where offset < size {
                let end = min(size, offset + n)
                try plain[offset..<end].withUnsafeBytes { try writer.write($0) }
                offset = end
            }
            try writer.finish()
            _ = try writer.commit(mode: .createOnly)
            let file = try storage.read(key)
            #expect(Int64(file.count) == sealer.sealedSize(of: Int64(size)))
            #expect(writer.storedSize == Int64(file.count))
            #expect(try Age.decrypt(file, identities: [identity]) == plain, "pieces \(pieces)")
        }
    }

    @Test func keysRoundTripThroughBech32() throws {
        let identity = AgeIdentity.generate()
        let text = try #require(identity.secretKeyText)
        #expect(text.hasPrefix("AGE-SECRET-KEY-1"))
        let again = try AgeIdentity(parsing: text)
        #expect(again.recipient == identity.recipient)
        let recipient = identity.recipient!.description
        #expect(recipient.hasPrefix("age1") && recipient.count == 62)
        #expect(try AgeRecipient(parsing: recipient) == identity.recipient)
        // One changed character breaks the checksum.
        var broken = Array(recipient)
        broken[10] = broken[10] == "q" ? "p" : "q"
        #expect(throws: AgeError.self) { try AgeRecipient(parsing: String(broken)) }
        #expect(throws: AgeError.self) { try AgeRecipient(parsing: String(recipient.uppercased().prefix(5)) + recipient.dropFirst(5)) }
    }

    @Test func identityFilesSkipCommentsAndHoldSeveralKeys() throws {
        let a = AgeIdentity.generate(), b = AgeIdentity.generate()
        let text = AgeKeyFile.text(for: a) + "\n# another\n" + b.secretKeyText! + "\n"
        let parsed = try AgeKeyFile.identities(text, source: "keys.txt")
        #expect(parsed.map(\.recipient) == [a.recipient, b.recipient])
        // A file encrypted to b alone opens with the file holding both.
        #expect(try Age.decrypt(Age.encrypt([1, 2, 3], to: [b.recipient!]), identities: parsed) == [1, 2, 3])
        let error = #expect(throws: AgeError.self) { try AgeKeyFile.identities("# c\nnot a key\n", source: "keys.txt") }
        #expect(error?.description.contains("keys.txt line 2") == true)
        let recipients = try AgeKeyFile.recipients("# team\n\(a.recipient!)\n\n\(b.recipient!)\n", source: "r.txt")
        #expect(recipients == [a.recipient!, b.recipient!])
    }

    @Test func wrongIdentityIsNoMatchNamingTheRecipients() throws {
        let right = AgeIdentity.generate(), wrong = AgeIdentity.generate()
        let file = try Age.encrypt([9], to: [right.recipient!])
        let keyring = AgeKeyring(identities: [wrong], expectedRecipients: [right.recipient!.description])
        let error = #expect(throws: AgeError.self) { try Age.decrypt(file, keyring: keyring) { _ in } }
        #expect(error?.exitStatus == .permissionDenied)
        #expect(error?.description.contains(right.recipient!.description) == true)
    }

    @Test func passphraseRoundTripAndWrongPassphrase() throws {
        let file = try Age.encrypt([1, 2, 3], to: [.scrypt(passphrase: Array("correct horse".utf8), workFactor: 10)])
        #expect(try Age.decrypt(file, identities: [.scrypt(passphrase: Array("correct horse".utf8))]) == [1, 2, 3])
        #expect(throws: AgeError.noMatchingIdentity(object: nil, expected: ["a passphrase (scrypt)"])) {
            try Age.decrypt(file, identities: [.scrypt(passphrase: Array("wrong".utf8))])
        }
        // A passphrase never goes with other recipients (the format forbids it).
        #expect(throws: AgeError.self) {
            try AgeSealer(recipients: [.scrypt(passphrase: [1], workFactor: 10), AgeIdentity.generate().recipient!])
        }
    }

    @Test func everyFlippedByteIsRefused() throws {
        let identity = AgeIdentity.generate()
        let file = try Age.encrypt(Self.payload(70_000), to: [identity.recipient!])
        // Header, MAC, nonce, first chunk, second chunk, last tag.
        let headerEnd = try AgeHeader.parse(file).length
        for offset in [5, 30, headerEnd - 5, headerEnd + 3, headerEnd + 20, headerEnd + 16 + 65_552 + 10, file.count - 1] {
            var bad = file
            bad[offset] ^= 0x01
            #expect(throws: AgeError.self, "flipped byte at \(offset)") { try Age.decrypt(bad, identities: [identity]) }
        }
    }

    @Test func truncationIsRefusedAlsoAtAChunkBoundary() throws {
        let identity = AgeIdentity.generate()
        let plain = Self.payload(3 * 65536 + 100)
        let file = try Age.encrypt(plain, to: [identity.recipient!])
        let payloadStart = try AgeHeader.parse(file).length + 16
        // Cut after the second full chunk: what is left is two well-formed chunks, but the last
        // one lacks the last-chunk flag.
        let atBoundary = Array(file[..<(payloadStart + 2 * 65_552)])
        let error = #expect(throws: AgeError.self) { try Age.decrypt(atBoundary, identities: [identity]) }
        #expect(error?.exitStatus == .integrity)
        let seekable = try AgeDecryptingSource(MemoryByteSource(atBoundary), keyring: AgeKeyring(identities: [identity]), object: "frames/ab/x")
        let seekError = #expect(throws: AgeError.self) { try seekable.read(at: 65536, count: 10) }
        #expect(seekError?.description.contains("frames/ab/x") == true)
        for cut in [file.count - 1, payloadStart + 10, payloadStart - 1, 40] {
            #expect(throws: AgeError.self, "cut at \(cut)") { try Age.decrypt(Array(file[..<cut]), identities: [identity]) }
        }
    }

    @Test func rangedReadsDecryptOnlyTheirChunks() throws {
        let identity = AgeIdentity.generate()
        let plain = Self.payload(10 * 65536)
        let sealed = MemoryByteSource(try Age.encrypt(plain, to: [identity.recipient!]))
        let source = try AgeDecryptingSource(sealed, keyring: AgeKeyring(identities: [identity]), object: "x")
        let before = source.bytesRead
        #expect(try source.read(at: 5 * 65536 + 100, count: 1000) == Array(plain[(5 * 65536 + 100)..<(5 * 65536 + 1100)]))
        #expect(source.bytesRead - before == Int64(65_552))
        // A read across a boundary reads the two chunks.
        #expect(try source.read(at: 7 * 65536 - 10, count: 20) == Array(plain[(7 * 65536 - 10)..<(7 * 65536 + 10)]))
        #expect(source.bytesRead - before == Int64(3 * 65_552))
        // A long read takes its whole chunks in one ranged read, and the partial one after.
        #expect(try source.read(at: 65536, count: 3 * 65536 + 5) == Array(plain[65536..<(4 * 65536 + 5)]))
        #expect(source.bytesRead - before == Int64(7 * 65_552))
    }

    @Test func oneSealerSharesItsHeaderButNotItsPayloadKeys() throws {
        let identity = AgeIdentity.generate()
        let sealer = try AgeSealer(recipients: [identity.recipient!])
        let a = try sealer.seal([1, 2, 3]), b = try sealer.seal([1, 2, 3])
        #expect(a != b)   // nonces differ
        #expect(try AgeHeader.parse(a).length == sealer.header.count)
        #expect(Int64(a.count) == sealer.sealedSize(of: 3))
        #expect(try Age.decrypt(b, identities: [identity]) == [1, 2, 3])
    }
}

/// Bytes in memory as a `ByteSource`, counting what is read.
final class MemoryByteSource: ByteSource {
    let bytes: [UInt8]
    var size: Int64 { Int64(bytes.count) }
    private(set) var bytesRead: Int64 = 0
    init(_ bytes: [UInt8]) { self.bytes = bytes }
    func read(at offset: Int64, count: Int) throws -> [UInt8] {
        guard offset + Int64(count) <= size else { throw FileError.truncated(path: "memory", offset: offset, wanted: count) }
        bytesRead += Int64(count)
        return Array(bytes[Int(offset)..<(Int(offset) + count)])
    }
}
