import Foundation
import Testing
@testable import Backstop

/// The one mapping from error to exit status (`ExitStatus(for:)`), which the root command and
/// `backstop run` both use. Errors are produced by the real parts where that is cheap (a file
/// that is not there, a seek table that is not one, a manifest that does not decode, a catalog
/// that is not SQLite), so the test follows what the library really throws.
@Suite struct ExitStatusTests {
    /// The error `body` throws (the test fails when it throws none).
    func thrown(_ body: () throws -> Void) -> Error? {
        do { try body() } catch { return error }
        Issue.record("no error thrown")
        return nil
    }

    @Test func libraryErrorsMapToTheirDocumentedStatus() throws {
        let dir = TemporaryDirectory()
        try writeFile(dir.sub("garbage"), Array("this is not zstd, nor JSON, nor SQLite; it is long enough to be read as a header\n".utf8))
        let cases: [(String, Error?, Backstop.ExitStatus)] = [
            ("a missing file", thrown { _ = try FileByteSource(path: dir.sub("missing")) }, .ioError),
            ("a full disk", FileError.write(path: dir.sub("x"), errno: ENOSPC), .ioError),
            ("a stored file that ends early", FileError.truncated(path: dir.sub("x"), offset: 10, wanted: 4), .integrity),
            ("a file that is not seekable zstd", thrown { _ = try SeekableZstdReader(source: FileByteSource(path: dir.sub("garbage"))) }, .integrity),
            ("a corrupt zstd frame", ZstdError.corruptFrame("Data corruption detected"), .integrity),
            ("a zstd checksum mismatch", ZstdError.checksumMismatch, .integrity),
            ("a failed compressor", ZstdError.compressionFailed("out of memory"), .failure),
            ("a corrupt frame", FrameError(frame: 3, underlying: ZstdError.checksumMismatch), .integrity),
            ("an unreadable frame", FrameError(frame: 3, underlying: FileError.read(path: dir.sub("x"), errno: EIO)), .ioError),
            ("a hostile tar", ArchiveError.failed(operation: "read header", path: nil, reason: "Damaged tar archive"), .integrity),
            ("a pg archive that does not parse", PgArchiveTableFilterError.unreadable("the toc.dat header"), .integrity),
            ("libcrypto", CryptoError.failed(operation: "EVP_DigestFinal_ex", reason: "?"), .failure),
            ("an interruption", Interrupted(signal: SIGTERM), .interrupted),
            ("a held lock", RepositoryError.lockHeld(path: dir.path, holder: LockHolder(host: "h", pid: 1, startedAt: Date(), command: "c"), waited: 0, lockFile: "l"), .lockHeld),
            ("a manifest that does not decode", thrown { _ = try JSONDecoder().decode(Manifest.self, from: Data("{\"format\": 1}".utf8)) }, .integrity),
            ("a catalog that is not SQLite", thrown { _ = try Catalog(path: dir.sub("garbage")) }, .ioError),
            ("a restore target that cannot be written", ExtractionError.io(path: "t", operation: "write", errno: EIO), .ioError),
            ("Foundation reading a missing file", thrown { _ = try Data(contentsOf: URL(fileURLWithPath: dir.sub("missing"))) }, .ioError),
            ("anything else", CocoaError(.featureUnsupported), .failure),
        ]
        for (what, error, expected) in cases {
            guard let error else { continue }
            #expect(Backstop.ExitStatus(for: error) == expected, "\(what): \(type(of: error)) \(error)")
        }
    }

    /// Every error type of the library knows its own status: `run` reports a job's failure with
    /// the code the failing command would exit with.
    @Test(arguments: [
        FileError.open(path: "p", errno: ENOENT) as Error,
        ZstdError.corruptFrame("x"),
        FrameError(frame: 0, underlying: ZstdError.checksumMismatch),
        ArchiveError.failed(operation: "read data", path: nil, reason: "x"),
        CryptoError.failed(operation: "o", reason: "r"),
        PgArchiveTableFilterError.unreadable("x"),
        Errno(code: EIO),
    ])
    func libraryErrorTypesProvideTheirStatus(_ error: Error) {
        #expect(error is ExitStatusProviding, "\(type(of: error)) does not conform to ExitStatusProviding")
    }
}
