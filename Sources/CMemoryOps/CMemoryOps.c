#define _GNU_SOURCE
#include "CMemoryOps.h"
#include <errno.h>

#if defined(__linux__)
#include <sys/mman.h>

int mg_move_pages(void *from, size_t bytes, void *to) {
    void *moved = mremap(from, bytes, bytes, MREMAP_MAYMOVE | MREMAP_FIXED, to);
    return moved == MAP_FAILED ? -1 : 0;
}
#else
int mg_move_pages(void *from, size_t bytes, void *to) {
    (void)from; (void)bytes; (void)to;
    errno = ENOSYS;
    return -1;
}
#endif
