import Foundation

/// What `verify --sample` checked of the frames themselves (format 2).
public struct FrameSampleReport: Codable, Sendable {
    /// The `frames/<ab>/` folders checked this time, and where the next sample starts.
    public var folders: [String]
    public var nextFolder: String
    /// Frames decoded and checked against their IDs (those already checked in this run count).
    public var framesChecked: Int
    /// Bad frames, each with the snapshots that use it (their history records the failure).
    public var bad: [BadFrame]

    public struct BadFrame: Codable, Sendable {
        public var key: String
        public var problem: String
        public var snapshots: [SnapshotID]
    }
}

extension Repository {
    /// How many of the 256 `frames/<ab>/` folders one sample checks: every frame about once in
    /// 30 sampled runs (a month of nightly runs).
    public static let frameSampleFolders = 9

    /// Checks the frames in the next `folders` folders of `frames/` (a rotation kept in the
    /// catalog): each frame some snapshot uses is decoded and checked against its ID, unless this
    /// run's `ledger` already knows it. A bad frame is recorded as a failed verification of every
    /// snapshot that uses it, so selection passes over them. For `verify --sample` and a policy's
    /// `sample`, beside the snapshots they verify.
    public func verifyFrameSample(folders count: Int = Repository.frameSampleFolders, ledger: FrameLedger,
                                  warn: ((String) -> Void)? = nil) throws -> FrameSampleReport {
        let start = Int(try catalog.meta("sample.nextFrameFolder") ?? "0") ?? 0
        let chosen = (0..<count).map { String(format: "%02x", (start + $0) % 256) }
        let next = String(format: "%02x", (start + count) % 256)
        var checked = 0
        var bad: [(key: StorageKey, id: SHA256Digest, problem: String)] = []
        let decompressor = ZstdDecompressor()
        for folder in chosen {
            for key in try storage.list(under: RepositoryLayout.frames.appending(folder)) {
                try Interruption.check()
                guard let id = SHA256Digest(hex: key.name), let sizes = try catalog.frameSizes(id) else { continue }
                checked += 1
                switch ledger.verdict(id) {
                case .some(.ok): continue
                case let .some(.bad(message)):
                    bad.append((key, id, message))
                    continue
                case nil: break
                }
                do {
                    let compressed = try storage.read(key)
                    let bytes = try compressed.withUnsafeBytes { try decompressor.decompressFrame($0, expectedSize: sizes.uncompressed) }
                    guard try storage.frameID(of: bytes) == id else { throw FrameObjectError.digestMismatch(key: key) }
                    ledger.record(id, .ok)
                } catch let error as Interrupted {
                    throw error
                } catch {
                    ledger.record(id, .bad("\(error)"))
                    bad.append((key, id, "\(error)"))
                }
            }
        }
        var report = FrameSampleReport(folders: chosen, nextFolder: next, framesChecked: checked, bad: [])
        if !bad.isEmpty {
            // Which snapshots use them: every frame list is read (bad frames are rare).
            var users: [SHA256Digest: [SnapshotID]] = [:]
            let wanted = Set(bad.map(\.id))
            for id in try snapshotIDs() {
                guard let m = try? manifest(id), let frames = try? SnapshotReader(repository: self, manifest: m).frameList() else { continue }
                for f in Set(frames.map(\.id)) where wanted.contains(f) { users[f, default: []].append(id) }
            }
            for b in bad {
                let snapshots = users[b.id] ?? []
                report.bad.append(.init(key: b.key.rawValue, problem: b.problem, snapshots: snapshots))
                for s in snapshots {
                    let result = VerificationResult(snapshot: s, source: nil, kind: nil, mode: .quick, startedAt: Date(), duration: 0, bytesRead: 0,
                                                    problems: [VerificationProblem(file: "frames.tsv", location: "\(b.key)", message: "\(b.problem) (found by the frame sample)")])
                    do { try recordVerification(result) } catch { warn?("the failure of \(s) could not be recorded: \(Catalog.explain(error))") }
                }
            }
        }
        do { try catalog.setMeta("sample.nextFrameFolder", "\((start + count) % 256)") } catch {
            warn?("the frame sample's rotation could not be saved: \(Catalog.explain(error)); the next sample checks the same folders")
        }
        return report
    }
}
