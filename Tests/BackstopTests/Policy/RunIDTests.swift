import Foundation
import Testing
@testable import Backstop

/// `RunID`: a snapshot ID's form, validated when made, and the plain JSON string manifests
/// have always stored.
@Suite struct RunIDTests {
    /// A manifest as backstop wrote it before `RunID` was a type (taken from a `backstop run`).
    static let storedManifest = """
        {
          "bytesIn" : 4608,
          "bytesStored" : 459,
          "completedAt" : "2024-03-24T22:00:00.005Z",
          "entryCount" : 2,
          "files" : [
            {
              "name" : "data.tar.zst",
              "sha256" : "9498aebce73a9549a345030c293fe2ee6d4ce66638840ad23477cffd889d1b36",
              "size" : 226
            },
            {
              "name" : "entries.jsonl.zst",
              "sha256" : "c8ccf009173321a3d9a3dc4a93b9fadbf6f8b1e2ac5e2827070f14abca5a6f65",
              "size" : 233
            }
          ],
          "format" : 1,
          "frames" : [
            {
              "compressedOffset" : 0,
              "compressedSize" : 201,
              "uncompressedOffset" : 0,
              "uncompressedSize" : 4608
            }
          ],
          "host" : "vm",
          "id" : "20240324T220000Z-1a12925a",
          "kind" : "filesystem",
          "paths" : [
            "/tmp/tmp.FmWZBuoy5P/data"
          ],
          "runID" : "20240324T220000Z-d568b159",
          "sections" : [

          ],
          "sha256" : "f79ffed3bd309bd79a2706c3168ba6dd25737a51e5ab91f3a951cf948107862b",
          "source" : "data",
          "startedAt" : "2024-03-24T22:00:00.000Z",
          "tags" : [
            "nightly"
          ],
          "toolVersion" : "0.1.0",
          "warnings" : [

          ]
        }
        """

    @Test func aStoredManifestDecodesAndEncodesTheSameJSON() throws {
        let manifest = try Timestamp.jsonDecoder().decode(Manifest.self, from: Data(Self.storedManifest.utf8))
        #expect(manifest.runID == RunID("20240324T220000Z-d568b159"))
        #expect(manifest.runID?.rawValue == "20240324T220000Z-d568b159")
        let again = try Timestamp.jsonEncoder().encode(manifest)
        let before = try JSONSerialization.jsonObject(with: Data(Self.storedManifest.utf8)) as? NSDictionary
        let after = try JSONSerialization.jsonObject(with: again) as? NSDictionary
        #expect(before != nil && before == after)
        // A manifest of a snapshot no run took has no runID key, before and after.
        var single = manifest
        single.runID = nil
        let text = String(decoding: try Timestamp.jsonEncoder().encode(single), as: UTF8.self)
        #expect(!text.contains("runID"))
        #expect(try Timestamp.jsonDecoder().decode(Manifest.self, from: Data(text.utf8)).runID == nil)
    }

    @Test func aRunIDThatIsNotOneDoesNotDecode() {
        let bad = Self.storedManifest.replacingOccurrences(of: "\"20240324T220000Z-d568b159\"", with: "\"run-1\"")
        #expect(throws: DecodingError.self) { try Timestamp.jsonDecoder().decode(Manifest.self, from: Data(bad.utf8)) }
    }

    @Test(arguments: ["", "run-1", "20240324T220000Z", "20240324T220000Z-1A2B3C4D", "20241324T220000Z-1a2b3c4d", " 20240324T220000Z-1a2b3c4d"])
    func invalidRunIDs(text: String) {
        #expect(RunID(text) == nil)
        #expect(RunID(rawValue: text) == nil)
    }

    @Test func aNewRunIDHasTheSnapshotIDForm() throws {
        let id = RunID(startedAt: Date(timeIntervalSince1970: 1_711_317_600.5))
        #expect(id.rawValue.hasPrefix("20240324T220000Z-"))
        #expect(SnapshotID(id.rawValue) != nil)
        #expect(RunID(id.rawValue) == id)
        #expect(id.description == id.rawValue)
        #expect(String(decoding: try JSONEncoder().encode([id]), as: UTF8.self) == "[\"\(id.rawValue)\"]")
    }
}
