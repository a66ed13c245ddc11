#include <stddef.h>
#include "CSignConsensus.h"
#include "CPUHints.h"
#include "SignConsensusAVX2.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>

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
    if ((models != 2 && models != 3) || count % 16 != 0) return -1;
    if (!mg_avx512f_available()) {
        if (!mg_sign_consensus_avx2_available()) return -1;
        mg_ties_avx2(x, weights, models, normalize, count, out);
        return 0;
    }
    ties_avx512(x, weights, models, normalize, count, out);
    return 0;
}

// The election alone: +1 where the f32 sum from +0 of bf16(x[k] · w[k]) in operand order is ≥ 0, else −1.
__attribute__((target("avx512f")))
static void elect_avx512(const float *const *x, const float *weights, int models, int64_t count, float *out) {
    const __m512 zero = _mm512_setzero_ps(), one = _mm512_set1_ps(1.0f), minusOne = _mm512_set1_ps(-1.0f);
    for (int64_t i = 0; i < count; i += 16) {
        __m512 sum = zero;
        for (int k = 0; k < models; k++) {
            sum = _mm512_add_ps(sum, round_bf16(_mm512_mul_ps(_mm512_loadu_ps(x[k] + i), _mm512_set1_ps(weights[k]))));
        }
        _mm512_storeu_ps(out + i, _mm512_mask_mov_ps(minusOne, _mm512_cmp_ps_mask(sum, zero, _CMP_GE_OQ), one));
    }
}

int mg_sign_elect_bf16(const float *const *x, const float *weights, int models, int64_t count, float *out) {
    if (models < 1 || count % 16 != 0) return -1;
    if (!mg_avx512f_available()) {
        if (!mg_sign_consensus_avx2_available()) return -1;
        mg_elect_avx2(x, weights, models, count, out);
        return 0;
    }
    elect_avx512(x, weights, models, count, out);
    return 0;
}

// SCE's mix of one step: the agreeing models' weights (x > 0 with sign > 0, or x < 0 with sign < 0), else +0.
__attribute__((target("avx512f")))
static inline void sce_mix(const float *sign, const __m512 *v, const __m512 *w, int models, __m512 floor, int64_t i,
                           float *out);

__attribute__((target("avx512f")))
static inline void sce_step(const float *sign, const float *const *x, const float *mask, const __m512 *w, int models,
                            __m512 floor, int64_t i, float *out) {
    const __m512 zero = _mm512_setzero_ps();
    // The task vectors as `mul` by the mask would have made them.
    __m512 v[8];
    const __m512 m = mask ? _mm512_loadu_ps(mask + i) : zero;
    for (int k = 0; k < models; k++) {
        v[k] = _mm512_loadu_ps(x[k] + i);
        if (mask) v[k] = _mm512_mul_ps(v[k], m);
    }
    sce_mix(sign, v, w, models, floor, i, out);
}

// Sixteen bf16 patterns at `p + i` as f32 (exact: the pattern in the high half).
__attribute__((target("avx512f")))
static inline __m512 load_bf16_plane(const uint16_t *p, int64_t i) {
    const __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(p + i)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
}

// `sce_step` reading the task vectors and the mask from bf16 planes.
__attribute__((target("avx512f")))
static inline void sce_step_planes(const uint16_t *const *x, const uint16_t *mask, const __m512 *w, int models,
                                   __m512 floor, int64_t i, float *out) {
    __m512 v[8];
    const __m512 m = mask ? load_bf16_plane(mask, i) : _mm512_setzero_ps();
    for (int k = 0; k < models; k++) {
        v[k] = load_bf16_plane(x[k], i);
        if (mask) v[k] = _mm512_mul_ps(v[k], m);
    }
    sce_mix(NULL, v, w, models, floor, i, out);
}

