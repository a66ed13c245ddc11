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

/// Which side of a block partition's cut its caller reads again (`mg_block_partition16`'s `keep`).
enum { MG_KEEP_BOTH = 0, MG_KEEP_LEFT = 1, MG_KEEP_RIGHT = 2 };

/// Whether `mg_block_partition16` runs here: an x86-64 processor with AVX-512F, BW, VL, VBMI and VBMI2 and BMI2,
/// or else with AVX2 and POPCNT (`mg_block_partition16_avx2`), asked once. Returns 1 or 0.
int mg_block_partition16_available(void);

/// Whether `mg_block_partition16_avx2` runs here: an x86-64 processor with AVX2 and POPCNT, asked once (the
/// first call also builds its tables of offsets). Returns 1 or 0.
int mg_avx2_partition_available(void);

/// `mg_block_partition16` in AVX2 (Partition16AVX2.c): the same exchanges and results, sixteen keys a comparison and
/// the pairs exchanged one by one from lists of their offsets. `mg_block_partition16` uses it where
/// the processor lacks the AVX-512 subsets; tests call it directly to compare it with the Swift partition on any
/// processor. Returns −1 and writes nothing where `mg_avx2_partition_available()` is 0, else 0.
int mg_block_partition16_avx2(uint16_t *entries, uint8_t *high, int64_t first, int64_t last, uint16_t pivot,
                              int left_at_least, uint16_t first_key, uint16_t second_key, int keep, int64_t *out);

/// The branch-free phase of `TorchArgsortReplay`'s Hoare partition (`Sorter.blockPartition`) on the 2-byte entries
/// of `CompactEntries`, with the same exchanges: while the unexamined middle of `first ..< last` (positions) holds
/// at least two blocks of 128 entries, the left block's stoppers (keys at least `pivot` when `left_at_least` is 1,
/// else at most it) are paired in increasing position order with the right block's (keys at most, or at least,
/// `pivot`) in decreasing position order, and each pair exchanged; a block whose stoppers are all paired gives way
/// to the next. An entry below 0x8000 is its own key; a tagged entry (bit 15) has key `first_key`, or `second_key`
/// when its bit 14 is set, and when a tagged entry moves, the bytes of `high` (one per position) move alike. Thirty-
/// two keys per AVX-512 comparison, the exchanges of a pair of blocks by `vpcompressw`/`vpexpandw` (register forms);
/// on processors with AVX2 but not those AVX-512 subsets, `mg_block_partition16_avx2`.
///
/// `keep` (`MG_KEEP_BOTH`, `MG_KEEP_LEFT`, `MG_KEEP_RIGHT`) says which side of the cut the caller will read again.
/// With one side kept, the AVX2 form writes only that side's half of each exchange (one entry load and store a pair
/// instead of two; a pass over 11.5 M keys took 0.70–0.75 ns an entry against 0.95–0.98, Zen 3): the other side's
/// paired stoppers keep stale entries, except that a tagged entry leaving it is overwritten there by the untagged
/// `pivot`, and that the position of it where the scalar scan in from the kept side must stop (`out[1]` keeping the
/// left, `out[0] − 1` keeping the right), when stale, is given `pivot`, so that it stops. The kept side and the cut
/// the scalar scans then find are those of the full exchange; the AVX-512 form makes the full exchange whatever
/// `keep` says.
///
/// Writes to `out[0]` the next position the left scan examines and to `out[1]` one past the next position the right
/// scan examines; returns 0. Call only when `mg_block_partition16_available()` is 1; elsewhere it returns −1 and
/// writes nothing.
int mg_block_partition16(uint16_t *entries, uint8_t *high, int64_t first, int64_t last, uint16_t pivot,
                         int left_at_least, uint16_t first_key, uint16_t second_key, int keep, int64_t *out);

/// Whether `mg_window_count16` runs here (the processors `mg_block_partition16` runs on: its AVX-512 subsets, or
/// AVX2 and POPCNT, `mg_window_count16_avx2`). Returns 1 or 0.
int mg_window_count16_available(void);

