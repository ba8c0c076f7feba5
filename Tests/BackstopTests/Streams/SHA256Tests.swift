import Testing
@testable import Backstop

@Suite struct SHA256Tests {
    @Test(arguments: [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
    ])
    func knownVectors(input: String, expected: String) {
        #expect(SHA256Hasher.digest(Array(input.utf8)).hex == expected)
    }

    @Test func incrementalEqualsOneShot() throws {
        var gen = SeededBytes(seed: 7)
        let data = gen.bytes(1_000_003)
        let sink = HashingSink()
        var i = 0
        while i < data.count {
            let n = min(4093, data.count - i)
            try sink.write(Array(data[i..<(i + n)]))
            i += n
        }
        try sink.finish()
        #expect(sink.digest == SHA256Hasher.digest(data))
        #expect(sink.count == Int64(data.count))
    }

    @Test func millionAs() {
        let h = SHA256Hasher()
        let chunk = [UInt8](repeating: UInt8(ascii: "a"), count: 1000)
        for _ in 0..<1000 { h.update(chunk) }
        #expect(h.finalize().hex == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func hexRoundTripAndRejects() {
        let d = SHA256Hasher.digest(Array("x".utf8))
        #expect(SHA256Digest(hex: d.hex) == d)
        #expect(SHA256Digest(hex: d.hex.uppercased()) == d)
        #expect(SHA256Digest(hex: "abc") == nil)
        #expect(SHA256Digest(hex: String(repeating: "g", count: 64)) == nil)
    }
}
