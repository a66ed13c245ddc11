#ifndef CFILEOPS_H
#define CFILEOPS_H

/// Atomically exchanges two paths (Linux renameat2 RENAME_EXCHANGE, macOS renamex_np RENAME_SWAP).
/// Returns 0, or -1 with errno set (EINVAL/ENOSYS/ENOTSUP when the file system cannot).
int mg_rename_exchange(const char *from, const char *to);

/// Renames `from` to `to` only when `to` does not exist (RENAME_NOREPLACE / RENAME_EXCL).
/// Returns 0, or -1 with errno set (EEXIST when `to` exists; EINVAL/ENOSYS/ENOTSUP when unsupported).
int mg_rename_noreplace(const char *from, const char *to);

/// A second descriptor of the file open for writing as `fd`, writing past the page cache (Linux `O_DIRECT`, through
/// `/proc/self/fd`; macOS `F_NOCACHE` on a duplicate), so that written bytes go from the caller's buffer to the
/// device without taking page-cache memory. On Linux, writes through it must start at an offset, come from an
/// address and have a length that are multiples of the file system's block size (4096 bytes suffices on common file
/// systems), and only local block-device file systems qualify (ext2/3/4, XFS, btrfs, F2FS): on network and FUSE file
/// systems every such write would be a synchronous round trip.
/// Returns the descriptor, or -1 with errno set (EOPNOTSUPP for another file system; EINVAL when it cannot).
int mg_open_write_uncached(int fd);

/// 1 when `path` is on a Linux file system `mg_open_write_uncached` writes past the page cache on (ext2/3/4, XFS,
/// btrfs, F2FS), else 0 (also on other systems, and when `path` cannot be examined).
int mg_is_local_block_file_system_at(const char *path);

#endif
