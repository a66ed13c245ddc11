#ifndef CFILEOPS_H
#define CFILEOPS_H

/// Atomically exchanges two paths (Linux renameat2 RENAME_EXCHANGE, macOS renamex_np RENAME_SWAP).
/// Returns 0, or -1 with errno set (EINVAL/ENOSYS/ENOTSUP when the file system cannot).
int mg_rename_exchange(const char *from, const char *to);

/// Renames `from` to `to` only when `to` does not exist (RENAME_NOREPLACE / RENAME_EXCL).
/// Returns 0, or -1 with errno set (EEXIST when `to` exists; EINVAL/ENOSYS/ENOTSUP when unsupported).
int mg_rename_noreplace(const char *from, const char *to);

#endif
