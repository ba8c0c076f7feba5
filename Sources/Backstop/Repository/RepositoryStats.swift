import Foundation

/// The repository's sizes: what its snapshots hold, what they would take stored one by one, and
/// what they take with frames stored once (`backstop stats`).
public struct RepositoryStats: Codable, Sendable, Equatable {
    public var snapshots: Int
    /// Uncompressed bytes of every snapshot's stream, added up.
    public var logicalBytes: Int64
    /// Stored bytes if every snapshot kept its own copy of its frames.
    public var storedBytes: Int64
    /// Distinct frames in use, and their stored bytes.
    public var frames: Int
    public var frameBytes: Int64
    /// The snapshots' own files (manifest, SHA256SUMS, frame and entry lists).
    public var snapshotFileBytes: Int64
    /// What the repository takes: frames once, plus the snapshots' own files.
    public var deduplicatedBytes: Int64 { frameBytes + snapshotFileBytes }
    /// `storedBytes / deduplicatedBytes`.
    public var deduplicationRatio: Double { deduplicatedBytes > 0 ? Double(storedBytes) / Double(deduplicatedBytes) : 1 }

    enum CodingKeys: String, CodingKey {
        case snapshots, logicalBytes, storedBytes, frames, frameBytes, snapshotFileBytes, deduplicatedBytes, deduplicationRatio
    }

    public init(snapshots: Int, logicalBytes: Int64, storedBytes: Int64, frames: Int, frameBytes: Int64, snapshotFileBytes: Int64) {
        self.snapshots = snapshots
        self.logicalBytes = logicalBytes
        self.storedBytes = storedBytes
        self.frames = frames
        self.frameBytes = frameBytes
        self.snapshotFileBytes = snapshotFileBytes
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(snapshots: try c.decode(Int.self, forKey: .snapshots), logicalBytes: try c.decode(Int64.self, forKey: .logicalBytes),
                  storedBytes: try c.decode(Int64.self, forKey: .storedBytes), frames: try c.decode(Int.self, forKey: .frames),
                  frameBytes: try c.decode(Int64.self, forKey: .frameBytes), snapshotFileBytes: try c.decode(Int64.self, forKey: .snapshotFileBytes))
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(snapshots, forKey: .snapshots)
        try c.encode(logicalBytes, forKey: .logicalBytes)
        try c.encode(storedBytes, forKey: .storedBytes)
        try c.encode(frames, forKey: .frames)
        try c.encode(frameBytes, forKey: .frameBytes)
        try c.encode(snapshotFileBytes, forKey: .snapshotFileBytes)
        try c.encode(deduplicatedBytes, forKey: .deduplicatedBytes)
        try c.encode((deduplicationRatio * 100).rounded() / 100, forKey: .deduplicationRatio)
    }
}

extension Repository {
    /// The repository's sizes, from the catalog (its frame index) and a listing of `snapshots/`.
    public func stats() throws -> RepositoryStats {
        let snapshots = try catalog.snapshots()
        let frames = try catalog.frameTotals()
        var own: Int64 = 0
        for key in try storage.list(under: RepositoryLayout.snapshots) {
            own += (try storage.size(of: key)) ?? 0
        }
        return RepositoryStats(snapshots: snapshots.count, logicalBytes: snapshots.reduce(0) { $0 + $1.bytesIn },
                               storedBytes: snapshots.reduce(0) { $0 + $1.bytesStored }, frames: frames.frames,
                               frameBytes: frames.compressed, snapshotFileBytes: own)
    }
}
