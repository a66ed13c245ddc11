#ifndef MG_AVX2MASKS_H
#define MG_AVX2MASKS_H

// What the AVX2 kernels of CStoppers share (Partition16AVX2.c, WindowCount16AVX2.c). x86-64 only; included where
// <immintrin.h> is.
#include <stdint.h>
#include <immintrin.h>

// Bit i of the result for 16-bit lane i of the 32 lanes `a` (lanes 0–15) and `b` (16–31), each all ones or all
// zeros (a comparison's result).
__attribute__((target("avx2")))
static inline uint32_t mg_mask32_epi16(__m256i a, __m256i b) {
    // `vpacksswb` interleaves the halves (a 0–7, b 0–7, a 8–15, b 8–15); the permutation restores their order.
    return (uint32_t)_mm256_movemask_epi8(_mm256_permute4x64_epi64(_mm256_packs_epi16(a, b), 0xD8));
}

#endif