// The mix of the (masked) task vectors `v` of one step.
__attribute__((target("avx512f")))
static inline void sce_mix(const float *sign, const __m512 *v, const __m512 *w, int models, __m512 floor, int64_t i,
                           float *out) {
    const __m512 zero = _mm512_setzero_ps();
    __mmask16 up, down;
    if (sign) {
        const __m512 s = _mm512_loadu_ps(sign + i);
        up = _mm512_cmp_ps_mask(s, zero, _CMP_GT_OQ);
        down = _mm512_cmp_ps_mask(s, zero, _CMP_LT_OQ);
    } else {
        // `sign_elect` with weights 1: +1 where the f32 sum from +0 in model order is >= 0, else -1.
        __m512 total = zero;
        for (int k = 0; k < models; k++) total = _mm512_add_ps(total, v[k]);
        up = _mm512_cmp_ps_mask(total, zero, _CMP_GE_OQ);
        down = (__mmask16)~up;
    }
    __m512 sum = zero, divisor = zero;
    for (int k = 0; k < models; k++) {
        const __mmask16 agrees = (_mm512_cmp_ps_mask(v[k], zero, _CMP_GT_OQ) & up)
            | (_mm512_cmp_ps_mask(v[k], zero, _CMP_LT_OQ) & down);
        const __m512 weight = _mm512_maskz_mov_ps(agrees, w[k]);
        sum = _mm512_add_ps(sum, round_bf16(_mm512_mul_ps(v[k], weight)));
        divisor = _mm512_add_ps(divisor, weight);
    }
    const __m512 d = round_bf16(divisor);
    const __m512 clamped = _mm512_mask_mov_ps(d, _mm512_cmp_ps_mask(d, floor, _CMP_LT_OQ), floor);
    _mm512_storeu_ps(out + i, round_bf16(_mm512_div_ps(round_bf16(sum), clamped)));
}

// The model count as a constant in the usual cases, so that the loop over the models unrolls.
__attribute__((target("avx512f")))
static void sce_avx512(const float *sign, const float *const *x, const float *mask, const float *weights, int models,
                       int64_t count, float *out) {
    __m512 w[8];
    for (int k = 0; k < models; k++) w[k] = _mm512_set1_ps(weights[k]);
    const __m512 floor = round_bf16(_mm512_set1_ps(1e-6f));
    if (mask) {
        if (models == 3) {
            for (int64_t i = 0; i < count; i += 16) sce_step(sign, x, mask, w, 3, floor, i, out);
        } else {
            for (int64_t i = 0; i < count; i += 16) sce_step(sign, x, mask, w, models, floor, i, out);
        }
    } else if (models == 3) {
        for (int64_t i = 0; i < count; i += 16) sce_step(sign, x, NULL, w, 3, floor, i, out);
    } else if (models == 2) {
        for (int64_t i = 0; i < count; i += 16) sce_step(sign, x, NULL, w, 2, floor, i, out);
    } else {
        for (int64_t i = 0; i < count; i += 16) sce_step(sign, x, NULL, w, models, floor, i, out);
    }
}

__attribute__((target("avx512f")))
static void sce_planes_avx512(const uint16_t *const *x, const uint16_t *mask, const float *weights, int models,
                              int64_t count, float *out) {
    __m512 w[8];
    for (int k = 0; k < models; k++) w[k] = _mm512_set1_ps(weights[k]);
    const __m512 floor = round_bf16(_mm512_set1_ps(1e-6f));
    if (models == 3) {
        for (int64_t i = 0; i < count; i += 16) sce_step_planes(x, mask, w, 3, floor, i, out);
    } else {
        for (int64_t i = 0; i < count; i += 16) sce_step_planes(x, mask, w, models, floor, i, out);
    }
}

int mg_sce_mix_bf16_planes_available(void) { return mg_avx512f_available(); }

int mg_sce_mix_bf16_planes(const uint16_t *const *x, const uint16_t *mask, const float *weights, int models,
                           int64_t count, float *out) {
    if (models < 1 || models > 8 || count % 16 != 0 || !mg_avx512f_available()) return -1;
    sce_planes_avx512(x, mask, weights, models, count, out);
    return 0;
}

int mg_sce_mix_bf16(const float *sign, const float *const *x, const float *mask, const float *weights, int models,
                    int64_t count, float *out) {
    if (models < 1 || models > 8 || count % 16 != 0) return -1;
    if (!mg_avx512f_available()) {
        if (!mg_sign_consensus_avx2_available()) return -1;
        mg_sce_avx2(sign, x, mask, weights, models, count, out);
        return 0;
    }
    sce_avx512(sign, x, mask, weights, models, count, out);
    return 0;
}

