import Foundation
import Testing
@testable import Backstop

/// The S3 backend against real local S3 servers (`S3Server`): what the shared backend tests
/// (`Backends.s3`, on moto) do not cover: signatures checked by a strict server, the
/// conditional-write probe on a store that honours it and one that ignores it, retries and what
/// follows them, leases without conditional writes, the catalog cache, partial reads.
@Suite(.tags(.liveServer), .needsLiveServer) struct S3BackendTests {
    /// rclone checks signatures: ours pass (an object goes in and comes back), a wrong secret is
    /// refused, and that refusal is 77 naming what to check.
    @Test func rcloneAcceptsOurSignaturesAndRefusesAWrongSecret() throws {
        let server = try S3Server.shared(.rclone)
        let good = server.backend()
        let key = StorageKey("snapshots", "x", "a b+c=d.txt")
        #expect(try good.put(key, Array("hello".utf8), mode: .replace) == .stored)
        #expect(try good.read(key) == Array("hello".utf8))
        #expect(try good.list(under: StorageKey("snapshots")) == [key])
        let bad = server.backend(prefix: good.configuration.prefix, secret: "not-the-secret")
        do {
            _ = try bad.read(key)
            Issue.record("a wrong secret was accepted")
        } catch let error as S3Error {
            #expect(error.exitStatus == .permissionDenied)
            #expect(error.exitStatus.rawValue == 77)
            let text = error.description
            #expect(text.contains("SignatureDoesNotMatch") || text.contains("AccessDenied") || text.contains("403"), "\(text)")
            #expect(text.contains("AWS_SECRET_ACCESS_KEY") && text.contains(server.endpoint), "\(text)")
        }
    }

    /// moto honours `If-None-Match: *`, rclone ignores it; on both a create-only put of a key
    /// that is there leaves it as it was.
    @Test(arguments: [S3Server.Kind.moto, .rclone])
    func theProbeFindsWhetherConditionalWritesAreHonoured(kind: S3Server.Kind) throws {
        let server = try S3Server.shared(kind)
        let storage = server.backend()
        #expect(try storage.conditionalWritesHonoured() == (kind == .moto))
        let key = StorageKey("frames", "ab", "abcdef")
        #expect(try storage.put(key, Array("first".utf8), mode: .createOnly) == .stored)
        let putsBefore = storage.requestCounts["PUT", default: 0]
        #expect(try storage.put(key, Array("second".utf8), mode: .createOnly) == .alreadyPresent)
        #expect(try storage.read(key) == Array("first".utf8))
        // Where the header is ignored, the second put is a HEAD and no PUT at all.
        if kind == .rclone { #expect(storage.requestCounts["PUT", default: 0] == putsBefore) }
        // The probe leaves nothing behind.
        #expect(try storage.list(under: StorageKey("locks")).isEmpty)
    }

    /// Nobody listening: every attempt is made, then 69 naming the endpoint and the last error.
    @Test func anUnreachableServerIsRetriedThenExit69() throws {
        let port = try freePort()
        var config = S3Configuration(bucket: "b-1", prefix: "p", endpoint: URL(string: "http://127.0.0.1:\(port)")!, region: "us-east-1",
                                     credentials: .init(accessKeyID: "a", secretAccessKey: "s"), addressing: .path)
        config.maxAttempts = 3
        config.baseDelay = 0.01
        let storage = S3Backend(config)
        do {
            _ = try storage.size(of: StorageKey("backstop.json"))
            Issue.record("no error from a server that is not there")
        } catch let error as S3Error {
            #expect(error.exitStatus.rawValue == 69)
            #expect(error.description.contains("127.0.0.1:\(port)") && error.description.contains("3 attempts"), "\(error)")
            #expect(error.description.lowercased().contains("refused"), "\(error)")
        }
        #expect(storage.requestCounts["HEAD"] == 3)
    }

    /// A server that answers 503 SlowDown, then resets a connection, then answers: the read
    /// succeeds after the retries; one that only ever fails is 69 with its last answer.
    @Test func slowDownAndResetsAreRetried() throws {
        let flaky = try FlakyServer(failures: ["slowdown", "slowdown", "reset"])
        let storage = S3Backend(flaky.configuration(attempts: 5))
        #expect(try storage.read(StorageKey("frames", "aa", "x")) == Array("hello".utf8))
        #expect(storage.requestCounts["GET"] == 4)

        let down = try FlakyServer(failures: Array(repeating: "slowdown", count: 10))
        let failing = S3Backend(down.configuration(attempts: 3))
        do {
            _ = try failing.read(StorageKey("frames", "aa", "x"))
            Issue.record("no error after the retries")
        } catch let error as S3Error {
            #expect(error.exitStatus == .unavailable)
            #expect(error.description.contains("SlowDown") && error.description.contains(down.endpoint), "\(error)")
        }
    }

    /// A create-only put stored by the server whose answer was lost (the connection closed)
    /// is retried; the retry's 412 is its own object, so the put is `.stored`, not
    /// `.alreadyPresent` (which a snapshot's commit turns into "File exists"). Another
    /// content under the key stays `.alreadyPresent`.
    @Test func aCreateOnlyPutWhoseAnswerWasLostIsStored() throws {
        let flaky = try FlakyServer(failures: [], putFailures: ["storedreset"])
        let storage = S3Backend(flaky.configuration(attempts: 4))
        let key = StorageKey("snapshots", "s1", "entries.jsonl.zst")
        #expect(try storage.put(key, Array("mine".utf8), mode: .createOnly) == .stored)
        #expect(try storage.read(key) == Array("mine".utf8))
        #expect(try storage.put(key, Array("other".utf8), mode: .createOnly) == .alreadyPresent)
        #expect(try storage.read(key) == Array("mine".utf8))
    }

    /// Listings span pages (continuation tokens); `children` gives one level.
    @Test func listingsFollowContinuationTokens() throws {
        let server = try S3Server.shared(.moto)
        var config = server.configuration()
        config.listPageSize = 2
        let storage = S3Backend(config)
        var keys: [StorageKey] = []
        for i in 0..<5 { keys.append(StorageKey("snapshots", "s\(i)", "manifest.json")) }
        keys.append(StorageKey("events", "e.json"))
        for k in keys { try storage.put(k, [1], mode: .replace) }
        #expect(try storage.list(under: StorageKey("snapshots")) == keys.filter { $0.components[0] == "snapshots" }.sorted())
        #expect(try storage.children(of: StorageKey("snapshots")) == ["s0", "s1", "s2", "s3", "s4"])
        #expect(try storage.children(of: nil) == ["events", "snapshots"])
        #expect(storage.requestCounts["GET", default: 0] >= 6)   // 3 pages + 3 pages at least
    }

    /// On a store that ignores conditional writes, two writers that race for a lease never
    /// both hold it (write, then relist, and step back on seeing another).
    @Test func leasesExcludeEachOtherWithoutConditionalWrites() throws {
        let server = try S3Server.shared(.rclone)
        let a = server.backend()
        let b = server.backend(prefix: a.configuration.prefix)
        final class Holders: @unchecked Sendable {
            let lock = NSLock()
            var now = 0, most = 0
            func enter() { lock.lock(); now += 1; most = max(most, now); lock.unlock() }
            func leave() { lock.lock(); now -= 1; lock.unlock() }
        }
        let holders = Holders()
        DispatchQueue.concurrentPerform(iterations: 4) { i in
            let storage = i % 2 == 0 ? a : b
            for _ in 0..<2 {
                guard let lease = try? storage.acquireLease("writer", command: "w\(i)", duration: 60, timeout: 60, warn: { _ in }) else {
                    Issue.record("no lease within 60 s")
                    return
                }
                holders.enter()
                usleep(50_000)
                holders.leave()
                lease.release()
            }
        }
        #expect(holders.most == 1)
        #expect(try a.list(under: StorageKey("locks")).isEmpty)
    }

    /// A lease left by a killed process of another host is broken once expired, with a
    /// warning; the new holder's lease object is the only one left.
    @Test func anExpiredLeaseIsBrokenAfterExpiry() throws {
        let storage = try S3Server.shared(.rclone).backend()
        let dead = LockHolder(host: "killed.example", pid: 99, startedAt: Date(timeIntervalSinceNow: -120), command: "backstop backup",
                              expiresAt: Date(timeIntervalSinceNow: 1))
        try storage.put(StorageKey("locks", "writer", "killed.example-99-1.json"), Array(try Timestamp.jsonEncoder().encode(dead)), mode: .replace)
        // Not yet expired: refused, naming the holder.
        #expect(throws: RepositoryError.self) { _ = try storage.acquireLease("writer", command: "me", duration: 60, timeout: 0, warn: { _ in }) }
        sleep(2)
        var warnings: [String] = []
        let lease = try storage.acquireLease("writer", command: "me", duration: 60, timeout: 0, warn: { warnings.append($0) })
        #expect(warnings.count == 1 && warnings[0].contains("killed.example") && warnings[0].contains("expired"), "\(warnings)")
        #expect(try storage.list(under: StorageKey("locks", "writer")).count == 1)
        #expect(storage.leaseHolder("writer")?.command == "me")
        lease.release()
        #expect(storage.leaseHolder("writer") == nil)
    }

    /// Backups take the writer lease shared: on S3 two run at once (as from two hosts), both
    /// commit, and neither removes the other's snapshot at work; an exclusive writer (prune)
    /// waits for them and then removes what is incomplete. Locally the lease stays exclusive.
    @Test func backupsShareTheWriterLeaseOnS3AndPruneIsExclusive() throws {
        let dir = TemporaryDirectory()
        let storage = try S3Server.shared(.moto).backend()
        let repoA = try Repository.create(storage: storage, catalogPath: dir.sub("a.sqlite"))
        let repoB = try Repository.open(storage: S3Backend(storage.configuration), catalogPath: dir.sub("b.sqlite"))
        try writeSourceTree(dir, big: true)
        // Another host's backup at work: its snapshot is incomplete (no manifest yet).
        let atWork = StorageKey("snapshots", "20300101T000000Z-0badc0de", "frames.tsv")
        try storage.put(atWork, [], mode: .createOnly)
        let ids = Locked<[SnapshotID]>([])
        let shared = UncheckedBox(value: (repoA, repoB, dir))
        DispatchQueue.concurrentPerform(iterations: 2) { i in
            let (a, b, dir) = shared.value
            let repo = i == 0 ? a : b
            do {
                let m = try repo.withWriterLock(command: "backstop backup \(i)", timeout: 0, shared: true, warn: { Issue.record("warned: \($0)") }) {
                    try backUp(dir, to: repo, source: "host\(i)")
                }
                var all = ids.get()
                all.append(m.id)
                ids.set(all)
            } catch {
                Issue.record("backup \(i): \(error)")
            }
        }
        #expect(ids.get().count == 2)
        #expect(try storage.exists(atWork))
        // A shared holder keeps an exclusive writer out, and the other way round.
        let hostB = try storage.acquireSharedLease("writer", command: "backup on host B", duration: 60, timeout: 0, warn: { _ in })
        #expect(hostB.isShared)
        #expect(throws: RepositoryError.self) { try repoA.withWriterLock(command: "backstop prune", timeout: 0, warn: { _ in }) {} }
        hostB.release()
        var warnings: [String] = []
        try repoA.withWriterLock(command: "backstop prune", timeout: 0, warn: { warnings.append($0) }) {
            #expect(throws: RepositoryError.self) {
                _ = try storage.acquireSharedLease("writer", command: "backup", duration: 60, timeout: 0, warn: { _ in })
            }
        }
        #expect(try !storage.exists(atWork))
        #expect(warnings.contains { $0.contains("20300101T000000Z-0badc0de") }, "\(warnings)")
        #expect(try Repository.open(storage: storage, catalogPath: dir.sub("a.sqlite")).snapshots().count == 2)

        let local = LocalBackend(root: dir.sub("local"))
        _ = try Repository.create(storage: local)
        let one = try local.acquireSharedLease("writer", command: "backup", duration: 60, timeout: 0, warn: { _ in })
        #expect(!one.isShared)
        #expect(throws: RepositoryError.self) { _ = try local.acquireSharedLease("writer", command: "backup", duration: 60, timeout: 0, warn: { _ in }) }
        one.release()
    }

    /// The catalog of an S3 repository is a cache under the cache folder, named by the
    /// repository's ID; deleted or damaged, it is rebuilt on the next open, without a word
    /// from the user.
    @Test func theCatalogCacheIsRebuiltWhenMissingOrDamaged() throws {
        let dir = TemporaryDirectory()
        var config = try S3Server.shared(.moto).configuration()
        config.cacheDirectory = dir.sub("cache")
        let storage = S3Backend(config)
        let repo = try Repository.create(storage: storage)
        let cache = dir.sub("cache/\(repo.config.id)/catalog.sqlite")
        #expect(FileSystem.exists(cache))
        try writeSourceTree(dir)
        let m = try backUp(dir, to: repo)
        try FileManager.default.removeItem(atPath: cache)
        let reopened = try Repository.open(storage: S3Backend(config))
        #expect(try reopened.snapshots().map(\.id) == [m.id])
        #expect(FileSystem.exists(cache))
        try writeFile(cache, Array("this is not SQLite at all, it is a damaged cache file of some length".utf8))
        for suffix in ["-wal", "-shm"] { unlink(cache + suffix) }
        let again = try Repository.open(storage: S3Backend(config))
        #expect(try again.snapshots().map(\.id) == [m.id])
    }

    /// A one-file restore from S3 fetches that file's frame only (GETs of frames/ counted).
    @Test func aOneFileRestoreGetsOnlyItsFrames() throws {
        let dir = TemporaryDirectory()
        var gen = SeededBytes(seed: 7)
        for i in 0..<12 { try writeFile(dir.sub("big/part\(String(format: "%02d", i)).bin"), gen.bytes(1_500_000)) }
        try writeFile(dir.sub("big/m/needle.txt"), Array("the one file\n".utf8))
        let storage = try S3Server.shared(.moto).backend()
        let repo = try Repository.create(storage: storage, catalogPath: dir.sub("catalog.sqlite"))
        let m = try FilesystemSnapshotWriter(paths: [dir.sub("big")], options: BackupOptions(source: "big")).write(to: repo)
        let frames = try repo.payloadFrames(m).count
        #expect(frames > 6)
        let before = storage.objectGETs(under: "frames")
        let report = try FilesystemRestore(repository: repo, manifest: m, includes: ["big/m/needle.txt"]).run(to: dir.sub("one"))
        #expect(try readFile(dir.sub("one/big/m/needle.txt")) == Array("the one file\n".utf8))
        #expect(report.framesRead == 1)
        #expect(storage.objectGETs(under: "frames") - before == 1, "of \(frames) frames")
    }

    /// An address names a bucket and prefix; the environment gives endpoint, region and keys,
    /// a profile of the shared credentials file when the variables are not set.
    @Test func addressesAndCredentialsFromTheEnvironment() throws {
        #expect(try RepositoryAddress(parsing: "s3://my-bucket/a/b/") == .s3(bucket: "my-bucket", prefix: "a/b"))
        #expect(try RepositoryAddress(parsing: "s3://my-bucket") == .s3(bucket: "my-bucket", prefix: ""))
        #expect(try RepositoryAddress(parsing: "/var/backups") == .local(path: "/var/backups"))
        #expect(throws: S3Error.self) { try RepositoryAddress(parsing: "s3:///x") }
        #expect(throws: S3Error.self) { try RepositoryAddress(parsing: "s3://b/a/../c") }
        let dir = TemporaryDirectory()
        try writeFile(dir.sub("credentials"), Array("""
            [default]
            aws_access_key_id = DEF
            aws_secret_access_key = defsecret
            [backup]
            aws_access_key_id=BK
            aws_secret_access_key=bksecret
            aws_session_token = tok
            """.utf8))
        let env = ["AWS_SHARED_CREDENTIALS_FILE": dir.sub("credentials"), "AWS_PROFILE": "backup"]
        #expect(try RepositoryAddress.credentials(env) == .init(accessKeyID: "BK", secretAccessKey: "bksecret", sessionToken: "tok"))
        #expect(try RepositoryAddress.credentials(["AWS_ACCESS_KEY_ID": "E", "AWS_SECRET_ACCESS_KEY": "S"]).accessKeyID == "E")
        do {
            _ = try RepositoryAddress.credentials(["AWS_SHARED_CREDENTIALS_FILE": dir.sub("none")])
            Issue.record("credentials from nowhere")
        } catch let error as S3Error {
            #expect(error.exitStatus.rawValue == 77)
        }
        let s3 = try #require(try RepositoryAddress(parsing: "s3://bk/p").makeBackend(.init(environment: env.merging(["AWS_REGION": "eu-west-1", "XDG_CACHE_HOME": "/c"]) { $1 })) as? S3Backend)
        #expect(s3.configuration.endpoint.absoluteString == "https://s3.eu-west-1.amazonaws.com")
        #expect(s3.configuration.addressing == .virtualHost)
        #expect(s3.configuration.cacheDirectory == "/c/backstop")
        let custom = try #require(try RepositoryAddress(parsing: "s3://bk/p").makeBackend(.init(endpoint: "http://127.0.0.1:9000", environment: env)) as? S3Backend)
        #expect(custom.configuration.addressing == .path)
    }
}

