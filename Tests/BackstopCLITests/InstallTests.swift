import Foundation
import Testing

/// `--version`, and scripts/install.sh: binary, completions, man pages, cron and systemd files.
@Suite struct InstallTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    /// Proves: --version gives the version, commit, formats and the versions of the zstd,
    /// libarchive and OpenSSL libraries linked in (as their -dev packages name them), and
    /// --version --json the same as an object.
    @Test func versionNamesTheLibrariesAndFormats() throws {
        let text = try CLI.run(["--version"])
        #expect(text.status == 0, "\(text.stderr)")
        let json = try CLI.run(["--version", "--json"])
        #expect(json.status == 0, "\(json.stderr)")
        let report = try #require(try Self.object(json.stdout))
        let libraries = try #require(report["libraries"] as? [String: String])
        for (key, package) in [("zstd", "libzstd"), ("libarchive", "libarchive"), ("openssl", "libcrypto")] {
            let version = try sh("pkg-config --modversion \(package)").trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(libraries[key]?.contains(version) == true, "\(key): \(libraries[key] ?? "-") vs \(version)")
            #expect(text.stdout.contains("\(key): ") && text.stdout.contains(version), "\(text.stdout)")
        }
        #expect(text.stdout.hasPrefix("backstop 0.1.0\ncommit: "), "\(text.stdout)")
        #expect((report["formats"] as? [String: Any])?["repository"] as? Int == 2)
        #expect(report["commit"] as? String == "unknown", "not installed by install.sh: \(report)")
    }

    static func object(_ text: String) throws -> [String: Any]? { try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] }

    /// Proves: install.sh puts everything under the prefix; the installed binary reports the
    /// checkout's commit; the completion scripts complete --kind and --format values and call
    /// back for --source; every man page renders with `man -l`.
    @Test(.timeLimit(.minutes(3))) func installPutsEverythingUnderThePrefix() throws {
        let s = Scratch()
        let prefix = s.sub("prefix")
        try sh("'\(Self.root)/scripts/install.sh' '\(prefix)' --binary '\(CLI.binary)'")
        for file in ["bin/backstop", "bin/backstop-cron", "share/bash-completion/completions/backstop", "share/zsh/site-functions/_backstop",
                     "share/fish/vendor_completions.d/backstop.fish", "share/man/man1/backstop.1", "share/man/man1/backstop-list.1",
                     "share/man/man1/backstop-event-add.1", "share/backstop/crontab.example", "share/backstop/policies/nightly.yaml",
                     "lib/systemd/system/backstop-nightly.service", "lib/systemd/system/backstop-nightly.timer"] {
            #expect(FileManager.default.fileExists(atPath: prefix + "/" + file), "\(file)")
        }
        let commit = try sh("git -C '\(Self.root)' describe --always --dirty --tags").trimmingCharacters(in: .whitespacesAndNewlines)
        let version = try sh("'\(prefix)/bin/backstop' --version")
        #expect(version.contains("commit: \(commit)\n"), "\(version)")
        #expect(try String(contentsOfFile: prefix + "/lib/systemd/system/backstop-nightly.service", encoding: .utf8).contains("ExecStart=\(prefix)/bin/backstop run"))

        let bash = try String(contentsOfFile: prefix + "/share/bash-completion/completions/backstop", encoding: .utf8)
        #expect(bash.contains("'filesystem'$'\\n''logical'"), "--kind values")
        #expect(bash.contains("mysqldump") && bash.contains("pgdump-custom"), "--format values")
        #expect(bash.contains("---completion"), "--source calls back into backstop for the catalog's names")

        let pages = try FileManager.default.contentsOfDirectory(atPath: prefix + "/share/man/man1").sorted()
        #expect(pages.count >= 20, "\(pages)")
        for page in pages {
            let rendered = try sh("MANWIDTH=100 man -l -P cat '\(prefix)/share/man/man1/\(page)' 2>&1")
            #expect(rendered.contains("NAME") && rendered.contains("SYNOPSIS") && rendered.contains("OPTIONS"), "\(page): \(rendered)")
            let troff = try sh("groff -man -z -ww '\(prefix)/share/man/man1/\(page)' 2>&1")
            #expect(troff.isEmpty, "\(page): roff warnings: \(troff)")
        }
        let list = try sh("MANWIDTH=100 man -l -P cat '\(prefix)/share/man/man1/backstop-list.1'")
        #expect(list.contains("--source") && list.contains("List the snapshots in a repository"), "\(list)")
    }

    /// Proves: installed from a copy without git (as from a tarball), the commit is "unknown".
    @Test(.timeLimit(.minutes(3))) func aTarballInstallSaysTheCommitIsUnknown() throws {
        let s = Scratch()
        try sh("mkdir -p '\(s.sub("src"))' && cp -R '\(Self.root)/scripts' '\(Self.root)/Policies' '\(s.sub("src"))/'")
        try sh("'\(s.sub("src"))/scripts/install.sh' '\(s.sub("prefix"))' --binary '\(CLI.binary)'")
        let version = try sh("'\(s.sub("prefix"))/bin/backstop' --version")
        #expect(version.contains("commit: unknown\n"), "\(version)")
    }

    /// Proves: the custom completion of --source lists the sources in the repository's catalog.
    @Test func sourceCompletionComesFromTheCatalog() throws {
        let s = Scratch()
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        try s.write("data/a.txt", "a\n")
        for source in ["mysql-datadir", "mysql-dump", "pg"] {
            #expect(try CLI.run(["backup", s.sub("data"), "--source", source, "--repo", s.repo]).status == 0)
        }
        // As the bash script calls it: the flag, the index of the word completed, the cursor in it, the words.
        let words = ["backstop", "list", "--repo", s.repo, "--source", "my"]
        let r = try CLI.run(["---completion", "list", "--", "--source", "5", "2"] + words, environment: ["SAP_SHELL": "bash"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.split(separator: "\n").map(String.init) == ["mysql-datadir", "mysql-dump"], "\(r.stdout)")
    }
}
