import Foundation
import Testing
@testable import Backstop

/// Interoperability with Debian's `age` and `age-keygen` (installed by scripts/setup.sh --test;
/// a missing tool fails these tests): files we write decrypt with `age -d`, files `age` writes
/// decrypt with us, for X25519 keys and passphrases.
@Suite struct AgeInteropTests {
    /// Runs `command` under a pseudo-terminal (`script`), typing `typed`: `age -p` and `age -d`
    /// of a passphrase file read the passphrase from the terminal only.
    func withTerminal(_ command: String, typed: String, in dir: TemporaryDirectory) throws -> ProcessResult {
        try runProcess("script", ["-qec", command, "/dev/null"], input: Array(typed.utf8), directory: dir.path)
    }

    @Test func ageDecryptsWhatWeEncrypt() throws {
        let dir = TemporaryDirectory("age-interop")
        let identity = AgeIdentity.generate()
        try writeFile(dir.sub("key.txt"), Array(AgeKeyFile.text(for: identity).utf8), mode: 0o600)
        let plain = AgeTests.payload(3 * 65536 + 5)
        try writeFile(dir.sub("x.age"), try Age.encrypt(plain, to: [identity.recipient!, AgeIdentity.generate().recipient!]))
        let result = try runProcess("age", ["-d", "-i", dir.sub("key.txt"), dir.sub("x.age")])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == plain)
        // An empty payload too (one empty last chunk).
        try writeFile(dir.sub("e.age"), try Age.encrypt([], to: [identity.recipient!]))
        let empty = try runProcess("age", ["-d", "-i", dir.sub("key.txt"), dir.sub("e.age")])
        #expect(empty.status == 0 && empty.stdout.isEmpty, "\(empty.stderr)")
    }

    @Test func weDecryptWhatAgeEncryptsToAKeyFromAgeKeygen() throws {
        let dir = TemporaryDirectory("age-interop")
        let keygen = try runProcess("age-keygen", ["-o", dir.sub("key.txt")])
        #expect(keygen.status == 0, "\(keygen.stderr)")
        let identities = try AgeKeyFile.identities(atPath: dir.sub("key.txt"))
        let recipient = try runProcess("age-keygen", ["-y", dir.sub("key.txt")]).stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(identities.first?.recipient?.description == recipient)
        let plain = AgeTests.payload(2 * 65536)
        try writeFile(dir.sub("plain"), plain)
        let result = try runProcess("age", ["-r", recipient, "-o", dir.sub("x.age"), dir.sub("plain")])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try Age.decrypt(readFile(dir.sub("x.age")), identities: identities) == plain)
        // A recipients file, as `age -R` reads it.
        try writeFile(dir.sub("recipients.txt"), Array("# ops\n\(recipient)\n".utf8))
        #expect(try AgeKeyFile.recipients(atPath: dir.sub("recipients.txt")).map(\.description) == [recipient])
    }

    @Test func passphrasesInteroperateBothWays() throws {
        let dir = TemporaryDirectory("age-interop")
        let plain = AgeTests.payload(70_000)
        try writeFile(dir.sub("plain"), plain)
        let encrypted = try withTerminal("age -p -o theirs.age plain", typed: "s3cret pass\ns3cret pass\n", in: dir)
        #expect(encrypted.status == 0, "\(encrypted.stderr)")
        #expect(try Age.decrypt(readFile(dir.sub("theirs.age")), identities: [.scrypt(passphrase: Array("s3cret pass".utf8))]) == plain)

        try writeFile(dir.sub("ours.age"), try Age.encrypt(plain, to: [.scrypt(passphrase: Array("s3cret pass".utf8), workFactor: 14)]))
        let decrypted = try withTerminal("age -d -o out ours.age", typed: "s3cret pass\n", in: dir)
        #expect(decrypted.status == 0, "\(decrypted.stderr)")
        #expect(try readFile(dir.sub("out")) == plain)
    }

    @Test func ageRefusesOurFileWithTheWrongKeyAndWeRefuseTamperedOnes() throws {
        let dir = TemporaryDirectory("age-interop")
        let right = AgeIdentity.generate(), wrong = AgeIdentity.generate()
        try writeFile(dir.sub("wrong.txt"), Array(AgeKeyFile.text(for: wrong).utf8), mode: 0o600)
        try writeFile(dir.sub("x.age"), try Age.encrypt([1, 2, 3], to: [right.recipient!]))
        #expect(try runProcess("age", ["-d", "-i", dir.sub("wrong.txt"), dir.sub("x.age")]).status != 0)
    }
}
