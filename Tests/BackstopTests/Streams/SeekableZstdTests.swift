import Foundation
import Testing
@testable import Backstop

@Suite struct SeekableZstdTests {
    /// Compresses `data` with small frames into a file, returning its path and the writer.
    func compress(_ data: [UInt8], in dir: TemporaryDirectory, frameSize: Int = 64 << 10,
                  boundaries: [Int] = [], minimumAtBoundary: Int = 16 << 10) throws -> (String, SeekableZstdWriter) {
        let path = dir.sub("data.zst")
        let writer = SeekableZstdWriter(downstream: try FileSink(path: path), level: 3, frameSize: frameSize,
                                        minimumFrameAtBoundary: minimumAtBoundary, workers: 2)
        var position = 0
        for b in boundaries.sorted() + [data.count] {
            if b > position {
                try writer.write(Array(data[position..<b]))
                position = b
            }
            if b < data.count { try writer.markBoundary() }
        }
        try writer.finish()
        return (path, writer)
    }

    func corpus() -> [UInt8] {
        var gen = SeededBytes(seed: 42)
        return gen.text(700_000) + gen.bytes(300_000) + gen.text(123_457)
    }

    @Test func zstdCLIDecodesTheWholeStream() throws {
        let dir = TemporaryDirectory()
        let data = corpus()
        let (path, writer) = try compress(data, in: dir)
        #expect(writer.frames.count == (data.count + (64 << 10) - 1) / (64 << 10))
        let r = try runProcess("zstd", ["-dc", path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == data)
    }

    @Test func emptyStreamIsValid() throws {
        let dir = TemporaryDirectory()
        let (path, writer) = try compress([], in: dir)
        #expect(writer.frames.isEmpty)
        let r = try runProcess("zstd", ["-dc", path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.isEmpty)
        let reader = try SeekableZstdReader(source: FileByteSource(path: path))
        #expect(reader.frames.isEmpty && reader.uncompressedSize == 0)
    }

    @Test func eachFrameDecodesToExactlyItsSlice() throws {
        let dir = TemporaryDirectory()
        let data = corpus()
        let (path, writer) = try compress(data, in: dir)
        let reader = try SeekableZstdReader(source: FileByteSource(path: path))
        #expect(reader.frames == writer.frames)
        var expectedOffset: Int64 = 0
        for (i, f) in reader.frames.enumerated() {
            #expect(f.uncompressedOffset == expectedOffset)
            expectedOffset += Int64(f.uncompressedSize)
            let slice = Array(data[Int(f.uncompressedOffset)..<Int(f.uncompressedEnd)])
            #expect(try reader.decodeFrame(i) == slice)
            // The same frame cut out of the file is a standalone zstd frame for the CLI too.
            let raw = try FileByteSource(path: path).read(at: f.compressedOffset, count: f.compressedSize)
            let cli = try runProcess("zstd", ["-dc"], input: raw)
            #expect(cli.stdout == slice)
        }
        #expect(expectedOffset == Int64(data.count))
    }

    @Test(arguments: [(0, 1), (5, 70_000), (65_535, 65_537), (300_000, 900_000), (1_123_456, 1_123_457)])
    func rangeReadsDecodeOnlyTheirFrames(from: Int, to: Int) throws {
        let dir = TemporaryDirectory()
        let data = corpus()
        let (path, _) = try compress(data, in: dir)
        let source = try FileByteSource(path: path)
        let reader = try SeekableZstdReader(source: source)
        let tableBytes = source.bytesRead
        let sink = MemorySink()
        try reader.read(range: Int64(from)..<Int64(to), into: sink)
        #expect(sink.bytes == Array(data[from..<to]))
        let needed = reader.frames.filter { $0.uncompressedOffset < Int64(to) && $0.uncompressedEnd > Int64(from) }
        #expect(source.bytesRead - tableBytes == Int64(needed.reduce(0) { $0 + $1.compressedSize }))
    }

    @Test func boundariesEndFramesOnceTheyAreBigEnough() throws {
        let dir = TemporaryDirectory()
        let data = corpus()
        // A boundary 20 KiB in (frame big enough) and one 4 KiB later (too small to cut).
        let (_, writer) = try compress(data, in: dir, frameSize: 256 << 10, boundaries: [20_000, 24_000, 100_000], minimumAtBoundary: 16 << 10)
        let starts = writer.frames.map(\.uncompressedOffset)
        #expect(starts.prefix(3) == [0, 20_000, 100_000])
        #expect(!starts.contains(24_000))
    }

    @Test func manyFramesStayInOrderUnderParallelCompression() throws {
        let dir = TemporaryDirectory()
        var gen = SeededBytes(seed: 9)
        let data = gen.text(3_000_000)
        let (path, writer) = try compress(data, in: dir, frameSize: 10_000)
        #expect(writer.frames.count == 300)
        let r = try runProcess("zstd", ["-dc", path])
        #expect(r.stdout == data)
    }

    @Test func aFlippedBitIsReportedAsACorruptFrame() throws {
        let dir = TemporaryDirectory()
        let data = corpus()
        let (path, writer) = try compress(data, in: dir)
        var bytes = try readFile(path)
        let target = writer.frames[3]
        bytes[Int(target.compressedOffset) + target.compressedSize / 2] ^= 0x10
        try writeFile(path, bytes)
        let reader = try SeekableZstdReader(source: FileByteSource(path: path))
        #expect(throws: ZstdError.self) { try reader.decodeFrame(3) }
        #expect(try reader.decodeFrame(2) == Array(data[Int(writer.frames[2].uncompressedOffset)..<Int(writer.frames[2].uncompressedEnd)]))
    }

    @Test func aTruncatedFileHasNoSeekTable() throws {
        let dir = TemporaryDirectory()
        let (path, _) = try compress(corpus(), in: dir)
        let bytes = try readFile(path)
        try writeFile(path, Array(bytes.dropLast(100)))
        #expect(throws: ZstdError.self) { try SeekableZstdReader(source: FileByteSource(path: path)) }
    }

    @Test func aSeekTableThatLiesAboutAFrameSizeIsCaught() throws {
        let dir = TemporaryDirectory()
        let data = corpus()
        let (path, writer) = try compress(data, in: dir)
        var bytes = try readFile(path)
        // Entry 1's decompressed size sits at table start + 8 + 1*8 + 4.
        let tableStart = bytes.count - SeekTable.size(frameCount: writer.frames.count)
        bytes[tableStart + 8 + 8 + 4] ^= 0x01
        try writeFile(path, bytes)
        let reader = try SeekableZstdReader(source: FileByteSource(path: path))
        #expect(throws: ZstdError.self) { try reader.decodeFrame(1) }
    }
}
