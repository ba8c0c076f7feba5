import Crypto
import Foundation

/// Encrypts to a fixed set of recipients with one header and file key for many files.
///
/// Each file still gets its own 16-byte random nonce, hence its own payload key (HKDF of the
/// file key and the nonce), so sharing the header between the objects one writer stores is
/// sound, and each object is a complete age file that `age -d` decrypts alone. What it saves:
/// one X25519 agreement per recipient (or one scrypt) per writer instead of per object, and one
/// unwrap per writer's header for readers (see `AgeKeyring`).
public final class AgeSealer: @unchecked Sendable {
    public let recipients: [AgeRecipient]
    let header: [UInt8]
    let fileKey: [UInt8]

    public init(recipients: [AgeRecipient]) throws {
        precondition(!recipients.isEmpty, "an age file needs at least one recipient")
        if recipients.contains(where: { if case .scrypt = $0 { return true } else { return false } }) && recipients.count > 1 {
            throw AgeError.invalidKey(source: "recipients", reason: "a passphrase cannot be combined with other recipients (the age format allows a scrypt stanza only alone)")
        }
        self.recipients = recipients
        let key = Age.randomBytes(16)
        fileKey = key
        header = AgeHeader(stanzas: try recipients.map { try $0.wrap(key) }, fileKey: key).encoded
    }

    /// Rebuilds a sealer from a header and its file key (kept by whoever made them).
    init(header: [UInt8], fileKey: [UInt8], recipients: [AgeRecipient]) {
        self.header = header
        self.fileKey = fileKey
        self.recipients = recipients
    }

    /// `plaintext` as a complete age file.
    public func seal(_ plaintext: [UInt8]) throws -> [UInt8] {
        try plaintext.withUnsafeBytes { try seal($0) }
    }

    public func seal(_ plaintext: UnsafeRawBufferPointer) throws -> [UInt8] {
        let nonce = Age.randomBytes(AgeStream.nonceSize)
        var out = header + nonce
        try AgeStream.seal(plaintext, key: AgeStream.payloadKey(fileKey: fileKey, nonce: nonce), into: &out)
        return out
    }

    /// How many bytes the age file of `plaintextSize` bytes takes.
    public func sealedSize(of plaintextSize: Int64) -> Int64 {
        let chunks = max(1, (plaintextSize + Int64(AgeStream.chunkSize) - 1) / Int64(AgeStream.chunkSize))
        return Int64(header.count + AgeStream.nonceSize) + plaintextSize + 16 * chunks
    }
}

/// The identities a reader holds, and the file keys they unwrapped, by header: a repository's
/// objects share few headers (one per writer), so each is unwrapped once.
public final class AgeKeyring: @unchecked Sendable {
    public let identities: [AgeIdentity]
    /// Named in "no matching identity" errors: the recipients the data is expected to be for.
    public let expectedRecipients: [String]
    private let lock = NSLock()
    private var fileKeys: [[UInt8]: [UInt8]] = [:]

    public init(identities: [AgeIdentity], expectedRecipients: [String] = []) {
        self.identities = identities
        self.expectedRecipients = expectedRecipients
    }

    /// The file key of `header` (whose encoding is `headerBytes`), its MAC checked.
    func fileKey(for header: AgeHeader, headerBytes: [UInt8]) throws -> [UInt8] {
        lock.lock()
        let cached = fileKeys[headerBytes]
        lock.unlock()
        if let cached { return cached }
        if header.stanzas.contains(where: { $0.type == "scrypt" }) && header.stanzas.count > 1 {
            throw AgeError.malformedHeader(object: nil, reason: "a scrypt stanza is not alone in the header")
        }
        var found: [UInt8]?
        search: for stanza in header.stanzas {
            for identity in identities {
                if let key = try identity.unwrap(stanza) {
                    guard key.count == 16 else { throw AgeError.malformedHeader(object: nil, reason: "a stanza holds a file key that is not 16 bytes") }
                    found = key
                    break search
                }
            }
        }
        guard let key = found else {
            let named = header.stanzas.compactMap { $0.type == "scrypt" ? "a passphrase (scrypt)" : nil }
            throw AgeError.noMatchingIdentity(object: nil, expected: expectedRecipients.isEmpty ? named : expectedRecipients)
        }
        guard header.macMatches(fileKey: key) else { throw AgeError.headerMACMismatch(object: nil) }
        lock.lock()
        if fileKeys.count > 64 { fileKeys.removeAll() }
        fileKeys[headerBytes] = key
        lock.unlock()
        return key
    }
}

