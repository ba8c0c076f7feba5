import Foundation

/// The base64 of age headers: the standard alphabet without padding, and canonical (the unused
/// bits of the last character are zero), so one value has one encoding and the header MAC
/// covers exactly what was meant.
enum AgeBase64 {
    static func encode(_ bytes: [UInt8]) -> String {
        var text = Data(bytes).base64EncodedString()
        while text.hasSuffix("=") { text.removeLast() }
        return text
    }

    /// Nil when `text` is not canonical unpadded base64.
    static func decode<S: StringProtocol>(_ text: S) -> [UInt8]? {
        let chars = Array(text.utf8)
        guard chars.count % 4 != 1 else { return nil }
        for c in chars {
            let ok = (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c == 43 || c == 47
            if !ok { return nil }
        }
        let padded = String(decoding: chars, as: UTF8.self) + String(repeating: "=", count: (4 - chars.count % 4) % 4)
        guard let data = Data(base64Encoded: padded) else { return nil }
        let bytes = [UInt8](data)
        // Canonical: encoding the bytes again gives the same text (no stray low bits).
        guard encode(bytes) == String(decoding: chars, as: UTF8.self) else { return nil }
        return bytes
    }
}
