import Foundation
import Testing
@testable import Backstop

@Suite struct TimeParserTests {
    static let utc = TimeParser(timeZone: TimeZone(identifier: "UTC")!)
    static let berlin = TimeParser(timeZone: TimeZone(identifier: "Europe/Berlin")!)

    @Test(arguments: [
        ("2024-03-24T22:00:00Z", 1_711_317_600.0),
        ("2024-03-24T22:00:00.250Z", 1_711_317_600.25),
        ("2024-03-24T23:00:00+01:00", 1_711_317_600.0),
        ("2024-03-24T17:30:00-04:30", 1_711_317_600.0),
        ("2024-03-24T22:00:00", 1_711_317_600.0),
        ("2024-03-24 22:00", 1_711_317_600.0),
        ("2024-03-24", 1_711_238_400.0),
        ("@1711317600", 1_711_317_600.0),
    ])
    func acceptedFormsInUTC(text: String, expected: Double) throws {
        #expect(try Self.utc.parse(text).timeIntervalSince1970 == expected)
    }

    @Test func localTimesUseTheZone() throws {
        // CET (+01:00) in winter, CEST (+02:00) in summer.
        #expect(try Self.berlin.parse("2024-01-15T12:00:00") == Self.utc.parse("2024-01-15T11:00:00Z"))
        #expect(try Self.berlin.parse("2024-07-15T12:00:00") == Self.utc.parse("2024-07-15T10:00:00Z"))
        #expect(try Self.berlin.parse("2024-07-15") == Self.utc.parse("2024-07-14T22:00:00Z"))
        // An explicit offset wins over the zone.
        #expect(try Self.berlin.parse("2024-07-15T12:00:00Z") == Self.utc.parse("2024-07-15T12:00:00Z"))
    }

