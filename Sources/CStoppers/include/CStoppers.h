#ifndef CSTOPPERS_H
#define CSTOPPERS_H

#include <stdint.h>

/// Whether `mg_stopper_offsets` runs here: an x86-64 processor with AVX-512F (checked once, at the first call).
/// Returns 1 or 0.
int mg_stopper_offsets_available(void);

/// The classification step of `TorchArgsortReplay`'s block partition, sixteen 32-bit entries per AVX-512
/// comparison: the offsets (0 ..< `count`) of the entries that stop a Hoare scan, in increasing order, as bytes at
/// `out` (room for `count` bytes); returns how many. An entry stops the scan when it is at most `threshold`
/// (`at_least` 0) or at least `threshold` (`at_least` 1), compared as unsigned integers.
///
/// `reversed` 0: entry `entries[j]` has offset `j` (the left scan, from `entries` upward). `reversed` 1: entry
/// `entries[j]` has offset `count − 1 − j` (the right scan, from the block's end downward).
///
/// `count` is a positive multiple of 16 and at most 256. Call only when `mg_stopper_offsets_available()` is 1;
/// elsewhere it returns −1 and writes nothing.
int mg_stopper_offsets(const uint32_t *entries, int count, uint32_t threshold, int at_least, int reversed,
                       uint8_t *out);

#endif
