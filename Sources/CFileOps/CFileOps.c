#define _GNU_SOURCE
#include "CFileOps.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

static int mg_renameat2(const char *from, const char *to, unsigned int flags) {
#ifdef SYS_renameat2
    return (int)syscall(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to, flags);
#else
    errno = ENOSYS;
    return -1;
#endif
}

int mg_rename_exchange(const char *from, const char *to) { return mg_renameat2(from, to, RENAME_EXCHANGE); }
int mg_rename_noreplace(const char *from, const char *to) { return mg_renameat2(from, to, RENAME_NOREPLACE); }

#elif defined(__APPLE__)
int mg_rename_exchange(const char *from, const char *to) { return renamex_np(from, to, RENAME_SWAP); }
int mg_rename_noreplace(const char *from, const char *to) { return renamex_np(from, to, RENAME_EXCL); }

#else
int mg_rename_exchange(const char *from, const char *to) { (void)from; (void)to; errno = ENOSYS; return -1; }
int mg_rename_noreplace(const char *from, const char *to) { (void)from; (void)to; errno = ENOSYS; return -1; }
#endif

#if defined(__linux__)
#include <sys/vfs.h>
/* Local block-device file systems whose direct I/O is plain and fast: ext2/3/4, XFS, btrfs, F2FS. Network and FUSE
   file systems take O_DIRECT too, but each write becomes a synchronous round trip there, so they are left out. */
static int mg_is_local_block_type(unsigned long type) {
    switch (type) {
    case 0xEF53UL: case 0x58465342UL: case 0x9123683EUL: case 0xF2F52010UL: return 1;
    default: return 0;
    }
}

int mg_is_local_block_file_system_at(const char *path) {
    struct statfs info;
    return statfs(path, &info) == 0 && mg_is_local_block_type((unsigned long)info.f_type);
}

int mg_open_write_uncached(int fd) {
    struct statfs info;
    if (fstatfs(fd, &info) != 0) return -1;
    if (!mg_is_local_block_type((unsigned long)info.f_type)) { errno = EOPNOTSUPP; return -1; }
    /* The same open file, not whatever the path names by now. */
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    return open(path, O_WRONLY | O_DIRECT | O_CLOEXEC);
}
#elif defined(__APPLE__)
int mg_is_local_block_file_system_at(const char *path) { (void)path; return 0; }
int mg_open_write_uncached(int fd) {
    int uncached = dup(fd);
    if (uncached >= 0 && fcntl(uncached, F_NOCACHE, 1) == -1) { int saved = errno; close(uncached); errno = saved; return -1; }
    return uncached;
}
#else
int mg_is_local_block_file_system_at(const char *path) { (void)path; return 0; }
int mg_open_write_uncached(int fd) { (void)fd; errno = ENOSYS; return -1; }
#endif
