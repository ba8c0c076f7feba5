import Foundation
import Testing

/// What the README promises about output on a terminal.
@Suite struct OutputTests {
    /// Runs `backstop ARGS…` with stdout and stderr on a pseudo-terminal (python3's pty), with
    /// `NO_COLOR` removed from the environment unless `noColor` gives it a value.
    func onTerminal(_ arguments: [String], noColor: String?) throws -> CLI.Result {
        let spawn = "import pty, sys; sys.exit(pty.spawn(sys.argv[1:]) >> 8)"
        var prefix = ["/usr/bin/env", "-u", "NO_COLOR"]
        if let noColor { prefix.append("NO_COLOR=\(noColor)") }
        return try CLI.run(arguments, prefix: prefix + ["python3", "-c", spawn])
    }

    /// Proves: errors are coloured on a terminal, and `NO_COLOR` turns that off; never coloured
    /// into a pipe. (Every other CLI test runs with NO_COLOR set.)
    @Test func noColorTurnsColourOff() throws {
        let s = Scratch()
        #expect(try CLI.run(["init", "--repo", s.repo]).status == 0)
        let args = ["select", "--at", "last tuesday", "--repo", s.repo]
        let escape = "\u{1B}["
        let coloured = try onTerminal(args, noColor: nil)
        #expect(coloured.status == 64)
        #expect(coloured.stdout.contains(escape + "31mbackstop: error:"), "\(coloured.stdout.debugDescription)")
        let plain = try onTerminal(args, noColor: "1")
        #expect(plain.status == 64)
        #expect(plain.stdout.contains("backstop: error:") && !plain.stdout.contains(escape), "\(plain.stdout.debugDescription)")
        let piped = try CLI.run(args, prefix: ["/usr/bin/env", "-u", "NO_COLOR"])
        #expect(piped.status == 64 && piped.stderr.contains("Z backstop: error:") && !piped.stderr.contains(escape), "\(piped.stderr)")
    }
}
