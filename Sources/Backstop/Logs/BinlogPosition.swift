import Foundation

/// Where in the binlog a dump's data ends: what `mariadb-dump --master-data=2` (MySQL:
/// `--source-data=2`) writes as a comment, `-- CHANGE MASTER TO MASTER_LOG_FILE='mysql-bin.000042',
/// MASTER_LOG_POS=1234;`, and with `--gtid` the GTID state, `-- SET GLOBAL gtid_slave_pos='0-1-57';`.
/// A point-in-time restore replays the binlog from here.
public struct BinlogPosition: Codable, Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var position: Int64
    public var gtid: String?

    public init(file: String, position: Int64, gtid: String? = nil) {
        self.file = file
        self.position = position
        self.gtid = gtid
    }

    public var description: String { "\(file):\(position)" + (gtid.map { " (GTID \($0))" } ?? "") }

    /// Reads a `CHANGE MASTER TO` / `CHANGE REPLICATION SOURCE TO` line (commented or not):
    /// the file and position, or nil when the line is not one.
    static func parseChangeMaster(_ line: String) -> (file: String, position: Int64)? {
        var text = Substring(line)
        if text.hasPrefix("-- ") { text = text.dropFirst(3) }
        guard text.hasPrefix("CHANGE MASTER TO") || text.hasPrefix("CHANGE REPLICATION SOURCE TO") else { return nil }
        func value(_ keys: [String]) -> String? {
            for key in keys {
                guard let r = text.range(of: key + "=") else { continue }
                var rest = text[r.upperBound...]
                if rest.hasPrefix("'") {
                    rest = rest.dropFirst()
                    guard let end = rest.firstIndex(of: "'") else { return nil }
                    return String(rest[..<end])
                }
                return String(rest.prefix { $0.isNumber })
            }
            return nil
        }
        guard let file = value(["MASTER_LOG_FILE", "SOURCE_LOG_FILE"]), !file.isEmpty,
              let pos = value(["MASTER_LOG_POS", "SOURCE_LOG_POS"]).flatMap({ Int64($0) }) else { return nil }
        return (file, pos)
    }

    /// Reads `SET GLOBAL gtid_slave_pos='…'` (commented or not).
    static func parseGTID(_ line: String) -> String? {
        var text = Substring(line)
        if text.hasPrefix("-- ") { text = text.dropFirst(3) }
        for prefix in ["SET GLOBAL gtid_slave_pos='", "SET GLOBAL gtid_current_pos='"] where text.hasPrefix(prefix) {
            let rest = text.dropFirst(prefix.count)
            guard let end = rest.firstIndex(of: "'") else { return nil }
            return String(rest[..<end])
        }
        return nil
    }
}
