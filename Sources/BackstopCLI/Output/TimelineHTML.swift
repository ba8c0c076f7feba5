import Backstop
import Foundation

/// Renders a `TimelineReport` as one self-contained HTML page: inline CSS, inline SVG and a few
/// lines of inline JavaScript, no external asset. Per source: a timeline (snapshots coloured by
/// verification state, events as vertical lines, the snapshot `--before EVENT` picks ringed,
/// the retention plan's keep/remove marks), sizes over time (logical, stored, new) and a table.
enum TimelineHTML {
    static let width = 960.0
    static let left = 40.0
    static let right = 20.0

    static func render(_ report: TimelineReport) -> String {
        let times = report.sources.flatMap { $0.snapshots.map(\.completedAt) } + report.events.map(\.at)
        var start = times.min() ?? report.generatedAt
        var end = times.max() ?? report.generatedAt
        if end.timeIntervalSince(start) < 3600 { start = start.addingTimeInterval(-43_200); end = end.addingTimeInterval(43_200) }
        let span = end.timeIntervalSince(start)
        let padded = (start.addingTimeInterval(-span * 0.03), end.addingTimeInterval(span * 0.03))
        func x(_ d: Date) -> Double {
            left + (width - left - right) * d.timeIntervalSince(padded.0) / padded.1.timeIntervalSince(padded.0)
        }
        var html = """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Backstop timeline: \(esc(report.repository))</title>
        <style>
        body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1d2330; background: #fff; }
        h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 6px; }
        .meta, .legend { color: #566; margin: 4px 0; } .legend span { margin-right: 14px; white-space: nowrap; }
        .dot { display: inline-block; width: 10px; height: 10px; border-radius: 50%; vertical-align: middle; margin-right: 4px; }
        svg { display: block; background: #fafbfc; border: 1px solid #e3e6ea; border-radius: 4px; margin: 4px 0; }
        .axis { stroke: #9aa3ad; } .tick { fill: #566; font-size: 11px; }
        .event { stroke: #7b3fc4; stroke-width: 1.5; stroke-dasharray: 4 3; } .event-label { fill: #7b3fc4; font-size: 11px; }
        circle.passed { fill: #2e9d5b; } circle.failed { fill: #d43c3c; } circle.never { fill: #9aa3ad; }
        circle.snap { stroke: #fff; stroke-width: 1; cursor: pointer; } circle.pick { fill: none; stroke: #f2a900; stroke-width: 3; }
        .keep { fill: #2e9d5b; font-size: 12px; } .remove { fill: #d43c3c; font-size: 12px; }
        .logical { stroke: #3568c9; fill: none; stroke-width: 2; } .stored { stroke: #e07b12; fill: none; stroke-width: 2; }
        .new { stroke: #2e9d5b; fill: none; stroke-width: 2; }
        table { border-collapse: collapse; font-size: 12px; margin-top: 6px; } td, th { padding: 2px 8px; text-align: left; border-bottom: 1px solid #eef0f2; }
        td { white-space: nowrap; } td.why { white-space: normal; min-width: 280px; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
        tr.selected { background: #fff4d6; }
        #errors:not(:empty) { color: #d43c3c; border: 1px solid #d43c3c; padding: 6px; }
        </style>
        <script>
        window.addEventListener("error", function (e) {
          var box = document.getElementById("errors");
          if (box) { box.textContent += "script error: " + e.message + "\\n"; }
        });
        </script>
        </head>
        <body>
        <h1>Backstop timeline</h1>
        <p class="meta">Repository \(esc(report.repository)) · generated \(Timestamp.formatSeconds(report.generatedAt))\(report.since.map { " · since " + Timestamp.formatSeconds($0) } ?? "") · \(Output.count(report.sources.reduce(0) { $0 + $1.snapshots.count }, "snapshot")), \(Output.count(report.events.count, "event"))</p>
        <div id="errors"></div>
        <p class="legend"><span><i class="dot" style="background:#2e9d5b"></i>verified</span><span><i class="dot" style="background:#d43c3c"></i>verification failed</span><span><i class="dot" style="background:#9aa3ad"></i>never verified</span><span><i class="dot" style="border:3px solid #f2a900;width:6px;height:6px"></i>what --before EVENT picks</span><span style="color:#7b3fc4">┆ event</span>\(report.hasPlan ? "<span style=\"color:#2e9d5b\">▲ kept by the plan</span><span style=\"color:#d43c3c\">✕ removed by the plan</span>" : "")</p>

        """
        for source in report.sources {
            html += section(source, report, x: x, ticks: ticks(padded.0, padded.1))
        }
        html += """
        <script>
        document.querySelectorAll("circle.snap").forEach(function (c) {
          c.addEventListener("click", function () {
            document.querySelectorAll("tr.selected").forEach(function (r) { r.classList.remove("selected"); });
            var row = document.getElementById("row-" + c.getAttribute("data-id"));
            if (row) { row.classList.add("selected"); row.scrollIntoView({block: "nearest"}); }
          });
        });
        document.body.setAttribute("data-rendered", String(document.querySelectorAll("circle.snap").length));
        </script>
        </body>
        </html>

        """
        return html
    }

