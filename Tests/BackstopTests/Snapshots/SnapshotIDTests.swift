import Foundation
import Testing
@testable import Backstop

/// `SnapshotID`: its one textual form, its order, its JSON form, and the prefixes that resolve to it.
@Suite struct SnapshotIDTests {
    @Test func formatsTheUTCStartSecondAndEightLowercaseHexCharacters() {
        // 2024-03-24T22:00:00.999Z: milliseconds are dropped, not rounded up.
        let id = SnapshotID(startedAt: Date(timeIntervalSince1970: 1_711_317_600.999), suffix: 0x1a2b_3c4d)
        #expect(id.rawValue == "20240324T220000Z-1a2b3c4d")
        #expect(id.suffix == "1a2b3c4d")
        #expect(id.description == id.rawValue)
        // Small suffixes are zero-padded to 8 characters.
        #expect(SnapshotID(startedAt: Date(timeIntervalSince1970: 0), suffix: 0xab).rawValue == "19700101T000000Z-000000ab")
        // Before 1970 the second is floored, not truncated towards zero.
        #expect(SnapshotID(startedAt: Date(timeIntervalSince1970: -0.5), suffix: 0).rawValue == "19691231T235959Z-00000000")
        // A leap day.
        #expect(SnapshotID(startedAt: Date(timeIntervalSince1970: 1_709_164_800), suffix: 1).rawValue == "20240229T000000Z-00000001")
    }

    @Test func parsingGivesBackWhatWasFormatted() {
        for seconds in [0.0, 951_782_400, 1_711_317_600, 4_102_444_799] {
            let id = SnapshotID(startedAt: Date(timeIntervalSince1970: seconds), suffix: 0xdead_beef)
            #expect(SnapshotID(id.rawValue) == id)
        }
    }

    @Test(arguments: [
        "",
        "20240324T220000Z-1a2b3c4",           // suffix too short
        "20240324T220000Z-1a2b3c4d0",         // suffix too long
        "20240324T220000Z-1A2B3C4D",          // uppercase hex
        "20240324T220000Z-1a2b3c4g",          // not hex
        "20240324T220000-1a2b3c4d",           // no Z
        "20240324t220000Z-1a2b3c4d",          // lowercase t
        "20240324T220000Z_1a2b3c4d",          // wrong separator
        "2024032XT220000Z-1a2b3c4d",          // letter in the date
        "20240324T22000xZ-1a2b3c4d",          // letter in the time
        "2024-03-24T22:00:00Z-1a2b3c4d",      // ISO 8601 punctuation
        " 20240324T220000Z-1a2b3c4",          // leading space
        "20240324T220000Z-1a2b3c4d\n",        // trailing newline
        "２0240324T220000Z-1a2b3c4d",          // a fullwidth digit
        "../20240324T220000Z-1a2b3c4d",       // a path
    ])
    func rejectsAnythingButAWholeID(_ text: String) {
        #expect(SnapshotID(text) == nil)
    }

    @Test func sortsByTimeThenSuffix() {
        let t = 1_711_317_600.0
        let expected = [
            SnapshotID(startedAt: Date(timeIntervalSince1970: -86_400), suffix: 0xffff_ffff),
            SnapshotID(startedAt: Date(timeIntervalSince1970: t), suffix: 0),
            SnapshotID(startedAt: Date(timeIntervalSince1970: t), suffix: 0x0000_000a),
            SnapshotID(startedAt: Date(timeIntervalSince1970: t), suffix: 0xffff_ffff),
            SnapshotID(startedAt: Date(timeIntervalSince1970: t + 1), suffix: 0),
            SnapshotID(startedAt: Date(timeIntervalSince1970: t + 86_400 * 400), suffix: 5),
        ]
        var shuffled = expected
        var rng = SeededBytes(seed: 7)
        for i in stride(from: shuffled.count - 1, to: 0, by: -1) {
            shuffled.swapAt(i, Int(rng.next() % UInt64(i + 1)))
        }
        #expect(shuffled.sorted() == expected)
        #expect(expected[1] < expected[2] && !(expected[2] < expected[1]))
        #expect(!(expected[1] < expected[1]))
    }

