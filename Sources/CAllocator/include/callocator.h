#ifndef MERGEGRAPH_CALLOCATOR_H
#define MERGEGRAPH_CALLOCATOR_H

/// Keeps freed blocks up to `mmap_threshold` bytes on the heap and trims the heap only above `trim_threshold`
/// (glibc's mallopt M_MMAP_THRESHOLD and M_TRIM_THRESHOLD); returns 1 when both were applied, 0 elsewhere.
int mergegraph_tune_allocator(int mmap_threshold, int trim_threshold);

#endif
