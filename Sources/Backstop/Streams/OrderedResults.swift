import Foundation

/// Results of concurrent tasks, taken in submission order.
final class OrderedResults<T>: @unchecked Sendable {
    private let condition = NSCondition()
    private var outcomes: [Int: Result<T, Error>] = [:]

    func deliver(_ sequence: Int, _ outcome: Result<T, Error>) {
        condition.lock()
        outcomes[sequence] = outcome
        condition.broadcast()
        condition.unlock()
    }

    func take(_ sequence: Int, wait: Bool) -> Result<T, Error>? {
        condition.lock()
        defer { condition.unlock() }
        while outcomes[sequence] == nil {
            if !wait { return nil }
            condition.wait()
        }
        return outcomes.removeValue(forKey: sequence)
    }
}