    @Test func encodesAsAJSONStringAndRefusesABadOne() throws {
        let id = SnapshotID(startedAt: Date(timeIntervalSince1970: 1_711_317_600), suffix: 0x1a2b_3c4d)
        let json = try JSONEncoder().encode([id])
        #expect(String(decoding: json, as: UTF8.self) == #"["20240324T220000Z-1a2b3c4d"]"#)
        #expect(try JSONDecoder().decode([SnapshotID].self, from: json) == [id])
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode([SnapshotID].self, from: Data(#"["20240324T220000Z-1A2B3C4D"]"#.utf8))
        }
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode([SnapshotID].self, from: Data("[20240324]".utf8))
        }
    }

    @Test(arguments: Backends.allCases)
    func resolvesAWholeIDOrAUniquePrefixOfTheIDOrOfItsSuffix(backend: Backends) throws {
        let dir = TemporaryDirectory()
        let repo = try backend.makeRepository(dir).repo
        try writeFile(dir.sub("src/a"), [1])
        func take(_ seconds: Double) throws -> SnapshotID {
            var options = BackupOptions(source: "s")
            options.time = Date(timeIntervalSince1970: seconds)
            return try FilesystemSnapshotWriter(paths: [dir.sub("src")], options: options).write(to: repo).id
        }
        let march = try take(1_711_317_600)       // 2024-03-24
        let april = try take(1_712_000_000)       // 2024-04-01
        let aprilToo = try take(1_712_000_000)    // same second, other suffix

        #expect(try repo.resolve(march.rawValue) == march)
        #expect(try repo.resolve("202403") == march)
        #expect(try repo.resolve(march.suffix) == march)
        #expect(try repo.resolve(String(march.suffix.prefix(8)).uppercased()) == march)

        // A prefix both April snapshots share is ambiguous, and the error names both.
        do {
            _ = try repo.resolve("202404")
            Issue.record("an ambiguous prefix resolved")
        } catch let RepositoryError.ambiguousSnapshot(prefix, matches) {
            #expect(prefix == "202404")
            #expect(Set(matches) == [april, aprilToo])
        }
        // Their whole IDs still resolve.
        #expect(try repo.resolve(april.rawValue) == april)
        #expect(try repo.resolve(aprilToo.rawValue) == aprilToo)

        // A well-formed ID that is not in the repository, an empty text, and no match at all.
        let absent = SnapshotID(startedAt: Date(timeIntervalSince1970: 1_600_000_000), suffix: 0x1234_5678)
        for text in [absent.rawValue, "", "2019", "zz"] {
            do {
                _ = try repo.resolve(text)
                Issue.record("\(text.debugDescription) resolved")
            } catch let RepositoryError.snapshotNotFound(what) {
                #expect(what == text)
            }
        }
    }
}

extension SnapshotIDTests {
    /// An ID names a UTC second that exists: a folder named after an impossible time is not a
    /// snapshot (it would otherwise be cataloged with a time no snapshot could have started at).
    @Test(arguments: [
        "20241301T000000Z-1a2b3c4d",   // month 13
        "20240001T000000Z-1a2b3c4d",   // month 0
        "20240100T000000Z-1a2b3c4d",   // day 0
        "20240132T000000Z-1a2b3c4d",   // January 32
        "20230229T000000Z-1a2b3c4d",   // February 29 of a common year
        "20240431T000000Z-1a2b3c4d",   // April 31
        "20240324T240000Z-1a2b3c4d",   // hour 24
        "20240324T226000Z-1a2b3c4d",   // minute 60
        "20240324T220060Z-1a2b3c4d",   // second 60
    ])
    func rejectsTimesThatDoNotExist(_ text: String) {
        #expect(SnapshotID(text) == nil)
    }

    @Test func acceptsTheLastSecondOfEachMonthOfALeapYear() {
        for (month, day) in [(1, 31), (2, 29), (3, 31), (4, 30), (6, 30), (12, 31)] {
            let text = String(format: "2024%02d%02dT235959Z-00000000", month, day)
            #expect(SnapshotID(text)?.rawValue == text)
        }
    }
}
