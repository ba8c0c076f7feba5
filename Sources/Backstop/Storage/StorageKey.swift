import Foundation

/// The name of a stored object, relative to the repository: `snapshots/<id>/manifest.json`.
///
/// Keys are what the repository is addressed by, on every backend; never a local path. A key is
/// one or more components separated by `/`, none of them empty, `.` or `..`, none holding a NUL
/// byte, so a key can never name anything outside the repository, whatever the backend makes of it.
public struct StorageKey: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: String

    /// A key from components the code built itself (names of IDs already validated). A component
    /// that could escape the repository is a programming error.
    public init(_ components: String...) {
        self.init(components: components)
    }

    public init(components: [String]) {
        precondition(!components.isEmpty, "a storage key needs at least one component")
        for c in components { precondition(Self.isValidComponent(c), "invalid storage key component \(String(reflecting: c))") }
        rawValue = components.joined(separator: "/")
    }

    /// A key read from outside (a listing): nil when any component is invalid.
    public init?(validating text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard !parts.isEmpty, parts.allSatisfy(Self.isValidComponent) else { return nil }
        rawValue = text
    }

    public static func isValidComponent(_ c: String) -> Bool {
        !c.isEmpty && c != "." && c != ".." && !c.contains("/") && !c.utf8.contains(0)
    }

    public var components: [String] { rawValue.split(separator: "/").map(String.init) }

    /// The last component.
    public var name: String { components.last! }

    /// This key with `component` appended.
    public func appending(_ component: String) -> StorageKey {
        StorageKey(components: components + [component])
    }

    /// The key of the folder-like prefix that holds this key; nil at the top.
    public var parent: StorageKey? {
        let c = components
        return c.count > 1 ? StorageKey(components: Array(c.dropLast())) : nil
    }

    /// Whether this key is `prefix` itself or lies below it.
    public func isWithin(_ prefix: StorageKey) -> Bool {
        rawValue == prefix.rawValue || rawValue.hasPrefix(prefix.rawValue + "/")
    }

    public var description: String { rawValue }

    public static func < (a: StorageKey, b: StorageKey) -> Bool { a.rawValue < b.rawValue }
}
