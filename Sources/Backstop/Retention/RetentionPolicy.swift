import Foundation

/// Retention rules, as a policy's `retention:` section gives them. Every rule is optional; a
/// policy without any rule keeps everything.
public struct RetentionPolicy: Sendable, Equatable {
    public var keepLast: Int?
    public var keepHourly: Int?
    public var keepDaily: Int?
    public var keepWeekly: Int?
    public var keepMonthly: Int?
    public var keepYearly: Int?
    /// Seconds: keep every snapshot started within this long before the source's newest one.
    public var keepWithin: TimeInterval?
    public var keepTags: [String] = []
    /// Seconds: keep the last snapshot of each source before each event for this long after the event.
    public var keepBeforeEvent: TimeInterval?
    /// Seconds: keep archived log segments with an event this recent, beyond those a kept
    /// snapshot needs (`LogRetentionPlanner`).
    public var keepLogs: TimeInterval?

    public init(keepLast: Int? = nil, keepHourly: Int? = nil, keepDaily: Int? = nil, keepWeekly: Int? = nil,
                keepMonthly: Int? = nil, keepYearly: Int? = nil, keepWithin: TimeInterval? = nil,
                keepTags: [String] = [], keepBeforeEvent: TimeInterval? = nil, keepLogs: TimeInterval? = nil) {
        self.keepLast = keepLast
        self.keepHourly = keepHourly
        self.keepDaily = keepDaily
        self.keepWeekly = keepWeekly
        self.keepMonthly = keepMonthly
        self.keepYearly = keepYearly
        self.keepWithin = keepWithin
        self.keepTags = keepTags
        self.keepBeforeEvent = keepBeforeEvent
        self.keepLogs = keepLogs
    }

    /// True when no rule is set: nothing is removed.
    public var isEmpty: Bool {
        keepLast == nil && keepHourly == nil && keepDaily == nil && keepWeekly == nil && keepMonthly == nil
            && keepYearly == nil && keepWithin == nil && keepTags.isEmpty && keepBeforeEvent == nil
    }
}
