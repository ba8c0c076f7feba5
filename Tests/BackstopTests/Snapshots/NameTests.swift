import Foundation
import Testing
@testable import Backstop

/// `Name`: the one rule for source names, tags and event names, and its messages.
@Suite struct NameTests {
    @Test(arguments: ["a", "mysql-datadir", "upgrade-11.4", "pg_cluster", "Ünïcode", "x.y_z-1", String(repeating: "n", count: 128),
                      String(repeating: "é", count: 64)])
    func validNames(name: String) throws {
        #expect(Name.isValid(name))
        for kind in [Name.Kind.source, .tag, .event] { try Name.validate(name, kind: kind) }
    }

    @Test(arguments: ["", " ", "two words", "a/b", "../x", "a,b", "a;b", "--x=y'", "tab\there", "new\nline", "$HOME", "a*",
                      String(repeating: "n", count: 129), String(repeating: "é", count: 65) /* 130 bytes */])
    func invalidNames(name: String) {
        #expect(!Name.isValid(name))
        for kind in [Name.Kind.source, .tag, .event] {
            #expect(throws: NameError.invalid(name, kind: kind)) { try Name.validate(name, kind: kind) }
        }
    }

    /// The messages are the ones each check gave before there was one rule: they name the kind
    /// of name and show a good one, as the user would type it.
    @Test func messagesNameTheKindAndAnExample() {
        #expect(NameError.invalid("bad name!", kind: .source).description
            == "source name \"bad name!\" is not allowed: use letters, digits, '.', '_' and '-' (for example --source mysql-datadir)")
        #expect(NameError.invalid("a b", kind: .event).description
            == "event name \"a b\" is not allowed: use letters, digits, '.', '_' and '-' (for example upgrade-11.4)")
        #expect(NameError.invalid("a,b", kind: .tag).description
            == "tag name \"a,b\" is not allowed: use letters, digits, '.', '_' and '-' (for example --tag nightly)")
        #expect(NameError.invalid("x", kind: .tag).exitStatus == .usage)
    }

    /// Proves: a tag is checked like a source name before anything is stored (before there was
    /// one rule, any tag was accepted, and `list` prints tags joined by commas).
    @Test func aBackupWithABadTagStoresNothing() throws {
        let dir = TemporaryDirectory()
        let repo = try makeRepository(dir)
        try writeFile(dir.sub("src/a"), [1])
        for tags in [["nightly", "a,b"], ["two words"]] {
            let options = BackupOptions(source: "data", tags: tags)
            #expect(throws: NameError.invalid(tags.last!, kind: .tag)) {
                try FilesystemSnapshotWriter(paths: [dir.sub("src")], options: options).write(to: repo)
            }
        }
        #expect(throws: NameError.invalid("bad name!", kind: .source)) {
            try FilesystemSnapshotWriter(paths: [dir.sub("src")], options: BackupOptions(source: "bad name!")).write(to: repo)
        }
        #expect(try repo.snapshots().isEmpty)
        #expect(try repo.snapshotFolders().isEmpty)
    }

    /// Event names follow the same rule through `addEvent`.
    @Test func anEventWithABadNameIsRefused() throws {
        let dir = TemporaryDirectory()
        let repo = try makeRepository(dir)
        #expect(throws: NameError.invalid("two words", kind: .event)) { try repo.addEvent(name: "two words", at: Date(), note: nil) }
        #expect(try repo.events().isEmpty)
    }
}
