import CAllocator

/// How the executor asks the C allocator to treat the buffers it frees. A group's chunk buffers are freed when the
/// group ends and the next group allocates the same sizes again at once; glibc's defaults hand that memory back to
/// the kernel and fault it in again, page by page, for every tensor (a quarter more CPU time on a 1b-shaped chain).
/// Keeping blocks up to 32 MiB on the heap, and trimming it only above 1 GiB, reuses the pages instead. What the
/// run holds (`MemoryAccount`) is unchanged: freed memory is only kept for reuse.
enum AllocatorTuning {
    /// Applies the tuning once per process (glibc only; elsewhere nothing changes).
    static let apply: Void = {
        _ = mergegraph_tune_allocator(32 << 20, 1 << 30)
    }()
}