/// Whole-file age encryption and decryption (age-encryption.org/v1, binary, not armored).
public enum Age {
    public static func encrypt(_ plaintext: [UInt8], to recipients: [AgeRecipient]) throws -> [UInt8] {
        try AgeSealer(recipients: recipients).seal(plaintext)
    }

    public static func decrypt(_ file: [UInt8], identities: [AgeIdentity]) throws -> [UInt8] {
        var out: [UInt8] = []
        try decrypt(file, keyring: AgeKeyring(identities: identities)) { out += $0 }
        return out
    }

    /// Decrypts `file`, handing each chunk's plaintext to `deliver` as soon as it authenticates
    /// (what was delivered before an error is authentic, but the whole is not).
    public static func decrypt(_ file: [UInt8], keyring: AgeKeyring, deliver: ([UInt8]) throws -> Void) throws {
        let parsed: (header: AgeHeader, length: Int)
        do {
            parsed = try AgeHeader.parse(file)
        } catch is HeaderParseNeedsMore {
            throw AgeError.malformedHeader(object: nil, reason: "it ends inside its header (truncated)")
        }
        let fileKey = try keyring.fileKey(for: parsed.header, headerBytes: Array(file[0..<parsed.length]))
        guard file.count - parsed.length >= AgeStream.nonceSize else {
            throw AgeError.malformedHeader(object: nil, reason: "it ends before its payload nonce (truncated)")
        }
        let nonce = Array(file[parsed.length..<(parsed.length + AgeStream.nonceSize)])
        let payloadStart = parsed.length + AgeStream.nonceSize
        let key = AgeStream.payloadKey(fileKey: fileKey, nonce: nonce)
        // As a streaming reader must: a full-size chunk is tried as a middle chunk first, then
        // as the last one; a shorter one can only be the last. Each chunk is delivered once it
        // authenticates; data after the last chunk, or no last chunk, is an error.
        var start = payloadStart
        var index = 0
        guard start < file.count else { throw AgeError.corruptPayload(object: nil, reason: "the payload has no chunk (it was truncated after the header)") }
        while true {
            let end = min(start + AgeStream.sealedChunkSize, file.count)
            let chunk = file[start..<end]
            if chunk.count == AgeStream.sealedChunkSize, let plain = try? AgeStream.open(chunk, index: index, last: false, key: key) {
                try deliver(plain)
                guard end < file.count else { throw AgeError.corruptPayload(object: nil, reason: "it ends without a last chunk (truncated at a chunk boundary)") }
            } else {
                let plain = try AgeStream.open(chunk, index: index, last: true, key: key)
                guard !plain.isEmpty || index == 0 else { throw AgeError.corruptPayload(object: nil, reason: "the last chunk is empty, which only an empty payload may have") }
                try deliver(plain)
                guard end == file.count else { throw AgeError.corruptPayload(object: nil, reason: "data follows its last chunk") }
                return
            }
            start = end
            index += 1
        }
    }

    static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { String(format: "%02x", $0) }.joined()
    }

    static func unhex(_ text: String) -> [UInt8]? {
        let chars = Array(text.utf8)
        guard chars.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        for i in stride(from: 0, to: chars.count, by: 2) {
            guard let byte = UInt8(String(decoding: chars[i..<(i + 2)], as: UTF8.self), radix: 16) else { return nil }
            out.append(byte)
        }
        return out
    }

    static func randomBytes(_ count: Int) -> [UInt8] {
        var g = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: 0...255, using: &g) }
    }
}

/// An age file read as its plaintext, seekably: a read decrypts only the 64 KiB chunks it
/// touches (the last one decrypted is kept). `bytesRead` counts ciphertext read.
public final class AgeDecryptingSource: ByteSource {
    public let size: Int64
    public var bytesRead: Int64 { sealed.bytesRead }
    private let sealed: ByteSource
    private let object: String
    private let payloadStart: Int64
    private let chunks: Int
    private let key: SymmetricKey
    private var cached: (index: Int, plain: [UInt8])?

