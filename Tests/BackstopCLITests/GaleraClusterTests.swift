import Foundation
import Testing

/// The 3-node Galera cluster harness (scripts/galera-cluster.sh) the Galera drill runs on: three
/// real MariaDB servers on 127.0.0.1 ports chosen at run time, node 1 bootstrapping, nodes 2 and 3
/// joining by state transfer. A row written on node 3 is read on node 1 and is in node 1's binlog
/// (what point-in-time recovery archives); `kill` leaves no server running.
@Suite(.tags(.liveServer, .slow), .needsLiveServer) struct GaleraClusterTests {
    static let script: String = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        return root + "/scripts/galera-cluster.sh"
    }()

    @Test func aRowWrittenOnNode3IsReadOnNode1AndInItsBinlog() throws {
        let work = Scratch()
        chmod(work.path, 0o755)
        let cluster = work.sub("cluster")
        let g = "'\(Self.script)'"
        defer { _ = try? sh("\(g) kill '\(cluster)'") }
        try sh("\(g) start '\(cluster)' 2>&1")
        let status = try sh("\(g) status '\(cluster)'")
        for n in 1...3 {
            #expect(status.contains("node\(n) pid=") && status.split(separator: "\n").filter { $0.hasPrefix("node\(n) ") }.first?.hasSuffix("size=3 state=Synced") == true, "\(status)")
        }
        // Every port differs, and each node listens on 127.0.0.1 only.
        let ports = try sh("grep -o '[0-9]\\{2,\\}' '\(cluster)/ports.env'").split(separator: "\n")
        #expect(ports.count == 12 && Set(ports).count == 12, "\(ports)")
        for n in 1...3 {
            #expect(try sh("\(g) sql '\(cluster)' \(n) -e 'SELECT @@bind_address'") == "127.0.0.1\n")
        }

        try sh("\(g) sql '\(cluster)' 3 -e \"CREATE DATABASE probe; CREATE TABLE probe.t (id INT PRIMARY KEY, note VARCHAR(40)); INSERT INTO probe.t VALUES (1, 'written on node 3')\"")
        // Galera applies a write on the other nodes after the commit returns: a read that must see
        // it waits for the node to catch up (wsrep_sync_wait), as the drill's checks do.
        for n in [1, 2] {
            #expect(try sh("\(g) sql '\(cluster)' \(n) -e 'SET SESSION wsrep_sync_wait = 1; SELECT note FROM probe.t WHERE id = 1'") == "written on node 3\n")
        }
        let binlog = try sh("\(g) sql '\(cluster)' 1 -e 'SHOW MASTER STATUS' | cut -f1")
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(!binlog.isEmpty, "node 1 writes a binlog")
        let events = try sh("mariadb-binlog --base64-output=decode-rows -v '\(cluster)/node1/data/\(binlog)'")
        #expect(events.contains("'written on node 3'"), "node 1's binlog holds node 3's write (log-slave-updates)")

        let pids = try sh("\(g) pids '\(cluster)'").split(separator: "\n")
        #expect(pids.count == 3)
        try sh("\(g) kill '\(cluster)'")
        for pid in pids { #expect(kill(Int32(pid)!, 0) != 0, "node pid \(pid) still runs after kill") }
        #expect(try sh("\(g) pids '\(cluster)'").isEmpty)
    }
}
