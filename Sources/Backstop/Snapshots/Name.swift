import Foundation

/// The one rule for the names people give things: source names, tags and event names.
///
/// 1 to 128 bytes of UTF-8, each character a letter, a digit, '.', '_' or '-': a name is safe
/// as a word in a shell command, a path component and an item of a comma-separated list
/// (`list` prints tags joined by commas), and never reads as an option.
public enum Name {
    /// What a name names, for its error message.
    public enum Kind: String, Sendable {
        case source, tag, event

        /// An example of a good name, as the user would give it.
        var example: String {
            switch self {
            case .source: return "--source mysql-datadir"
            case .tag: return "--tag nightly"
            case .event: return "upgrade-11.4"
            }
        }
    }

    /// The characters a name may use, as messages say it.
    public static let allowed = "letters, digits, '.', '_' and '-'"

    /// The longest name, in bytes of UTF-8.
    public static let maximumLength = 128

    public static func isValid(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= maximumLength && name.unicodeScalars.allSatisfy {
            CharacterSet.alphanumerics.contains($0) || $0 == "." || $0 == "_" || $0 == "-"
        }
    }

    /// Throws `NameError.invalid` when `name` breaks the rule.
    public static func validate(_ name: String, kind: Kind) throws {
        guard isValid(name) else { throw NameError.invalid(name, kind: kind) }
    }
}

/// A source name, tag or event name that breaks `Name`'s rule. Nothing is stored when it is thrown.
public enum NameError: Error, Equatable, CustomStringConvertible, ExitStatusProviding {
    case invalid(String, kind: Name.Kind)

    public var description: String {
        switch self {
        case let .invalid(name, kind):
            return "\(kind.rawValue) name \"\(name)\" is not allowed: use \(Name.allowed) (for example \(kind.example))"
        }
    }

    public var exitStatus: ExitStatus { .usage }
}