    static func section(_ source: TimelineReport.Source, _ report: TimelineReport, x: (Date) -> Double, ticks: [Date]) -> String {
        let picked = Dictionary(source.picks.map { ($0.snapshot, $0) }, uniquingKeysWith: { a, _ in a })
        var s = "<section class=\"source\" data-source=\"\(esc(source.name))\">\n<h2>\(esc(source.name))</h2>\n"
        // The timeline.
        let h = 92.0, y = 50.0
        s += "<svg class=\"timeline\" width=\"\(Int(width))\" height=\"\(Int(h))\" viewBox=\"0 0 \(Int(width)) \(Int(h))\" role=\"img\" aria-label=\"snapshots of \(esc(source.name)) over time\">\n"
        s += "<line class=\"axis\" x1=\"\(left)\" y1=\"\(y)\" x2=\"\(width - right)\" y2=\"\(y)\"/>\n"
        for t in ticks {
            s += "<text class=\"tick\" x=\"\(fmt(x(t)))\" y=\"\(h - 6)\" text-anchor=\"middle\">\(Timestamp.formatSeconds(t).prefix(10))</text>\n"
        }
        for e in report.events {
            s += "<line class=\"event\" data-event=\"\(esc(e.name))\" x1=\"\(fmt(x(e.at)))\" y1=\"6\" x2=\"\(fmt(x(e.at)))\" y2=\"\(h - 20)\"><title>event \(esc(e.name)) \(esc(e.id)) at \(Timestamp.formatSeconds(e.at))\(e.note.map { ": " + esc($0) } ?? "")</title></line>\n"
            s += "<text class=\"event-label\" x=\"\(fmt(x(e.at) + 3))\" y=\"14\">\(esc(e.name))</text>\n"
        }
        for m in source.snapshots {
            let cx = fmt(x(m.completedAt))
            let tip = "\(m.id) · completed \(Timestamp.formatSeconds(m.completedAt)) · \(m.verification.rawValue) · \(Output.bytes(m.bytesIn)) logical, \(Output.bytes(m.bytesStored)) stored"
            if let pick = picked[m.id] {
                s += "<circle class=\"pick\" data-pick=\"\(esc(pick.event))\" cx=\"\(cx)\" cy=\"\(y)\" r=\"10\"><title>restore --before \(esc(pick.event)) picks \(m.id)</title></circle>\n"
            }
            s += "<circle class=\"snap \(m.verification.rawValue)\" data-id=\"\(m.id)\" cx=\"\(cx)\" cy=\"\(y)\" r=\"6\"><title>\(esc(tip))</title></circle>\n"
            if let keep = m.keep {
                s += "<text class=\"\(keep ? "keep" : "remove")\" x=\"\(cx)\" y=\"\(y - 14)\" text-anchor=\"middle\">\(keep ? "▲" : "✕")</text>\n"
            }
        }
        s += "</svg>\n"
        // Sizes over time.
        let sh = 150.0, top = 10.0, bottom = 20.0
        let peak = Double(source.snapshots.map { max($0.bytesIn, $0.bytesStored, $0.bytesNew ?? 0) }.max() ?? 0)
        func py(_ v: Int64) -> Double { sh - bottom - (sh - top - bottom) * (peak > 0 ? Double(v) / peak : 0) }
        s += "<svg class=\"sizes\" width=\"\(Int(width))\" height=\"\(Int(sh))\" viewBox=\"0 0 \(Int(width)) \(Int(sh))\" role=\"img\" aria-label=\"sizes of \(esc(source.name)) over time\">\n"
        s += "<line class=\"axis\" x1=\"\(left)\" y1=\"\(sh - bottom)\" x2=\"\(width - right)\" y2=\"\(sh - bottom)\"/>\n"
        s += "<text class=\"tick\" x=\"\(left)\" y=\"\(top + 2)\">\(Output.bytes(Int64(peak)))</text>\n"
        for (cls, value) in [("logical", { (m: TimelineReport.Mark) in m.bytesIn }), ("stored", { $0.bytesStored }), ("new", { $0.bytesNew ?? 0 })] {
            let points = source.snapshots.map { "\(fmt(x($0.completedAt))),\(fmt(py(value($0))))" }.joined(separator: " ")
            s += "<polyline class=\"\(cls)\" points=\"\(points)\"/>\n"
        }
        s += "<text class=\"tick\" x=\"\(width - 260)\" y=\"\(top + 2)\"><tspan fill=\"#3568c9\">━ logical</tspan>  <tspan fill=\"#e07b12\">━ stored</tspan>  <tspan fill=\"#2e9d5b\">━ new</tspan></text>\n"
        s += "</svg>\n"
        // The table.
        s += "<table><thead><tr><th>snapshot</th><th>completed (UTC)</th><th>verification</th><th>logical</th><th>stored</th><th>new</th>"
        s += report.hasPlan ? "<th>plan</th><th>why</th>" : ""
        s += "<th>picked by</th></tr></thead><tbody>\n"
        for m in source.snapshots.reversed() {
            s += "<tr id=\"row-\(m.id)\"><td><code>\(m.id)</code></td><td>\(Timestamp.formatSeconds(m.completedAt))</td><td>\(m.verification.rawValue)</td>"
            s += "<td class=\"num\">\(Output.bytes(m.bytesIn))</td><td class=\"num\">\(Output.bytes(m.bytesStored))</td><td class=\"num\">\(m.bytesNew.map { Output.bytes($0) } ?? "-")</td>"
            if report.hasPlan { s += "<td>\(m.keep.map { $0 ? "keep" : "remove" } ?? "-")</td><td class=\"why\">\(esc(m.reasons.joined(separator: "; ")))</td>" }
            s += "<td>\(source.picks.filter { $0.snapshot == m.id }.map { "--before " + esc($0.event) }.joined(separator: ", "))</td></tr>\n"
        }
        s += "</tbody></table>\n</section>\n"
        return s
    }

    /// About six dates spread over the axis.
    static func ticks(_ start: Date, _ end: Date) -> [Date] {
        (0...5).map { start.addingTimeInterval(end.timeIntervalSince(start) * (0.05 + 0.9 * Double($0) / 5)) }
    }

    static func fmt(_ v: Double) -> String { String(format: "%.1f", v) }

    /// Text safe inside HTML elements and double-quoted attributes.
    static func esc(_ text: String) -> String {
        var out = ""
        for c in text {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }
}
