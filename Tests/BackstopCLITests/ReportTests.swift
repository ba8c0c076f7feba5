import Foundation
import Testing

/// `backstop report --html`: one self-contained page, loaded in a real headless browser
/// (Debian's chromium): no script or console error, every snapshot in the rendered DOM.
@Suite struct ReportTests {
    /// Runs chromium headless on `page` with `arguments`; returns (stdout, stderr).
    static func chromium(_ arguments: [String], _ page: String) throws -> (String, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/chromium")
        p.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--user-data-dir=\(page).profile"]
            + arguments + ["file://" + page]
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()   // throws (the test fails) when chromium is not installed
        let box = CLI.Box()
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async { box.data = err.fileHandleForReading.readDataToEndOfFile(); done.signal() }
        let o = out.fileHandleForReading.readDataToEndOfFile()
        done.wait()
        p.waitUntilExit()
        return (String(decoding: o, as: UTF8.self), String(decoding: box.data, as: UTF8.self))
    }

    /// A week of nightly snapshots of two sources, an upgrade event in the middle, every snapshot
    /// verified and one of them found corrupt.
    func repository(_ s: Scratch) throws -> (ids: [String], corrupt: String, picked: String) {
        let repo = ["--repo", s.repo]
        #expect(try CLI.run(["init"] + repo).status == 0)
        try s.write("dump.sql", sampleDump())
        for day in 20...26 {
            try s.write("data/day\(day).txt", String(repeating: "day \(day)\n", count: day * 100))
            #expect(try CLI.run(["backup", s.sub("data"), "--source", "datadir", "--time", "2024-03-\(day)T22:00:00Z"] + repo).status == 0)
            #expect(try CLI.run(["backup", "--command", "cat \(s.sub("dump.sql"))", "--source", "dump", "--time", "2024-03-\(day)T22:30:00Z"] + repo).status == 0)
        }
        #expect(try CLI.run(["event", "add", "upgrade", "--at", "2024-03-24T12:00:00Z", "--note", "<b>MariaDB</b> & 11.4"] + repo).status == 0)
        let ids = try listedSnapshots(CLI.run(["list", "--json"] + repo).stdout).compactMap { $0["id"] as? String }
        #expect(ids.count == 14)
        let corrupt = ids[2]
        let entries = s.repo + "/snapshots/\(corrupt)/entries.jsonl.zst"
        let handle = try #require(FileHandle(forWritingAtPath: entries))
        handle.seekToEndOfFile()
        handle.write(Data([0x42]))
        handle.closeFile()
        #expect(try CLI.run(["verify", "--all", "--quick"] + repo).status == 65)
        let picked = try CLI.run(["select", "--before", "upgrade", "--source", "datadir"] + repo).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        return (ids, corrupt, picked)
    }

    /// Proves: the page loads in chromium without a script or console error; every snapshot is
    /// in the rendered DOM, coloured by its verification; the event is drawn; the snapshot
    /// `--before upgrade` picks is ringed; the plan marks keep and remove; nothing is fetched
    /// from outside the page; a screenshot renders.
    @Test(.timeLimit(.minutes(5))) func thePageRendersInAHeadlessBrowser() throws {
        let s = Scratch()
        let (ids, corrupt, picked) = try repository(s)
        try s.write("policy.yaml", "repository: \(s.repo)\njobs: []\nretention:\n  keep-last: 2\n  keep-daily: 3\n")
        let page = s.sub("timeline.html")
        let r = try CLI.run(["report", "--html", page, "--policy", s.sub("policy.yaml"), "--repo", s.repo])
        #expect(r.status == 0, "\(r.stderr)")
        let html = try String(contentsOfFile: page, encoding: .utf8)
        #expect(!html.contains("http://") && !html.contains("https://") && !html.contains(" src=") && !html.contains("<link"), "self-contained")
        #expect(html.contains("&lt;b&gt;MariaDB&lt;/b&gt; &amp; 11.4"), "the note is escaped")

        let (dom, log) = try Self.chromium(["--enable-logging=stderr", "--v=0", "--virtual-time-budget=2000", "--dump-dom"], page)
        #expect(dom.contains("<div id=\"errors\"></div>"), "no script error reached the page's error hook")
        #expect(dom.contains("data-rendered=\"14\""), "the page's script ran to its end")
        #expect(!log.contains("Uncaught") && !log.contains("CONSOLE"), "console: \(log)")
        for id in ids {
            #expect(dom.contains("data-id=\"\(id)\""), "\(id) on the timeline")
            #expect(dom.contains("id=\"row-\(id)\""), "\(id) in the table")
        }
        #expect(dom.contains("class=\"snap failed\" data-id=\"\(corrupt)\""), "the corrupt snapshot is marked failed")
        #expect(dom.components(separatedBy: "class=\"snap passed\"").count == 14, "the others passed")
        #expect(dom.contains("data-event=\"upgrade\""))
        let ring = try #require(dom.range(of: "data-pick=\"upgrade\""), "the pick is ringed")
        #expect(dom[ring.upperBound...].prefix(400).contains("data-id=\"\(picked)\""), "ringed: \(picked)")
        #expect(dom.contains("class=\"keep\"") && dom.contains("class=\"remove\""), "plan marks")

        let shot = s.sub("timeline.png")
        _ = try Self.chromium(["--window-size=1040,1300", "--screenshot=\(shot)"], page)
        let png = try Data(contentsOf: URL(fileURLWithPath: shot))
        #expect(png.count > 10_000 && png.prefix(4) == Data([0x89, 0x50, 0x4E, 0x47]), "a PNG screenshot")
    }

    /// Proves: --source limits the page to that source, --since to the snapshots from then on,
    /// and an unknown source is refused (66) naming the known ones, with no page written.
    @Test(.timeLimit(.minutes(3))) func sourceAndSinceLimitThePage() throws {
        let s = Scratch()
        let (ids, _, _) = try repository(s)
        let page = s.sub("dump.html")
        let r = try CLI.run(["report", "--html", page, "--source", "dump", "--since", "2024-03-24T00:00:00Z", "--json", "--repo", s.repo])
        #expect(r.status == 0, "\(r.stderr)")
        let summary = try #require(try json(r.stdout) as? [String: Any])
        #expect(summary["sources"] as? [String] == ["dump"] && summary["snapshots"] as? Int == 3, "\(summary)")
        let html = try String(contentsOfFile: page, encoding: .utf8)
        let shown = ids.filter { html.contains("data-id=\"\($0)\"") }
        #expect(shown.count == 3 && shown.allSatisfy { $0.hasSuffix("") && $0 >= "20240324" }, "\(shown)")
        let bad = try CLI.run(["report", "--html", s.sub("none.html"), "--source", "nope", "--repo", s.repo])
        #expect(bad.status == 66 && bad.stderr.contains("--source nope") && bad.stderr.contains("datadir, dump"), "\(bad.stderr)")
        #expect(!FileManager.default.fileExists(atPath: s.sub("none.html")))
    }
}
