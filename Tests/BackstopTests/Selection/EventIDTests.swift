import Foundation
import Testing
@testable import Backstop

/// `EventID`: a snapshot ID's form, validated when made, and the plain JSON string that
/// `events/<id>.json` has always stored.
@Suite struct EventIDTests {
    /// An event file as backstop wrote it before `EventID` was a type (`backstop event add`).
    static let storedEvent = """
        {
          "at" : "2024-03-25T08:00:00.000Z",
          "id" : "20240325T080000Z-2be59581",
          "name" : "upgrade",
          "note" : "MariaDB 11.4"
        }
        """

    @Test func aStoredEventDecodesAndEncodesTheSameJSON() throws {
        let event = try Timestamp.jsonDecoder().decode(Event.self, from: Data(Self.storedEvent.utf8))
        #expect(event.id == EventID("20240325T080000Z-2be59581"))
        #expect(event.name == "upgrade" && event.note == "MariaDB 11.4")
        let before = try JSONSerialization.jsonObject(with: Data(Self.storedEvent.utf8)) as? NSDictionary
        let after = try JSONSerialization.jsonObject(with: try Timestamp.jsonEncoder().encode(event)) as? NSDictionary
        #expect(before != nil && before == after)
    }

    @Test func anEventIDThatIsNotOneDoesNotDecode() {
        let bad = Self.storedEvent.replacingOccurrences(of: "20240325T080000Z-2be59581", with: "../../snapshots/x")
        #expect(throws: DecodingError.self) { try Timestamp.jsonDecoder().decode(Event.self, from: Data(bad.utf8)) }
    }

    @Test(arguments: ["", "upgrade", "2be59581", "20240325T080000Z-2be5958", "20240325T250000Z-2be59581", "../20240325T080000Z-2be59581"])
    func invalidEventIDs(text: String) {
        #expect(EventID(text) == nil)
        #expect(EventID(rawValue: text) == nil)
    }

    @Test func aNewEventHasAnIDOfItsTime() throws {
        let event = Event(name: "upgrade", at: Date(timeIntervalSince1970: 1_711_353_600), note: nil)
        #expect(event.id.rawValue.hasPrefix("20240325T080000Z-"))
        #expect(EventID(event.id.rawValue) == event.id)
        #expect(event.id.description == event.id.rawValue)
    }
}
