import Foundation

/// What went wrong reading or writing an age file (age-encryption.org/v1). `object` names the
/// file or stored object when the caller knows it.
public enum AgeError: Error, CustomStringConvertible, ExitStatusProviding, Equatable {
    /// The header does not parse, or a stanza is malformed (a bad share, a work factor out of range).
    case malformedHeader(object: String?, reason: String)
    /// No identity given unwraps any stanza: a missing or wrong key. `expected` lists the
    /// recipients the object (or the repository) is encrypted to, when known.
    case noMatchingIdentity(object: String?, expected: [String])
    /// A stanza unwrapped, but the header's MAC does not match: the header was altered.
    case headerMACMismatch(object: String?)
    /// The payload does not decrypt all the way to its end: altered, truncated or extended.
    case corruptPayload(object: String?, reason: String)
    /// A key, identity file or recipients file that does not parse.
    case invalidKey(source: String, reason: String)

    public var description: String {
        switch self {
        case let .malformedHeader(object, reason):
            return "\(Self.name(object)) is not a valid age file: \(reason); the stored object is damaged or was altered"
        case let .noMatchingIdentity(object, expected):
            let list = expected.isEmpty ? "" : " (it is encrypted to: \(expected.joined(separator: ", ")))"
            return "no identity given can decrypt \(Self.name(object))\(list); give the matching identity file with --identity FILE or $BACKSTOP_IDENTITY"
        case let .headerMACMismatch(object):
            return "\(Self.name(object)) failed authentication: its age header MAC does not match; the header was altered"
        case let .corruptPayload(object, reason):
            return "\(Self.name(object)) failed authentication: \(reason); the stored object is damaged, truncated or was altered"
        case let .invalidKey(source, reason):
            return "\(source): \(reason)"
        }
    }

    private static func name(_ object: String?) -> String { object ?? "the age file" }

    /// 77 for a missing or wrong key; 64 for a key given that does not parse; 65 for damaged data.
    public var exitStatus: ExitStatus {
        switch self {
        case .noMatchingIdentity: return .permissionDenied
        case .invalidKey: return .usage
        case .malformedHeader, .headerMACMismatch, .corruptPayload: return .integrity
        }
    }

    /// The same error, naming `object`.
    func naming(_ object: String) -> AgeError {
        switch self {
        case let .malformedHeader(_, r): return .malformedHeader(object: object, reason: r)
        case let .noMatchingIdentity(_, e): return .noMatchingIdentity(object: object, expected: e)
        case .headerMACMismatch: return .headerMACMismatch(object: object)
        case let .corruptPayload(_, r): return .corruptPayload(object: object, reason: r)
        case .invalidKey: return self
        }
    }
}
