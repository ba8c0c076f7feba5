import Crypto
import Foundation

/// One recipient stanza of an age header: `-> TYPE ARG…` and a base64 body.
public struct AgeStanza: Sendable, Equatable {
    public var type: String
    public var arguments: [String]
    public var body: [UInt8]

    public init(type: String, arguments: [String], body: [UInt8]) {
        self.type = type
        self.arguments = arguments
        self.body = body
    }

    /// The stanza as the header holds it: the argument line, then the body in lines of 64
    /// columns, the last one shorter (empty when the body fills its lines).
    var encoded: String {
        var text = "-> " + ([type] + arguments).joined(separator: " ") + "\n"
        let b64 = Array(AgeBase64.encode(body).utf8)
        var i = 0
        while true {
            let line = b64[i..<min(i + 64, b64.count)]
            text += String(decoding: line, as: UTF8.self) + "\n"
            if line.count < 64 { break }
            i += 64
        }
        return text
    }
}

/// An age header (age-encryption.org/v1): the version line, the stanzas and the MAC line.
public struct AgeHeader: Sendable, Equatable {
    public static let versionLine = "age-encryption.org/v1"
    public var stanzas: [AgeStanza]
    public var mac: [UInt8]

    /// The header up to and including `---`: what the MAC covers.
    var macInput: [UInt8] {
        Array((Self.versionLine + "\n" + stanzas.map(\.encoded).joined() + "---").utf8)
    }

    /// The whole header, ending with the MAC line's newline.
    public var encoded: [UInt8] {
        macInput + Array((" " + AgeBase64.encode(mac) + "\n").utf8)
    }

    /// A header for `stanzas`, its MAC computed with `fileKey`.
    init(stanzas: [AgeStanza], fileKey: [UInt8]) {
        self.stanzas = stanzas
        self.mac = []
        self.mac = Self.computeMAC(macInput, fileKey: fileKey)
    }

    init(stanzas: [AgeStanza], mac: [UInt8]) {
        self.stanzas = stanzas
        self.mac = mac
    }

    static func computeMAC(_ input: [UInt8], fileKey: [UInt8]) -> [UInt8] {
        let key = HKDF<SHA256>.deriveKey(inputKeyMaterial: SymmetricKey(data: fileKey), salt: [UInt8](),
                                         info: Array("header".utf8), outputByteCount: 32)
        return Array(HMAC<SHA256>.authenticationCode(for: input, using: key))
    }

    /// Whether the MAC matches `fileKey` (compared in constant time).
    func macMatches(fileKey: [UInt8]) -> Bool {
        let key = HKDF<SHA256>.deriveKey(inputKeyMaterial: SymmetricKey(data: fileKey), salt: [UInt8](),
                                         info: Array("header".utf8), outputByteCount: 32)
        return HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: macInput, using: key)
    }

    /// Parses the header at the start of `bytes`; returns it and its length in bytes. Throws
    /// `AgeError.malformedHeader` for anything the spec does not allow (CR line ends, padding,
    /// non-canonical base64, long or missing body lines, an empty argument), and
    /// `needMore` when `bytes` ends before the MAC line does.
    static func parse(_ bytes: [UInt8]) throws -> (header: AgeHeader, length: Int) {
        var position = 0
        func line() throws -> ArraySlice<UInt8> {
            guard let end = bytes[position...].firstIndex(of: 0x0A) else {
                if bytes.count - position > 1 << 20 { throw AgeError.malformedHeader(object: nil, reason: "a header line longer than 1 MiB") }
                throw HeaderParseNeedsMore()
            }
            let l = bytes[position..<end]
            position = end + 1
            return l
        }
        func bad(_ reason: String) -> AgeError { .malformedHeader(object: nil, reason: reason) }
        let first = try line()
        guard String(decoding: first, as: UTF8.self) == versionLine else {
            if first.starts(with: Array("age-encryption.org/".utf8)) { throw bad("unsupported version \(String(decoding: first.prefix(40), as: UTF8.self))") }
            throw bad("it does not start with the line `\(versionLine)`")
        }
        var stanzas: [AgeStanza] = []
        while true {
            let l = try line()
            if l.starts(with: Array("---".utf8)) {
                let macInputEnd = l.startIndex + 3
                guard l.count > 4, l[l.startIndex + 3] == 0x20 else { throw bad("the MAC line is not `--- MAC`") }
                guard let mac = AgeBase64.decode(String(decoding: l[(l.startIndex + 4)...], as: UTF8.self)), mac.count == 32 else {
                    throw bad("the MAC is not 32 bytes of canonical base64")
                }
                let header = AgeHeader(stanzas: stanzas, mac: mac)
                // Re-encoding must give the same bytes: the MAC covers the canonical form.
                guard Array(bytes[0..<macInputEnd]) == header.macInput else { throw bad("the header is not in canonical form") }
                return (header, position)
            }
            guard l.starts(with: Array("-> ".utf8)) else { throw bad("a line is neither a stanza (`-> `) nor the MAC line (`--- `)") }
            let args = l.dropFirst(3).split(separator: 0x20, omittingEmptySubsequences: false)
            guard !args.isEmpty, args.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0 >= 33 && $0 <= 126 } }) else {
                throw bad("a stanza has an empty argument or a character that is not printable ASCII")
            }
            var body: [UInt8] = []
            while true {
                let b = try line()
                guard b.count <= 64 else { throw bad("a stanza body line is longer than 64 columns") }
                guard let chunk = AgeBase64.decode(String(decoding: b, as: UTF8.self)) else { throw bad("a stanza body is not canonical unpadded base64") }
                body += chunk
                if b.count < 64 { break }
            }
            let strings = args.map { String(decoding: $0, as: UTF8.self) }
            stanzas.append(AgeStanza(type: strings[0], arguments: Array(strings.dropFirst()), body: body))
        }
    }
}

/// The bytes given end inside the header: read more and parse again.
struct HeaderParseNeedsMore: Error {}
