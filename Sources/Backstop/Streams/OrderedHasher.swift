import Foundation

/// Hashes frames in stream order from concurrent tasks: each waits for its turn. Tasks start in
/// submission order (FIFO queue), so the frame whose turn it is has always started: no deadlock.
final class OrderedHasher: @unchecked Sendable {
    private let condition = NSCondition()
    private var next = 0
    private let hasher = SHA256Hasher()

    func update(_ frame: [UInt8], sequence: Int) {
        condition.lock()
        while next != sequence { condition.wait() }
        condition.unlock()
        frame.withUnsafeBytes { hasher.update($0) }
        condition.lock()
        next += 1
        condition.broadcast()
        condition.unlock()
    }

    /// Passes a frame's turn without hashing it (it failed to decode; the digest is void).
    func skip(sequence: Int) {
        condition.lock()
        while next != sequence { condition.wait() }
        next += 1
        condition.broadcast()
        condition.unlock()
    }

    /// Call after every frame was hashed (the writer drains all frames first).
    func finalize() -> SHA256Digest {
        condition.lock()
        defer { condition.unlock() }
        return hasher.finalize()
    }
}

