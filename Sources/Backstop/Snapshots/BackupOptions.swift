import Foundation

/// What every backup records besides its payload.
public struct BackupOptions: Sendable {
    public var source: String
    public var tags: [String]
    /// Record the snapshot as started at this time (restic's `backup --time`); nil means now.
    /// The completion time is then this time plus the real duration.
    public var time: Date?
    public var host: String
    public var runID: RunID?
    public var compressionLevel: Int32?
    /// Filesystem snapshots: reuse the frames of files unchanged since the parent snapshot (the
    /// source's newest from this host) without reading them. Off, every file is read.
    public var filesCache = true

    public init(source: String, tags: [String] = [], time: Date? = nil, host: String? = nil, runID: RunID? = nil) {
        self.source = source
        self.tags = tags
        self.time = time
        self.host = host ?? ProcessIdentity.hostName
        self.runID = runID
    }

    func validate() throws {
        try Name.validate(source, kind: .source)
        for tag in tags { try Name.validate(tag, kind: .tag) }
    }
}

/// Progress of a backup, reported about every megabyte.
public struct BackupProgress: Sendable {
    public var bytesIn: Int64
    public var entries: Int
    /// The file being read (filesystem snapshots), in the entry list's display form.
    public var current: String? = nil
}
