/// Bech32 (BIP 173), the encoding of age's keys: `age1…` recipients and `AGE-SECRET-KEY-1…`
/// identities. Checksummed, case-insensitive but never mixed-case. age keys exceed BIP 173's
/// 90-character limit in some key types, so no length limit is applied.
enum Bech32 {
    private static let charset = Array("qpzry9x8gf2tvdw0s3jn54khce6mua7l".utf8)
    private static let values: [Int8] = {
        var table = [Int8](repeating: -1, count: 128)
        for (i, c) in charset.enumerated() { table[Int(c)] = Int8(i) }
        return table
    }()

    private static func polymod(_ values: [UInt8]) -> UInt32 {
        let generator: [UInt32] = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3]
        var chk: UInt32 = 1
        for v in values {
            let top = chk >> 25
            chk = (chk & 0x1ffffff) << 5 ^ UInt32(v)
            for i in 0..<5 where (top >> i) & 1 == 1 { chk ^= generator[i] }
        }
        return chk
    }

    private static func expand(_ hrp: [UInt8]) -> [UInt8] {
        hrp.map { $0 >> 5 } + [0] + hrp.map { $0 & 31 }
    }

    /// Regroups bits (8 → 5 to encode, 5 → 8 to decode); decoding refuses leftover bits that are
    /// not zero padding.
    private static func convert(_ data: [UInt8], from: Int, to: Int, pad: Bool) -> [UInt8]? {
        var acc = 0, bits = 0
        var out: [UInt8] = []
        let maxValue = (1 << to) - 1
        for v in data {
            acc = (acc << from) | Int(v)
            bits += from
            while bits >= to {
                bits -= to
                out.append(UInt8((acc >> bits) & maxValue))
            }
        }
        if pad {
            if bits > 0 { out.append(UInt8((acc << (to - bits)) & maxValue)) }
        } else if bits >= from || (acc << (to - bits)) & maxValue != 0 {
            return nil
        }
        return out
    }

    /// `hrp` + `1` + data + checksum, lowercase.
    static func encode(hrp: String, data: [UInt8]) -> String {
        let h = Array(hrp.lowercased().utf8)
        let five = convert(data, from: 8, to: 5, pad: true)!
        let mod = polymod(expand(h) + five + [0, 0, 0, 0, 0, 0]) ^ 1
        let checksum = (0..<6).map { UInt8((mod >> (5 * (5 - $0))) & 31) }
        return String(decoding: h + [UInt8(ascii: "1")] + (five + checksum).map { charset[Int($0)] }, as: UTF8.self)
    }

    /// The human-readable part (lowercase) and the data, or nil when `text` is not valid Bech32.
    static func decode(_ text: String) -> (hrp: String, data: [UInt8])? {
        let bytes = Array(text.utf8)
        guard bytes.allSatisfy({ $0 >= 33 && $0 <= 126 }) else { return nil }
        let hasLower = bytes.contains { $0 >= 97 && $0 <= 122 }
        let hasUpper = bytes.contains { $0 >= 65 && $0 <= 90 }
        if hasLower && hasUpper { return nil }
        let lower = bytes.map { $0 >= 65 && $0 <= 90 ? $0 + 32 : $0 }
        guard let separator = lower.lastIndex(of: UInt8(ascii: "1")), separator >= 1, lower.count - separator - 1 >= 6 else { return nil }
        let hrp = Array(lower[..<separator])
        var five: [UInt8] = []
        for c in lower[(separator + 1)...] {
            guard c < 128, values[Int(c)] >= 0 else { return nil }
            five.append(UInt8(values[Int(c)]))
        }
        guard polymod(expand(hrp) + five) == 1 else { return nil }
        guard let data = convert(Array(five.dropLast(6)), from: 5, to: 8, pad: false) else { return nil }
        return (String(decoding: hrp, as: UTF8.self), data)
    }
}
