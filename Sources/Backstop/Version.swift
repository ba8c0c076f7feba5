public enum BackstopVersion { public static let current = "0.1.0" }