/// A tiny HTTP server (Python) that fails the first GETs as told ("slowdown": 503 SlowDown;
/// "reset": closes the connection unanswered), then answers every GET with what was put there,
/// else "hello". PUTs honour `If-None-Match: *` (412); `putFailures` fails the first PUTs of
/// objects outside `locks/` ("storedreset": stores the object, then closes the connection
/// unanswered, as a put whose answer was lost).
final class FlakyServer {
    let port: Int
    private let dir = TemporaryDirectory("flaky")
    var endpoint: String { "http://127.0.0.1:\(port)" }

    init(failures: [String], putFailures: [String] = []) throws {
        try DatabaseServers.refuseInFastTier("flaky HTTP")
        port = try freePort()
        let script = """
            import http.server, socket, sys
            plan = sys.argv[2].split(',') if sys.argv[2] else []
            puts = sys.argv[3].split(',') if sys.argv[3] else []
            store = {}
            class H(http.server.BaseHTTPRequestHandler):
                protocol_version = 'HTTP/1.1'
                def log_message(self, *a): pass
                def do_GET(self):
                    if plan:
                        what = plan.pop(0)
                        if what == 'reset':
                            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b'\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00')
                            self.connection.close()
                            self.close_connection = True
                            return
                        body = b'<?xml version="1.0"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>'
                        self.send_response(503)
                    else:
                        body = store.get(self.path, b'hello')
                        self.send_response(200)
                    self.send_header('Content-Length', str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                def do_PUT(self):
                    body = self.rfile.read(int(self.headers.get('Content-Length', '0')))
                    if self.headers.get('If-None-Match') == '*' and self.path in store:
                        self.send_response(412)
                        self.send_header('Content-Length', '0')
                        self.end_headers()
                        return
                    store[self.path] = body
                    if puts and '/locks/' not in self.path and puts.pop(0) == 'storedreset':
                        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b'\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00')
                        self.connection.close()
                        self.close_connection = True
                        return
                    self.send_response(200)
                    self.send_header('Content-Length', '0')
                    self.end_headers()
                def do_DELETE(self):
                    store.pop(self.path, None)
                    self.send_response(204)
                    self.end_headers()
            http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()
            """
        try writeFile(dir.sub("flaky.py"), Array(script.utf8))
        let pidFile = dir.sub("pid")
        try runProcess("/bin/bash", ["-c", DatabaseServers.closeInheritedDescriptors
            + "exec </dev/null >\(dir.sub("log")) 2>&1; python3 \(dir.sub("flaky.py")) \(port) '\(failures.joined(separator: ","))' '\(putFailures.joined(separator: ","))' & echo $! > \(pidFile)"])
        DatabaseServers.register(pidFile: pidFile, signal: SIGKILL)
        for _ in 0..<100 {
            if (try? runProcess("/bin/bash", ["-c", "exec 3<>/dev/tcp/127.0.0.1/\(port)"]))?.status == 0 { return }
            usleep(100_000)
        }
        throw ServerError(description: "the flaky server did not start")
    }

    func configuration(attempts: Int) -> S3Configuration {
        var c = S3Configuration(bucket: "flaky", prefix: "", endpoint: URL(string: endpoint)!, region: "us-east-1",
                                credentials: .init(accessKeyID: "a", secretAccessKey: "s"), addressing: .path)
        c.maxAttempts = attempts
        c.baseDelay = 0.01
        return c
    }
}