    /// Reads and checks the header of `sealed` (named `object` in errors) and unwraps its key.
    public init(_ sealed: ByteSource, keyring: AgeKeyring, object: String) throws {
        self.sealed = sealed
        self.object = object
        do {
            var want = min(Int(sealed.size), 1024)
            var parsed: (header: AgeHeader, length: Int)?
            var prefix: [UInt8] = []
            while parsed == nil {
                prefix = try sealed.read(at: 0, count: want)
                do {
                    parsed = try AgeHeader.parse(prefix)
                } catch is HeaderParseNeedsMore {
                    guard want < Int(sealed.size) else { throw AgeError.malformedHeader(object: nil, reason: "it ends inside its header (truncated)") }
                    want = min(Int(sealed.size), want * 4)
                }
            }
            let header = parsed!
            let fileKey = try keyring.fileKey(for: header.header, headerBytes: Array(prefix[0..<header.length]))
            guard sealed.size - Int64(header.length) >= Int64(AgeStream.nonceSize) else {
                throw AgeError.malformedHeader(object: nil, reason: "it ends before its payload nonce (truncated)")
            }
            let nonce: [UInt8]
            if prefix.count >= header.length + AgeStream.nonceSize {
                nonce = Array(prefix[header.length..<(header.length + AgeStream.nonceSize)])
            } else {
                nonce = try sealed.read(at: Int64(header.length), count: AgeStream.nonceSize)
            }
            payloadStart = Int64(header.length + AgeStream.nonceSize)
            let layout = try AgeStream.layout(sealedLength: sealed.size - payloadStart)
            chunks = layout.chunks
            size = layout.plaintextSize
            key = AgeStream.payloadKey(fileKey: fileKey, nonce: nonce)
            if chunks == 1 && size <= 2048 && prefix.count == Int(sealed.size) {
                cached = (0, try AgeStream.open(prefix[Int(payloadStart)...], index: 0, last: true, key: key))
            }
        } catch let error as AgeError {
            throw error.naming(object)
        }
    }

    public func read(at offset: Int64, count: Int) throws -> [UInt8] {
        guard offset >= 0, count >= 0, offset + Int64(count) <= size else {
            throw AgeError.corruptPayload(object: object, reason: "a read of \(count) bytes at \(offset) goes beyond its \(size) bytes of plaintext")
        }
        var out: [UInt8] = []
        out.reserveCapacity(count)
        var position = offset
        let end = offset + Int64(count)
        let chunkSize = Int64(AgeStream.chunkSize)
        // The chunks wholly inside a large read are read with one ranged read and opened in
        // turn; the first and last (maybe partial) go through the one-chunk cache.
        while position < end {
            let index = Int(position / chunkSize)
            let within = Int(position - Int64(index) * chunkSize)
            let lastWhole = end == size ? chunks - 1 : Int(end / chunkSize) - 1
            if within == 0 && lastWhole > index && !(cached?.index == index) {
                let start = payloadStart + Int64(index) * Int64(AgeStream.sealedChunkSize)
                let stop = min(payloadStart + Int64(lastWhole + 1) * Int64(AgeStream.sealedChunkSize), sealed.size)
                let bytes = try sealed.read(at: start, count: Int(stop - start))
                var i = index
                var from = 0
                while from < bytes.count {
                    let to = min(from + AgeStream.sealedChunkSize, bytes.count)
                    do {
                        let plain = try AgeStream.open(bytes[from..<to], index: i, last: i == chunks - 1, key: key)
                        out.append(contentsOf: plain)
                    } catch let error as AgeError {
                        throw error.naming(object)
                    }
                    from = to
                    i += 1
                }
                position = min(end, Int64(i) * chunkSize)
                if out.count > count { out.removeLast(out.count - count) }
                continue
            }
            let plain = try chunk(index)
            let take = min(plain.count - within, Int(end - position))
            out.append(contentsOf: plain[within..<(within + take)])
            position += Int64(take)
        }
        return out
    }

    private func chunk(_ index: Int) throws -> [UInt8] {
        if let cached, cached.index == index { return cached.plain }
        let start = payloadStart + Int64(index) * Int64(AgeStream.sealedChunkSize)
        let length = Int(min(Int64(AgeStream.sealedChunkSize), sealed.size - start))
        let bytes = try sealed.read(at: start, count: length)
        do {
            let plain = try AgeStream.open(bytes[...], index: index, last: index == chunks - 1, key: key)
            cached = (index, plain)
            return plain
        } catch let error as AgeError {
            throw error.naming(object)
        }
    }
}
