import Foundation
import Testing
@testable import Backstop

@Suite struct PolicyRunnerTests {
    /// The README's order of `run`'s exit statuses, worst first (75, a lock not obtained, sits
    /// between 1 and 74).
    static let documentedOrder: [Int32] = [1, 75, 74, 65, 66, 3, 0]

    /// Proves the whole order, not one pair: for every pair the worse one wins, in either
    /// order and among repeats, and the worst of all of them is 1.
    @Test func theWorstStatusFollowsTheDocumentedOrder() {
        for (i, worse) in Self.documentedOrder.enumerated() {
            for better in Self.documentedOrder[i...] {
                #expect(PolicyRunner.worst([worse, better]) == worse, "\(worse) vs \(better)")
                #expect(PolicyRunner.worst([better, worse, better]) == worse, "\(better), \(worse), \(better)")
            }
        }
        #expect(PolicyRunner.worst(Self.documentedOrder.reversed()) == 1)
        #expect(PolicyRunner.worst([0, 0, 0]) == 0)
        #expect(PolicyRunner.worst([]) == 0)
    }
}
