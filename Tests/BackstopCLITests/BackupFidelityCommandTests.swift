import Foundation
import Testing

/// End-to-end: `backup` keeps names that are not UTF-8, whatever the locale, and `show` lists them
/// escaped (text) and exactly (JSON).
@Suite struct BackupFidelityCommandTests {
    /// Creates `path` (exact bytes) as a file, or as a directory when `directory`.
    func make(_ path: [UInt8], directory: Bool = false) throws {
        let result = (path + [0]).withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { p -> Int32 in
                if directory { return mkdir(p.baseAddress!, 0o755) }
                let fd = open(p.baseAddress!, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
                if fd >= 0 { close(fd) }
                return fd < 0 ? -1 : 0
            }
        }
        if result != 0 { throw ShellError(command: "create \(path)", status: errno, stderr: String(cString: strerror(errno))) }
    }

    /// Proves the reproduction of issue #9 item 6: `touch t/$'bad\xff'; mkdir t/$'d\xff';
    /// touch t/$'d\xff'/inner; backstop backup t` exits 0 with every entry, under `LC_ALL=C` and
    /// `LC_ALL=C.UTF-8`; `show --entries` prints the names escaped and `--json` gives their bytes;
    /// `verify` passes.
    @Test(arguments: ["C", "C.UTF-8"])
    func namesThatAreNotUTF8AreBackedUp(locale: String) throws {
        let s = Scratch()
        let env = ["LC_ALL": locale]
        #expect(try CLI.run(["init", "--repo", s.repo], environment: env).status == 0)
        let t = Array(s.sub("t").utf8)
        try make(t, directory: true)
        try make(t + Array("/bad".utf8) + [0xFF])
        try make(t + Array("/d".utf8) + [0xFF], directory: true)
        try make(t + Array("/d".utf8) + [0xFF] + Array("/inner".utf8))

        let backup = try CLI.run(["backup", s.sub("t"), "--source", "t", "--repo", s.repo], environment: env)
        #expect(backup.status == 0, "\(backup.stderr)")
        #expect(!backup.stderr.contains("skipped"), "\(backup.stderr)")
        let id = backup.stdout.trimmingCharacters(in: .whitespacesAndNewlines)

        let text = try CLI.run(["show", id, "--entries", "--repo", s.repo], environment: env)
        #expect(text.status == 0, "\(text.stderr)")
        for name in [#"t/bad\xff"#, #"t/d\xff/"#, #"t/d\xff/inner"#] {
            #expect(text.stdout.contains(" " + name + "\n"), "show lists \(name):\n\(text.stdout)")
        }

        let show = try CLI.run(["show", id, "--entries", "--json", "--repo", s.repo], environment: env)
        #expect(show.status == 0, "\(show.stderr)")
        let report = try #require(try json(show.stdout) as? [String: Any])
        let entries = try #require(report["entries"] as? [[String: Any]])
        let exact = entries.map { e -> [UInt8] in
            if let b64 = e["pathBytes"] as? String, let data = Data(base64Encoded: b64) { return Array(data) }
            return Array((e["path"] as? String ?? "").utf8)
        }
        #expect(exact == [Array("t".utf8), Array("t/bad".utf8) + [0xFF], Array("t/d".utf8) + [0xFF],
                          Array("t/d".utf8) + [0xFF] + Array("/inner".utf8)])

        let verify = try CLI.run(["verify", id, "--repo", s.repo], environment: env)
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
    }
}
