import Foundation
import Testing
@testable import Backstop

/// The published age test vectors (C2SP/CCTV, carried in Fixtures/age with their source named):
/// every vector's expected outcome, and for successes and payload failures, the SHA-256 of the
/// plaintext released.
@Suite struct AgeVectorTests {
    struct Vector: CustomTestStringConvertible, Sendable {
        var name: String
        var expect: String
        var payload: String
        var identities: [String]
        var passphrases: [String]
        var file: [UInt8]
        var testDescription: String { name }
    }

    static func load() throws -> [Vector] {
        let directory = Fixtures.directory + "/age"
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0 != "README.md" }.sorted()
        return try names.map { name in
            let bytes = try Fixtures.bytes("age/" + name)
            let separator = try #require(bytes.indices.first { bytes[$0] == 0x0A && $0 + 1 < bytes.count && bytes[$0 + 1] == 0x0A })
            var v = Vector(name: name, expect: "", payload: "", identities: [], passphrases: [], file: Array(bytes[(separator + 2)...]))
            for line in String(decoding: bytes[..<separator], as: UTF8.self).split(separator: "\n") {
                let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                switch parts[0] {
                case "expect": v.expect = parts[1]
                case "payload": v.payload = parts[1]
                case "identity": v.identities.append(parts[1])
                case "passphrase": v.passphrases.append(parts[1])
                default: break
                }
            }
            return v
        }
    }

    @Test func vectorsAreCarried() throws {
        // The suite must not pass by finding nothing.
        #expect(try Self.load().count >= 80)
    }

    @Test(arguments: try AgeVectorTests.load())
    func vector(_ v: Vector) throws {
        let identities = try v.identities.map { try AgeIdentity(parsing: $0) } + v.passphrases.map { AgeIdentity.scrypt(passphrase: Array($0.utf8)) }
        var released: [UInt8] = []
        var outcome = "success"
        do {
            try Age.decrypt(v.file, keyring: AgeKeyring(identities: identities)) { released += $0 }
        } catch let error as AgeError {
            switch error {
            case .malformedHeader: outcome = "header failure"
            case .noMatchingIdentity: outcome = "no match"
            case .headerMACMismatch: outcome = "HMAC failure"
            case .corruptPayload: outcome = "payload failure"
            case .invalidKey: outcome = "invalid key"
            }
        }
        #expect(outcome == v.expect, "\(v.name)")
        if v.expect == "success" || v.expect == "payload failure" {
            #expect(SHA256Hasher.digest(released).hex == v.payload, "\(v.name): released plaintext")
        }
    }
}
