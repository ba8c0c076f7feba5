import Foundation
import Logging

/// The one log format of every command: swift-log's messages (the library's `Logger`, as `run`
/// uses it) go out as `Output` prints its own warnings and errors, `backstop: LEVEL: message`
/// on stderr, preceded by a UTC timestamp when stderr is not a terminal (cron mail, log files).
struct OutputLogHandler: LogHandler {
    let output: Output
    var logLevel: Logger.Level = .warning
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    init(output: Output) { self.output = output }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let text = event.message.description
        switch event.level {
        case .critical, .error: output.error(text)
        case .warning: output.warning(text)
        default: output.log(event.level.rawValue, text)
        }
    }

    /// Makes every `Logger` of the process write through `output` (once, when the command is known).
    static func bootstrap(_ output: Output) {
        LoggingSystem.bootstrap { _ in OutputLogHandler(output: output) }
    }
}
