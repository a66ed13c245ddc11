#include "CStoppers.h"
#include "CPUHints.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>

int mg_stopper_offsets_available(void) { return mg_avx512f_available(); }

// Sixteen entries a step: one unsigned comparison gives the stoppers' mask, `vpcompressd` (register form: its
// memory form is microcoded on AMD Zen 4) packs their offsets to the front, `vpmovdb` narrows them to bytes, and a
// 16-byte store appends them; the bytes past the stoppers are overwritten by the next step or left unused. The
// store stays within `count` bytes: before step i at most i offsets are written.
__attribute__((target("avx512f")))
static int offsets_avx512(const uint32_t *entries, int count, uint32_t threshold, int at_least, int reversed,
                          uint8_t *out) {
    const __m512i limit = _mm512_set1_epi32((int)threshold);
    const __m512i step = _mm512_set1_epi32(16);
    const __m512i reverse = _mm512_setr_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    __m512i offsets = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    int n = 0;
    for (int i = 0; i < count; i += 16) {
        __m512i v;
        if (reversed) {
            // Lane l after the permutation holds entry count − 1 − i − l, of offset i + l.
            v = _mm512_permutexvar_epi32(reverse, _mm512_loadu_si512((const void *)(entries + count - 16 - i)));
        } else {
            v = _mm512_loadu_si512((const void *)(entries + i));
        }
        __mmask16 stops = at_least ? _mm512_cmpge_epu32_mask(v, limit) : _mm512_cmple_epu32_mask(v, limit);
        __m128i bytes = _mm512_cvtepi32_epi8(_mm512_maskz_compress_epi32(stops, offsets));
        // Keeps `vpmovdb` in its register form: the compiler would fold the store into it, and the memory form is
        // microcoded on AMD Zen 4 and 5 (a third of this loop's time in a profile).
        __asm__("" : "+x"(bytes));
        _mm_storeu_si128((__m128i *)(out + n), bytes);
        n += __builtin_popcount((unsigned)stops);
        offsets = _mm512_add_epi32(offsets, step);
    }
    return n;
}

int mg_stopper_offsets(const uint32_t *entries, int count, uint32_t threshold, int at_least, int reversed,
                       uint8_t *out) {
    if (!mg_stopper_offsets_available()) return -1;
    return offsets_avx512(entries, count, threshold, at_least, reversed, out);
}

#else

int mg_stopper_offsets_available(void) { return 0; }

int mg_stopper_offsets(const uint32_t *entries, int count, uint32_t threshold, int at_least, int reversed,
                       uint8_t *out) {
    (void)entries; (void)count; (void)threshold; (void)at_least; (void)reversed; (void)out;
    return -1;
}

#endif
