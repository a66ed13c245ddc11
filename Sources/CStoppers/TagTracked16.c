// `mg_tag_tracked16`: the step of `TieCut.decide` that makes a compact replay's entries (`CompactEntries`): fill the
// 2-byte keys from the held bf16 plane and tag the tracked ones, in one pass over the tensor. In Swift it was two
// passes over each block of 32 Ki keys, the keys' fill (a loop the compiler vectorizes) and a scan for the tracked
// keys four at a time (SWAR over 64-bit words), together about 8% of `ties3`'s profile on the Zen 3 VM; here thirty-two
// keys are filled and compared a step with AVX2 and only the few steps holding a tracked key go on one by one.
#include "CStoppers.h"
#include "CPUHints.h"

// The bf16 key of the bf16 value `bits`: its magnitude's bit pattern, every NaN made 0x7FC0 (`TieCut.key`).
static inline uint16_t bf16_key(uint16_t bits) {
    uint16_t magnitude = bits & 0x7FFF;
    return magnitude > 0x7F80 ? 0x7FC0 : magnitude;
}

// Tags entry `i` (key `key`, tracked) with ordinal `ordinal`, as `CompactEntries.tag` and `TieCut.decide` do.
static inline void tag_one(uint16_t *e, uint8_t *high, uint64_t *bits, int64_t i, uint16_t key, uint16_t first,
                           int64_t ordinal) {
    e[i] = (uint16_t)(0x8000 | (key != first ? 0x4000 : 0) | (ordinal & 0x3FFF));
    high[i] = (uint8_t)(ordinal >> 14);
    bits[i >> 6] |= 1ULL << (i & 63);
}

static int64_t tag_tracked16_scalar(const uint16_t *plane, uint16_t *e, uint8_t *high, uint64_t *bits, int64_t start,
                                    int64_t end, uint16_t first, uint16_t second, int64_t ordinal) {
    for (int64_t i = start; i < end; i++) {
        uint16_t key = plane ? bf16_key(plane[i]) : e[i];
        e[i] = key;
        if (key == first || key == second) tag_one(e, high, bits, i, key, first, ordinal++);
    }
    return ordinal;
}

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>
#include "AVX2Masks.h"

#define MG_TARGET2 __attribute__((target("avx2")))

MG_TARGET2
static int64_t tag_tracked16_avx2(const uint16_t *plane, uint16_t *e, uint8_t *high, uint64_t *bits, int64_t start,
                                  int64_t end, uint16_t first, uint16_t second, int64_t ordinal) {
    const __m256i magnitude = _mm256_set1_epi16(0x7FFF), inf = _mm256_set1_epi16(0x7F80);
    const __m256i nan = _mm256_set1_epi16(0x7FC0);
    const __m256i f = _mm256_set1_epi16((short)first), s = _mm256_set1_epi16((short)second);
    int64_t i = start;
    for (; i + 32 <= end; i += 32) {
        __m256i k[2];
        for (int h = 0; h < 2; h++) {
            __m256i v;
            if (plane) {
                v = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(plane + i + 16 * h)), magnitude);
                // Magnitudes are below 0x8000: a signed comparison finds the NaNs.
                v = _mm256_blendv_epi8(v, nan, _mm256_cmpgt_epi16(v, inf));
                _mm256_storeu_si256((__m256i *)(e + i + 16 * h), v);
            } else {
                v = _mm256_loadu_si256((const __m256i *)(e + i + 16 * h));
            }
            k[h] = _mm256_or_si256(_mm256_cmpeq_epi16(v, f), _mm256_cmpeq_epi16(v, s));
        }
        uint32_t tracked = mg_mask32_epi16(k[0], k[1]);
        while (tracked) {
            int64_t j = i + __builtin_ctz(tracked);
            tag_one(e, high, bits, j, e[j], first, ordinal++);
            tracked &= tracked - 1;
        }
    }
    return tag_tracked16_scalar(plane, e, high, bits, i, end, first, second, ordinal);
}

int64_t mg_tag_tracked16(const uint16_t *plane, uint16_t *e, uint8_t *high, uint64_t *bits, int64_t start, int64_t end,
                         uint16_t first, uint16_t second, int64_t ordinal, int vector) {
    if (vector && mg_avx2_available()) return tag_tracked16_avx2(plane, e, high, bits, start, end, first, second, ordinal);
    return tag_tracked16_scalar(plane, e, high, bits, start, end, first, second, ordinal);
}

#else

int64_t mg_tag_tracked16(const uint16_t *plane, uint16_t *e, uint8_t *high, uint64_t *bits, int64_t start, int64_t end,
                         uint16_t first, uint16_t second, int64_t ordinal, int vector) {
    (void)vector;
    return tag_tracked16_scalar(plane, e, high, bits, start, end, first, second, ordinal);
}

#endif
