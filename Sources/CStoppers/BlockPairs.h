#ifndef MG_BLOCKPAIRS_H
#define MG_BLOCKPAIRS_H

// The scalar steps both forms of the block partition share (`partition16_avx512` in CStoppers.c and
// `partition16_avx2` in Partition16AVX2.c): blocks of 128 entries, their stoppers as 128-bit masks (two words, bit
// i for entry i). x86-64 only; included where <immintrin.h> is.
#include <stdint.h>
#include <immintrin.h>

#ifndef MG_PREFETCH_BLOCKS
#define MG_PREFETCH_BLOCKS 8
#endif

// The lowest `k` set bits of the 128-bit mask `m` (k at most its population).
__attribute__((target("bmi2")))
static inline void mg_lowest_bits128(const uint64_t m[2], int k, uint64_t out[2]) {
    int low = __builtin_popcountll(m[0]);
    if (k <= low) {
        out[0] = k == 0 ? 0 : _pdep_u64(k == 64 ? ~0ULL : (1ULL << k) - 1, m[0]);
        out[1] = 0;
    } else {
        int rest = k - low;
        out[0] = m[0];
        out[1] = _pdep_u64(rest == 64 ? ~0ULL : (1ULL << rest) - 1, m[1]);
    }
}

// Prefetches the block at position `at`: its 128 entries (256 bytes) and their 128 bytes of ordinals' high bits
// (read when a tagged entry of the block moves, which is common: one element in a few hundred is tracked).
static inline void mg_prefetch_block16(const uint16_t *e, const uint8_t *high, int64_t at) {
    for (int c = 0; c < 128; c += 32) _mm_prefetch((const char *)(e + at + c), _MM_HINT_T0);
    _mm_prefetch((const char *)(high + at), _MM_HINT_T0);
    _mm_prefetch((const char *)(high + at + 64), _MM_HINT_T0);
}

// Where the scalar scans resume after the block loop over `l ..< r`: out[0] the next unpaired left stopper (the
// lowest of `ml`, of the block at l), or l; out[1] one past the next unpaired right stopper (the highest of `mr`, of
// the block at r − 128), or r.
static inline void mg_scan_resume(const uint64_t ml[2], const uint64_t mr[2], int64_t l, int64_t r, int64_t *out) {
    out[0] = ml[0] ? l + __builtin_ctzll(ml[0]) : (ml[1] ? l + 64 + __builtin_ctzll(ml[1]) : l);
    out[1] = mr[1] ? r - 128 + 64 + (63 - __builtin_clzll(mr[1])) + 1
                   : (mr[0] ? r - 128 + (63 - __builtin_clzll(mr[0])) + 1 : r);
}

#endif
