#if canImport(Glibc)
import Glibc
#endif

/// glibc's allocator, told to keep freed memory for reuse in the commands that decode frame
/// after frame (verify, restore). By default glibc returns the top of its heap to the kernel as
/// soon as a large enough block is freed, and moves its mmap threshold as it goes, so every frame's
/// buffers came back as fresh pages: a full verification of 81 MiB stored took 31,000 page
/// faults unencrypted and 62,000 encrypted (the decrypted copy), a third of its time (measured
/// with /usr/bin/time -v; the README's Performance section has the numbers). Keeping up to 64 MiB
/// of freed heap takes the faults to about 2,600. Backups keep glibc's defaults: their peak
/// resident size is held under 64 MiB, and a retained heap would add to it.
///
/// `mallopt` is looked up at run time (its header, malloc.h, is not in Swift's Glibc module);
/// the parameter numbers are glibc's (`M_TRIM_THRESHOLD` -1, `M_TOP_PAD` -2). Elsewhere: nothing.
enum MallocTuning {
    static func forFrameReading() {
        #if canImport(Glibc)
        typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return }   // RTLD_DEFAULT
        let mallopt = unsafeBitCast(symbol, to: Mallopt.self)
        _ = mallopt(-1, 64 << 20)   // M_TRIM_THRESHOLD
        _ = mallopt(-2, 8 << 20)    // M_TOP_PAD
        #endif
    }
}
