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
}
