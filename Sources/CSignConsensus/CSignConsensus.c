#include "CSignConsensus.h"
#include "CPUHints.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>

int mg_ties_merge_bf16_available(void) { return mg_avx512f_available(); }

// `BF16Rounding.round` in sixteen lanes: (bits + 0x7FFF + lowest kept bit) with the low half cleared; NaN lanes
// keep their high half with the quiet bit set.
__attribute__((target("avx512f")))
static inline __m512 round_bf16(__m512 v) {
    const __m512i bits = _mm512_castps_si512(v);
    const __m512i high = _mm512_set1_epi32((int)0xFFFF0000u);
    const __m512i lowest = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
    const __m512i rounded = _mm512_and_si512(_mm512_add_epi32(_mm512_add_epi32(bits, _mm512_set1_epi32(0x7FFF)), lowest), high);
    const __m512i quiet = _mm512_and_si512(_mm512_or_si512(bits, _mm512_set1_epi32(0x00400000)), high);
    const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    return _mm512_castsi512_ps(_mm512_mask_mov_epi32(rounded, nan, quiet));
}

__attribute__((target("avx512f")))
static inline void ties_step(const float *const *x, const __m512 *c, int models, int normalize, int64_t i,
                             float *out) {
    const __m512 zero = _mm512_setzero_ps();
    __m512 t[3];
    __m512 elected = zero;
    for (int k = 0; k < models; k++) {
        t[k] = round_bf16(_mm512_mul_ps(_mm512_loadu_ps(x[k] + i), c[k]));
        elected = _mm512_add_ps(elected, t[k]);
    }
    const __mmask16 positive = _mm512_cmp_ps_mask(elected, zero, _CMP_GE_OQ);
    const __m512 sign = _mm512_mask_mov_ps(_mm512_set1_ps(-1.0f), positive, _mm512_set1_ps(1.0f));
    __m512 sum = zero, divisor = zero;
    for (int k = 0; k < models; k++) {
        const __mmask16 agrees = _mm512_cmp_ps_mask(_mm512_mul_ps(t[k], sign), zero, _CMP_GT_OQ);
        sum = _mm512_add_ps(sum, _mm512_maskz_mov_ps(agrees, t[k]));
        divisor = _mm512_add_ps(divisor, _mm512_maskz_mov_ps(agrees, c[k]));
    }
    if (normalize) {
        sum = round_bf16(sum);
        divisor = round_bf16(divisor);
        const __mmask16 unusable = _mm512_cmp_ps_mask(divisor, zero, _CMP_EQ_OQ);
        sum = _mm512_div_ps(sum, _mm512_mask_mov_ps(divisor, unusable, _mm512_set1_ps(1.0f)));
    }
    _mm512_storeu_ps(out + i, sum);
}

// The model count and `normalize` as constants in each loop, so that the loops over the models unroll.
__attribute__((target("avx512f")))
static void ties_avx512(const float *const *x, const float *weights, int models, int normalize, int64_t count,
                        float *out) {
    __m512 c[3];
    for (int k = 0; k < models; k++) c[k] = _mm512_set1_ps(weights[k]);
    if (models == 3) {
        if (normalize) { for (int64_t i = 0; i < count; i += 16) ties_step(x, c, 3, 1, i, out); }
        else { for (int64_t i = 0; i < count; i += 16) ties_step(x, c, 3, 0, i, out); }
    } else {
        if (normalize) { for (int64_t i = 0; i < count; i += 16) ties_step(x, c, 2, 1, i, out); }
        else { for (int64_t i = 0; i < count; i += 16) ties_step(x, c, 2, 0, i, out); }
    }
}

int mg_ties_merge_bf16(const float *const *x, const float *weights, int models, int normalize, int64_t count,
                       float *out) {
    if (!mg_ties_merge_bf16_available() || (models != 2 && models != 3) || count % 16 != 0) return -1;
    ties_avx512(x, weights, models, normalize, count, out);
    return 0;
}

#else

int mg_ties_merge_bf16_available(void) { return 0; }

int mg_ties_merge_bf16(const float *const *x, const float *weights, int models, int normalize, int64_t count,
                       float *out) {
    (void)x; (void)weights; (void)models; (void)normalize; (void)count; (void)out;
    return -1;
}

#endif