/// Whether `mg_window_count16_avx2` runs here: an x86-64 processor with AVX2 and POPCNT (those
/// `mg_block_partition16_avx2` runs on), asked once. Returns 1 or 0.
int mg_window_count16_avx2_available(void);

/// `mg_window_count16` in AVX2 (WindowCount16AVX2.c): the same counts, sixteen keys a comparison, the in-window
/// keys counted one by one from the set bits of their mask. `mg_window_count16` uses it where the processor lacks
/// the AVX-512 subsets; tests call it directly to compare it with the scalar count on any processor. Returns −1 and
/// counts nothing where `mg_window_count16_avx2_available()` is 0, else 0.
int mg_window_count16_avx2(const uint16_t *keys, int64_t count, uint16_t lo1, uint16_t hi1, uint16_t lo2, uint16_t hi2,
                           int64_t *table, int64_t *gaps);

/// The windowed count of `TieCut`'s keys (bf16 magnitudes' 15-bit keys, below 0x8000): adds 1 to `table[k]` for
/// each of the `count` keys `k` at `keys` that lies in `lo1 ... hi1` or in `lo2 ... hi2` (`hi1 < lo2`; a window
/// with `lo > hi` holds nothing), adds to `gaps[0]` how many lie below `lo1` and to `gaps[1]` how many lie strictly
/// between `hi1` and `lo2`; keys above the last window are not counted. Thirty-two keys per AVX-512 comparison
/// (sixteen per AVX2 one), so that only the few keys near the cuts pay an increment. Returns 0; −1 (and nothing
/// counted) where it does not run.
int mg_window_count16(const uint16_t *keys, int64_t count, uint16_t lo1, uint16_t hi1, uint16_t lo2, uint16_t hi2,
                      int64_t *table, int64_t *gaps);

/// A decided tie cut's output over a held bf16 plane (`KeepTest.apply` on `HeldOperand.Plane<BF16Rounding>`):
/// for `i` in `start ..< start + count`, out[i − start] is the f32 widening of `plane[i]` where element `i` is kept, +0
/// elsewhere. Kept: with `by_mask`, bit `i % 64` of `bits[i / 64]`; else, with key = plane[i] & 0x7FFF (0x7FC0 for a
/// NaN), low ≤ key ≤ high (unsigned) and, when key is `first` or `second`, the bit. `start` and `count` are multiples
/// of 16. Returns −1 and writes nothing without AVX-512F (`mg_keep_bf16_available`), else 0.
int mg_keep_bf16(const uint16_t *plane, const uint64_t *bits, int by_mask, uint32_t low, uint32_t high, uint32_t first,
                 uint32_t second, int64_t start, int64_t count, float *out);

/// Whether `mg_keep_bf16` runs here (AVX-512F). Returns 1 or 0.
int mg_keep_bf16_available(void);

/// `TieCut.decide`'s making of a compact replay's entries (`CompactEntries`) over elements `start ..< end`: with a
/// `plane` (a deferred cut's held bf16 values), `e[i]` becomes the key of `plane[i]` (its magnitude's bit pattern,
/// every NaN 0x7FC0); without (NULL), `e[i]` already holds it. Each element whose key is `first` or `second` (the
/// tracked keys), in increasing `i`, gets the next ordinal from `ordinal` on: `e[i]` becomes its tag `0x8000 |
/// (key != first) << 14 | ordinal & 0x3FFF`, `high[i]` the ordinal's bits above those, and bit `i % 64` of
/// `bits[i / 64]` is set. Returns the ordinal after the last one given. Sixteen keys a comparison with AVX2 when
/// `vector` is 1 and the processor has it, else one by one (tests compare the two); the results are the same.
int64_t mg_tag_tracked16(const uint16_t *plane, uint16_t *e, uint8_t *high, uint64_t *bits, int64_t start, int64_t end,
                         uint16_t first, uint16_t second, int64_t ordinal, int vector);

#endif
