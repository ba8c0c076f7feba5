import Foundation
@testable import Backstop

/// The local paths of a repository on a `LocalBackend`: for tests about the local disk (files
/// damaged in place, permissions, what a crash leaves on disk). Tests that are not about the disk
/// go through keys (`repo.storage`) and run on every backend (`Backends`).
extension Repository {
    var local: LocalBackend {
        guard let local = storage as? LocalBackend else { preconditionFailure("a test about the local disk got \(storage.location)") }
        return local
    }
    var path: String { local.root }
    var snapshotsDirectory: String { local.path(of: RepositoryLayout.snapshots) }
    var eventsDirectory: String { local.path(of: RepositoryLayout.events) }
    var tmpDirectory: String { local.root + "/tmp" }
    var locksDirectory: String { local.root + "/locks" }
    var catalogPath: String { local.defaultCatalogPath! }
    func snapshotDirectory(_ id: SnapshotID) -> String { local.path(of: RepositoryLayout.snapshot(id)) }
    func snapshotFolders() throws -> [SnapshotID] { try snapshotIDs() }
}
