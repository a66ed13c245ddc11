#ifndef CMEMORYOPS_H
#define CMEMORYOPS_H

#include <stddef.h>

/// Moves the pages of `bytes` bytes (a multiple of the page size) at `from` to `to` (both page-aligned, `from`'s range
/// inside one mapping, `to`'s range mapped or not; whatever was mapped there is unmapped first): Linux
/// `mremap(from, bytes, bytes, MREMAP_MAYMOVE | MREMAP_FIXED, to)`, which moves page-table entries and neither copies
/// nor clears the pages (C, since Swift does not import the variadic `mremap`).
/// Returns 0, or -1 with errno set (EFAULT when `from`'s range spans mappings; ENOSYS on other systems).
int mg_move_pages(void *from, size_t bytes, void *to);

#endif
