#ifndef MG_BLOCKPAIRS_H
#define MG_BLOCKPAIRS_H

// What both forms of the block partition share (`partition16_avx512` in CStoppers.c and `partition16_avx2` in
// Partition16AVX2.c): blocks of 128 entries, prefetched some blocks ahead. x86-64 only; included where
// <immintrin.h> is.
#include <stdint.h>
#include <immintrin.h>

#ifndef MG_PREFETCH_BLOCKS
#define MG_PREFETCH_BLOCKS 8
#endif

// Prefetches the block at position `at`: its 128 entries (256 bytes) and their 128 bytes of ordinals' high bits
// (read when a tagged entry of the block moves, which is common: one element in a few hundred is tracked).
static inline void mg_prefetch_block16(const uint16_t *e, const uint8_t *high, int64_t at) {
    for (int c = 0; c < 128; c += 32) _mm_prefetch((const char *)(e + at + c), _MM_HINT_T0);
    _mm_prefetch((const char *)(high + at), _MM_HINT_T0);
    _mm_prefetch((const char *)(high + at + 64), _MM_HINT_T0);
}

#endif