// The task-vector mix without consensus (`task_mix`): sum of bf16(x[k] · w[k]) from +0 in model order; with
// `normalize`, bf16(sum) / bf16(Σ w) (by 1 where |Σ w| < 1e-8); with lambda ≠ 1, bf16(sum) · lambda.
__attribute__((target("avx512f")))
static inline void mix_step(const float *const *x, const __m512 *w, int models, int normalize, __m512 divisor,
                            float lambda, int64_t i, float *out) {
    __m512 sum = _mm512_setzero_ps();
    for (int k = 0; k < models; k++) {
        sum = _mm512_add_ps(sum, round_bf16(_mm512_mul_ps(_mm512_loadu_ps(x[k] + i), w[k])));
    }
    if (normalize) sum = _mm512_div_ps(round_bf16(sum), divisor);
    if (lambda != 1.0f) sum = _mm512_mul_ps(round_bf16(sum), _mm512_set1_ps(lambda));
    _mm512_storeu_ps(out + i, sum);
}

__attribute__((target("avx512f")))
static void mix_avx512(const float *const *x, const float *weights, int models, int normalize, float lambda,
                       int64_t count, float *out) {
    __m512 w[8];
    float total = 0.0f;
    for (int k = 0; k < models; k++) {
        w[k] = _mm512_set1_ps(weights[k]);
        total += weights[k];
    }
    // bf16(Σ w), 1 where it is below 1e-8 in magnitude (mergekit's `divisor[divisor.abs() < 1e-8] = 1`).
    __m512 divisor = round_bf16(_mm512_set1_ps(total));
    const __mmask16 unusable = _mm512_cmp_ps_mask(divisor, _mm512_set1_ps(1e-8f), _CMP_LT_OQ)
        & _mm512_cmp_ps_mask(divisor, _mm512_set1_ps(-1e-8f), _CMP_GT_OQ);
    divisor = _mm512_mask_mov_ps(divisor, unusable, _mm512_set1_ps(1.0f));
    if (models == 3) {
        for (int64_t i = 0; i < count; i += 16) mix_step(x, w, 3, normalize, divisor, lambda, i, out);
    } else if (models == 2) {
        for (int64_t i = 0; i < count; i += 16) mix_step(x, w, 2, normalize, divisor, lambda, i, out);
    } else {
        for (int64_t i = 0; i < count; i += 16) mix_step(x, w, models, normalize, divisor, lambda, i, out);
    }
}

int mg_task_mix_bf16(const float *const *x, const float *weights, int models, int normalize, float lambda,
                     int64_t count, float *out) {
    if (models < 1 || models > 8 || count % 16 != 0) return -1;
    if (!mg_avx512f_available()) {
        if (!mg_sign_consensus_avx2_available()) return -1;
        mg_mix_avx2(x, weights, models, normalize, lambda, count, out);
        return 0;
    }
    mix_avx512(x, weights, models, normalize, lambda, count, out);
    return 0;
}

int mg_sign_consensus_available(void) { return mg_avx512f_available() || mg_sign_consensus_avx2_available(); }

#else

int mg_ties_merge_bf16(const float *const *x, const float *weights, int models, int normalize, int64_t count,
                       float *out) {
    (void)x; (void)weights; (void)models; (void)normalize; (void)count; (void)out;
    return -1;
}

int mg_sign_elect_bf16(const float *const *x, const float *weights, int models, int64_t count, float *out) {
    (void)x; (void)weights; (void)models; (void)count; (void)out;
    return -1;
}

int mg_sce_mix_bf16(const float *sign, const float *const *x, const float *mask, const float *weights, int models,
                    int64_t count, float *out) {
    (void)sign; (void)x; (void)mask; (void)weights; (void)models; (void)count; (void)out;
    return -1;
}

int mg_sce_mix_bf16_planes_available(void) { return 0; }

int mg_sce_mix_bf16_planes(const uint16_t *const *x, const uint16_t *mask, const float *weights, int models,
                           int64_t count, float *out) {
    (void)x; (void)mask; (void)weights; (void)models; (void)count; (void)out;
    return -1;
}

int mg_sign_consensus_available(void) { return 0; }

int mg_task_mix_bf16(const float *const *x, const float *weights, int models, int normalize, float lambda,
                     int64_t count, float *out) {
    (void)x; (void)weights; (void)models; (void)normalize; (void)lambda; (void)count; (void)out;
    return -1;
}

#endif