    @Test func aTimeInTheSpringGapIsAnError() {
        #expect(throws: TimeParseError.nonexistentLocalTime("2024-03-31T02:30:00", zone: "Europe/Berlin")) {
            try Self.berlin.parse("2024-03-31T02:30:00")
        }
    }

    @Test func aTimeInTheAutumnFoldIsAnError() {
        #expect(throws: TimeParseError.ambiguousLocalTime("2024-10-27T02:30:00", zone: "Europe/Berlin",
                                                          first: "2024-10-27T00:30:00Z", second: "2024-10-27T01:30:00Z")) {
            try Self.berlin.parse("2024-10-27T02:30:00")
        }
    }

    @Test(arguments: ["yesterday", "2024-13-01", "2024-02-30", "2024-03-24T25:00", "24-03-24", "@abc",
                      "2024-03-24T22:00:00+1", "2024-03-24T22:00:00 UTC", ""])
    func everythingElseIsAUsageErrorListingTheForms(text: String) {
        do {
            _ = try Self.utc.parse(text)
            Issue.record("accepted \(text)")
        } catch let error as TimeParseError {
            #expect(error.exitStatus == .usage)
            #expect(error.description.contains("accepted forms"))
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func tzFromTheEnvironment() throws {
        #expect(try TimeParser.fromEnvironment([:]).timeZone.secondsFromGMT(for: Date(timeIntervalSince1970: 1_720_000_000)) == 0)
        #expect(try TimeParser.fromEnvironment(["TZ": ":Europe/Berlin"]).timeZone.identifier == "Europe/Berlin")
        #expect(throws: TimeParseError.self) { try TimeParser.fromEnvironment(["TZ": "Mars/Olympus"]) }
    }

    // MARK: - Range, whole milliseconds, POSIX zones (issue 9.10)

    /// Proves: times no `Date`/`Int64` conversion can hold were a crash (SIGILL, exit 132) in
    /// `select`, `backup`, `event add`; now every one is a usage error that states the range.
    @Test(arguments: ["@1e20", "@9223372036854775807", "@-9223372036854775808", "@1e400", "@253402300800",
                      "@-62135596800.001", "10000-01-01", "0000-12-31T23:59:59Z", "9999-12-31T23:30:00-01:00",
                      "0001-01-01T00:30:00+01:00"])
    func timesOutsideTheRangeAreAUsageErrorStatingIt(text: String) {
        #expect(throws: TimeParseError.outOfRange(text)) { try Self.utc.parse(text) }
        let message = TimeParseError.outOfRange(text).description
        #expect(message.contains("0001-01-01T00:00:00Z") && message.contains("9999-12-31T23:59:59.999Z"))
        #expect(TimeParseError.outOfRange(text).exitStatus == .usage)
    }

    @Test(arguments: [("@-62135596800", Int64(-62_135_596_800_000)), ("0001-01-01T00:00:00Z", -62_135_596_800_000),
                      ("@253402300799.999", 253_402_300_799_999), ("9999-12-31T23:59:59.999Z", 253_402_300_799_999),
                      ("9999-12-31T23:59:59.999", 253_402_300_799_999)])
    func theEndsOfTheRangeAreAccepted(text: String, ms: Int64) throws {
        #expect(try Self.utc.parseMilliseconds(text) == ms)
        #expect(try Self.utc.parse(text).millisecondsSince1970 == ms)
    }

    /// Hand-derived: -2208988800 s is 1900-01-01 (the NTP epoch), -62135596800 s is year 1.
    @Test(arguments: [
        (Int64(-1), "1969-12-31T23:59:59.999Z"),
        (-1000, "1969-12-31T23:59:59.000Z"),
        (-1001, "1969-12-31T23:59:58.999Z"),
        (-18_489_539_223, "1969-06-01T00:01:00.777Z"),
        (-2_208_988_800_000, "1900-01-01T00:00:00.000Z"),
        (-62_135_596_800_000, "0001-01-01T00:00:00.000Z"),
        (951_782_400_000, "2000-02-29T00:00:00.000Z"),
        (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
    ])
    func millisecondsFormatAndParseExactly(ms: Int64, text: String) throws {
        #expect(Timestamp.format(milliseconds: ms) == text)
        #expect(Timestamp.format(Date(millisecondsSince1970: ms)) == text)
        #expect(Timestamp.parse(text)?.millisecondsSince1970 == ms)
        #expect(try Self.utc.parseMilliseconds(text) == ms)
    }

    /// Proves: before 1970 a time kept its milliseconds through format, parse, the catalog's
    /// integer column and truncation (`1969-06-01T00:01:00.777Z` was recorded as `.776Z`).
    /// Every millisecond of a second in 1969 and in 1901, and a seeded sample back to year 1.
    @Test func everyMillisecondBefore1970RoundTrips() throws {
        var values: [Int64] = Array(-18_489_540_000 ..< -18_489_539_000) + Array(-2_177_452_801_000 ..< -2_177_452_800_000)
        var rng = SeededBytes(seed: 1969)
        for _ in 0..<5000 { values.append(-Int64(rng.next() % 62_135_596_800_000)) }
        var failures: [String] = []
        for ms in values {
            let date = Date(millisecondsSince1970: ms)
            let text = Timestamp.format(date)
            if date.millisecondsSince1970 != ms || Catalog.millis(date) != ms || Catalog.date(ms) != date
                || Timestamp.truncatedToMillis(date) != date || Repository.truncatedToMillis(date) != date
                || Timestamp.parse(text) != date || (try? Self.utc.parse(text)) != date
                || (try? Self.utc.parse("@" + Self.unixSeconds(ms))) != date {
                failures.append("\(ms) -> \(text)")
            }
        }
        #expect(failures.isEmpty, "\(failures.count) of \(values.count): \(failures.prefix(5))")
        // The snapshot ID takes the second the time falls in, rounded down.
        #expect(SnapshotID(startedAt: Date(millisecondsSince1970: -1), suffix: 0).rawValue == "19691231T235959Z-00000000")
        #expect(SnapshotID(startedAt: Date(millisecondsSince1970: -18_489_539_223), suffix: 0).rawValue == "19690601T000100Z-00000000")
    }

    /// `@SECONDS` written by hand from milliseconds: `-1.5` for -1500.
    static func unixSeconds(_ ms: Int64) -> String {
        let sign = ms < 0 ? "-" : ""
        return sign + "\(ms.magnitude / 1000)." + String(String(ms.magnitude % 1000 + 1000).dropFirst())
    }

    @Test(arguments: [("@-0.0005", Int64(-1)), ("@-1.5", -1500), ("@1.9999", 1999), ("@+2", 2000), ("@1.7e9", 1_700_000_000_000)])
    func unixSecondsRoundDown(text: String, ms: Int64) throws {
        #expect(try Self.utc.parseMilliseconds(text) == ms)
    }

    /// Proves: `TZ=UTC+5` is five hours *behind* UTC, as glibc and POSIX read it (it was read as
    /// five hours ahead: 12:00 became 07:00Z). Expected values by hand.
    @Test(arguments: [
        ("UTC+5", "2024-03-24T17:00:00Z"), ("EST5", "2024-03-24T17:00:00Z"), ("GMT+5", "2024-03-24T17:00:00Z"),
        ("UTC-2", "2024-03-24T10:00:00Z"), ("<+0530>-5:30", "2024-03-24T06:30:00Z"), ("UTC0", "2024-03-24T12:00:00Z"),
        ("Etc/GMT+5", "2024-03-24T17:00:00Z"), (":Etc/GMT-2", "2024-03-24T10:00:00Z"),
        ("EST5EDT", "2024-03-24T16:00:00Z"), ("Europe/Berlin", "2024-03-24T11:00:00Z"),
    ])
    func posixOffsetsCountHoursWestOfUTC(tz: String, expected: String) throws {
        let parser = try TimeParser.fromEnvironment(["TZ": tz])
        #expect(try parser.parse("2024-03-24T12:00") == Self.utc.parse(expected), "TZ=\(tz)")
    }

    @Test func aPOSIXRuleWithDaylightSavingIsRefusedWithTheZoneNameToUse() {
        let rule = "CET-1CEST,M3.5.0,M10.5.0/3"
        #expect(throws: TimeParseError.unsupportedPOSIXZone(rule)) { try TimeParser.fromEnvironment(["TZ": rule]) }
        #expect(TimeParseError.unsupportedPOSIXZone(rule).description.contains("IANA name"))
    }
}
