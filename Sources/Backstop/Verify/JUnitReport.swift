import Foundation

/// Renders verification results as JUnit XML: one testsuite, one testcase per snapshot, one
/// failure element per problem, which CI systems show as they show test results.
public enum JUnitReport {
    public static func render(_ results: [VerificationResult], name: String = "backstop verify") -> String {
        let failures = results.filter { !$0.passed }.count
        let total = results.reduce(0) { $0 + $1.duration }
        var xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        xml += "<testsuites name=\"\(escape(name))\" tests=\"\(results.count)\" failures=\"\(failures)\" time=\(quoted(total))>\n"
        xml += "  <testsuite name=\"\(escape(name))\" tests=\"\(results.count)\" failures=\"\(failures)\" errors=\"0\" skipped=\"0\" time=\(quoted(total))>\n"
        for r in results {
            let classname = "backstop.\(r.source ?? "unknown")"
            xml += "    <testcase classname=\"\(escape(classname))\" name=\"\(escape(r.snapshot.rawValue)) (\(r.mode.rawValue))\" time=\(quoted(r.duration))"
            if r.passed {
                xml += "/>\n"
                continue
            }
            xml += ">\n"
            for p in r.problems {
                xml += "      <failure message=\"\(escape(p.description))\" type=\"\(escape(p.file))\">\(escape(r.summary))</failure>\n"
            }
            xml += "    </testcase>\n"
        }
        xml += "  </testsuite>\n</testsuites>\n"
        return xml
    }

    static func quoted(_ seconds: Double) -> String { "\"\(String(format: "%.3f", seconds))\"" }

    static func escape(_ s: String) -> String {
        var out = ""
        for ch in s.unicodeScalars {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default:
                // XML 1.0 forbids most control characters, even escaped.
                if ch.value < 0x20 && ch != "\n" && ch != "\t" && ch != "\r" { out += "?" } else { out.unicodeScalars.append(ch) }
            }
        }
        return out
    }
}
