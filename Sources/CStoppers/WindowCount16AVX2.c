// `mg_window_count16` for x86-64 processors with AVX2 but not the AVX-512 subsets of CStoppers.c (AMD Zen 2 and 3,
// Intel client cores): sixteen keys a comparison, the gaps' totals gathered in vector lanes, and the few in-window keys
// counted one by one from their mask's set bits. Without it such processors counted every key of a TIES cut one by one
// (`StreamingSelect.countHigh`, 10% of `ties3`'s profile on the Zen 3 VM).
#include "CStoppers.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>
#include "AVX2Masks.h"
#include "WindowCount.h"

#define MG_TARGET2 __attribute__((target("avx2,popcnt")))

// The processors `mg_block_partition16_avx2` runs on (AVX2 and POPCNT), asked once there.
int mg_window_count16_avx2_available(void) { return mg_avx2_partition_available(); }

MG_TARGET2
static void window_count16_avx2(const uint16_t *keys, int64_t count, uint16_t lo1, uint16_t hi1, uint16_t lo2,
                                uint16_t hi2, int64_t *table, int64_t *gaps) {
    // Four signed comparisons `k > c` a vector, for c = lo1 − 1, hi1, lo2 − 1 and hi2 (keys are below 0x8000 and
    // every c lies in −1 ... 0x7FFF): at least the first window's start, past its end, at least the second's start,
    // past its end. The gaps' totals gather in 16-bit lanes (a lane adds at most 16 a chunk of 256 keys) and the
    // in-window keys' bits of a whole chunk are collected before they are counted, so that the loop over set bits
    // ends four times a chunk rather than once every 32 keys (its exits are the mispredicted branches).
    const __m256i c1 = _mm256_set1_epi16((short)(lo1 - 1)), d1 = _mm256_set1_epi16((short)hi1);
    const __m256i c2 = _mm256_set1_epi16((short)(lo2 - 1)), d2 = _mm256_set1_epi16((short)hi2);
    int64_t below = 0, between = 0;
    int64_t i = 0;
    for (; i + 256 <= count; i += 256) {
        __m256i from = _mm256_setzero_si256(), gap = _mm256_setzero_si256();
        uint64_t in[4];
        for (int s = 0; s < 256; s += 64) {
            uint32_t half[2];
            for (int h = 0; h < 2; h++) {
                __m256i inside[2];
                for (int q = 0; q < 2; q++) {
                    __m256i v = _mm256_loadu_si256((const __m256i *)(keys + i + s + 32 * h + 16 * q));
                    __m256i from1 = _mm256_cmpgt_epi16(v, c1), past1 = _mm256_cmpgt_epi16(v, d1);
                    __m256i from2 = _mm256_cmpgt_epi16(v, c2), past2 = _mm256_cmpgt_epi16(v, d2);
                    // Lanes are −1 where true: `from` counts −(k ≥ lo1), `gap` counts (k > hi1) − (k ≥ lo2).
                    from = _mm256_add_epi16(from, from1);
                    gap = _mm256_add_epi16(gap, _mm256_sub_epi16(from2, past1));
                    inside[q] = _mm256_or_si256(_mm256_andnot_si256(past1, from1), _mm256_andnot_si256(past2, from2));
                }
                half[h] = mg_mask32_epi16(inside[0], inside[1]);
            }
            in[s / 64] = half[0] | (uint64_t)half[1] << 32;
        }
        for (int w = 0; w < 4; w++) {
            uint64_t bits = in[w];
            const uint16_t *base = keys + i + 64 * w;
            while (bits) {
                table[base[__builtin_ctzll(bits)]] += 1;
                bits &= bits - 1;
            }
        }
        // The lanes' sums: widen to 32 bits by multiply-add with ones, then add the eight 32-bit lanes.
        const __m256i ones = _mm256_set1_epi16(1);
        __m256i u = _mm256_madd_epi16(from, ones), g = _mm256_madd_epi16(gap, ones);
        __m256i both = _mm256_hadd_epi32(u, g);  // u0+u1 u2+u3 g0+g1 g2+g3 | u4+u5 u6+u7 g4+g5 g6+g7
        __m128i sum = _mm_add_epi32(_mm256_castsi256_si128(both), _mm256_extracti128_si256(both, 1));
        below += 256 + _mm_extract_epi32(sum, 0) + _mm_extract_epi32(sum, 1);
        between += _mm_extract_epi32(sum, 2) + _mm_extract_epi32(sum, 3);
    }
    mg_window_count16_tail(keys + i, count - i, lo1, hi1, lo2, hi2, table, &below, &between);
    gaps[0] += below;
    gaps[1] += between;
}

int mg_window_count16_avx2(const uint16_t *keys, int64_t count, uint16_t lo1, uint16_t hi1, uint16_t lo2, uint16_t hi2,
                           int64_t *table, int64_t *gaps) {
    if (!mg_window_count16_avx2_available()) return -1;
    window_count16_avx2(keys, count, lo1, hi1, lo2, hi2, table, gaps);
    return 0;
}

#else

int mg_window_count16_avx2_available(void) { return 0; }

int mg_window_count16_avx2(const uint16_t *keys, int64_t count, uint16_t lo1, uint16_t hi1, uint16_t lo2, uint16_t hi2,
                           int64_t *table, int64_t *gaps) {
    (void)keys; (void)count; (void)lo1; (void)hi1; (void)lo2; (void)hi2; (void)table; (void)gaps;
    return -1;
}

#endif
