// The AVX2 forms of CSignConsensus' bf16 kernels, for x86-64 processors without AVX-512F (AMD Zen 2 and 3, Intel
// client cores): the same IEEE operations in the same order as the AVX-512 forms in CSignConsensus.c and as
// `SignConsensusChunkKernel` and `SCEMergeChunkKernel`'s eight Swift lanes, eight f32 lanes a step; the masks are
// vectors of all-ones lanes, and a masked-off lane is +0 (`vandps`), as the AVX-512 forms' zeroing moves give.
#include <stddef.h>
#include "SignConsensusAVX2.h"
#include "CPUHints.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>

#define MG_TARGET_AVX2 __attribute__((target("avx2")))

int mg_sign_consensus_avx2_available(void) { return mg_avx2_available(); }

// `BF16Rounding.round` in eight lanes without its NaN lanes' blend: (bits + 0x7FFF + lowest kept bit) with the low
// half cleared. Exact for values whose NaNs all have a zero low half (an x86 operation's default NaN, or such a NaN
// operand passed on): such a NaN's high half stays as it is, quiet bit set, which is what `round_bf16` gives it.
MG_TARGET_AVX2
static inline __m256 round_bf16_quiet_nans(__m256 v) {
    const __m256i bits = _mm256_castps_si256(v);
    const __m256i lowest = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
    const __m256i sum = _mm256_add_epi32(_mm256_add_epi32(bits, _mm256_set1_epi32(0x7FFF)), lowest);
    return _mm256_castsi256_ps(_mm256_and_si256(sum, _mm256_set1_epi32((int)0xFFFF0000u)));
}

// `BF16Rounding.round` in eight lanes: `round_bf16_quiet_nans`, and NaN lanes keep their high half with the quiet
// bit set.
MG_TARGET_AVX2
static inline __m256 round_bf16(__m256 v) {
    const __m256i quiet = _mm256_and_si256(_mm256_or_si256(_mm256_castps_si256(v), _mm256_set1_epi32(0x00400000)),
                                           _mm256_set1_epi32((int)0xFFFF0000u));
    return _mm256_blendv_ps(round_bf16_quiet_nans(v), _mm256_castsi256_ps(quiet), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
}

// `round_bf16` in a step that takes the full form (`full` 1), `round_bf16_quiet_nans` in a short one: the steps of
// the kernels below that have no NaN operand, whose every NaN is then an operation's default NaN or one passed on
// (∞·0, ∞−∞, ∞/∞ with finite weights), take the short form; both give the same bits there.
MG_TARGET_AVX2
static inline __m256 round_bf16_in(int full, __m256 v) { return full ? round_bf16(v) : round_bf16_quiet_nans(v); }

// Whether the `count` values at `w` are all finite: the kernels' short steps need finite weights (others could make
// NaNs of other payloads).
static inline int all_finite(const float *w, int count) {
    int finite = 1;
    for (int k = 0; k < count; k++) finite &= w[k] - w[k] == 0.0f;
    return finite;
}

// The agreeing weights of each agreement pattern (bit k set: model k agrees) summed in model order (+0 first) and
// rounded to bf16, in lane `pattern`: the divisor `ties_step` and `sce_step` compute lane by lane, before the one
// replaces a zero by 1 and the other clamps it to its floor.
MG_TARGET_AVX2
static inline __m256 pattern_sums(const float *weights, int models) {
    float d[8];
    for (int pattern = 0; pattern < 8; pattern++) {
        __m256 sum = _mm256_setzero_ps();
        for (int k = 0; k < models; k++) {
            if (pattern >> k & 1) sum = _mm256_add_ps(sum, _mm256_set1_ps(weights[k]));
        }
        d[pattern] = _mm_cvtss_f32(_mm256_castps256_ps128(round_bf16(sum)));
    }
    return _mm256_loadu_ps(d);
}

// `ties_step`'s divisors by agreement pattern: `pattern_sums`, 1 where a sum is zero.
MG_TARGET_AVX2
static inline __m256 divisor_table(const float *weights, int models) {
    const __m256 r = pattern_sums(weights, models);
    return _mm256_blendv_ps(r, _mm256_set1_ps(1.0f), _mm256_cmp_ps(r, _mm256_setzero_ps(), _CMP_EQ_OQ));
}

// Eight elements. A step none of whose operands is NaN (nearly every one) takes the short form: a NaN that arises
// in it is an operation's default NaN (∞·0, ∞−∞, ∞/∞) or one passed on, so `round_bf16_quiet_nans` rounds as
// `round_bf16` does, and the divisor, which depends only on which models agree, is looked up in `divisors` instead of
// summed, rounded and tested. A step with a NaN operand takes the full form. The bits are the same (checked against
// the full form alone on 20,000 random sets of operands and weights: NaNs of every payload, ±∞, ±0, subnormals,
// zero and huge weights); on the Zen 3 VM three models took 0.94 ns an element against 1.2.
MG_TARGET_AVX2
static inline void ties_step(const float *const *x, const __m256 *c, int models, int normalize, __m256 divisors,
                             int short_steps, int64_t i, float *out) {
    const __m256 zero = _mm256_setzero_ps();
    __m256 v[3];
    __m256 nan = zero;
    for (int k = 0; k < models; k++) {
        v[k] = _mm256_loadu_ps(x[k] + i);
        nan = _mm256_or_ps(nan, _mm256_cmp_ps(v[k], v[k], _CMP_UNORD_Q));
    }
    const int full = !short_steps || !_mm256_testz_ps(nan, nan);
    __m256 t[3];
    __m256 elected = zero;
    for (int k = 0; k < models; k++) {
        const __m256 product = _mm256_mul_ps(v[k], c[k]);
        t[k] = round_bf16_in(full, product);
        elected = _mm256_add_ps(elected, t[k]);
    }
    const __m256 positive = _mm256_cmp_ps(elected, zero, _CMP_GE_OQ);
    const __m256 sign = _mm256_blendv_ps(_mm256_set1_ps(-1.0f), _mm256_set1_ps(1.0f), positive);
    __m256 sum = zero, divisor = zero;
    __m256i pattern = _mm256_setzero_si256();
    for (int k = 0; k < models; k++) {
        const __m256 agrees = _mm256_cmp_ps(_mm256_mul_ps(t[k], sign), zero, _CMP_GT_OQ);
        sum = _mm256_add_ps(sum, _mm256_and_ps(agrees, t[k]));
        if (full) {
            divisor = _mm256_add_ps(divisor, _mm256_and_ps(agrees, c[k]));
        } else {
            pattern = _mm256_or_si256(pattern, _mm256_and_si256(_mm256_castps_si256(agrees), _mm256_set1_epi32(1 << k)));
        }
    }
    if (normalize && full) {
        sum = round_bf16(sum);
        divisor = round_bf16(divisor);
        const __m256 unusable = _mm256_cmp_ps(divisor, zero, _CMP_EQ_OQ);
        sum = _mm256_div_ps(sum, _mm256_blendv_ps(divisor, _mm256_set1_ps(1.0f), unusable));
    } else if (normalize) {
        sum = _mm256_div_ps(round_bf16_quiet_nans(sum), _mm256_permutevar8x32_ps(divisors, pattern));
    }
    _mm256_storeu_ps(out + i, sum);
}

MG_TARGET_AVX2
void mg_ties_avx2(const float *const *x, const float *weights, int models, int normalize, int64_t count, float *out) {
    __m256 c[3];
    for (int k = 0; k < models; k++) c[k] = _mm256_set1_ps(weights[k]);
    const __m256 d = divisor_table(weights, models);
    const int f = all_finite(weights, models);
    if (models == 3) {
        if (normalize) { for (int64_t i = 0; i < count; i += 8) ties_step(x, c, 3, 1, d, f, i, out); }
        else { for (int64_t i = 0; i < count; i += 8) ties_step(x, c, 3, 0, d, f, i, out); }
    } else {
        if (normalize) { for (int64_t i = 0; i < count; i += 8) ties_step(x, c, 2, 1, d, f, i, out); }
        else { for (int64_t i = 0; i < count; i += 8) ties_step(x, c, 2, 0, d, f, i, out); }
    }
}

MG_TARGET_AVX2
void mg_elect_avx2(const float *const *x, const float *weights, int models, int64_t count, float *out) {
    const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f), minusOne = _mm256_set1_ps(-1.0f);
    for (int64_t i = 0; i < count; i += 8) {
        __m256 sum = zero;
        for (int k = 0; k < models; k++) {
            sum = _mm256_add_ps(sum, round_bf16(_mm256_mul_ps(_mm256_loadu_ps(x[k] + i), _mm256_set1_ps(weights[k]))));
        }
        _mm256_storeu_ps(out + i, _mm256_blendv_ps(minusOne, one, _mm256_cmp_ps(sum, zero, _CMP_GE_OQ)));
    }
}

// `sce_step`'s divisors by agreement pattern: `pattern_sums`, `floor` where a sum is below it.
MG_TARGET_AVX2
static inline __m256 sce_divisor_table(const float *weights, int models, __m256 floor) {
    const __m256 r = pattern_sums(weights, models);
    return _mm256_blendv_ps(r, floor, _mm256_cmp_ps(r, floor, _CMP_LT_OQ));
}

// Eight elements. As `ties_step`, a step none of whose operands (task vectors and sign) is NaN rounds without the
// NaN blend and, with three models or fewer and finite weights (`divisors` given), looks its divisor up by agreement
// pattern; other steps take the full form. The same bits either way.
MG_TARGET_AVX2
static inline void sce_step(const float *sign, const float *const *x, const float *mask, const __m256 *w, int models,
                            __m256 floor, __m256 divisors, int short_steps, int64_t i, float *out) {
    const __m256 zero = _mm256_setzero_ps();
    __m256 v[8];
    __m256 nan = zero;
    // The task vectors as `mul` by the mask would have made them.
    const __m256 m = mask ? _mm256_loadu_ps(mask + i) : zero;
    for (int k = 0; k < models; k++) {
        v[k] = _mm256_loadu_ps(x[k] + i);
        if (mask) v[k] = _mm256_mul_ps(v[k], m);
        nan = _mm256_or_ps(nan, _mm256_cmp_ps(v[k], v[k], _CMP_UNORD_Q));
    }
    __m256 up, down;
    if (sign) {
        const __m256 s = _mm256_loadu_ps(sign + i);
        nan = _mm256_or_ps(nan, _mm256_cmp_ps(s, s, _CMP_UNORD_Q));
        up = _mm256_cmp_ps(s, zero, _CMP_GT_OQ);
        down = _mm256_cmp_ps(s, zero, _CMP_LT_OQ);
    } else {
        __m256 total = zero;
        for (int k = 0; k < models; k++) total = _mm256_add_ps(total, v[k]);
        up = _mm256_cmp_ps(total, zero, _CMP_GE_OQ);
        down = _mm256_xor_ps(up, _mm256_castsi256_ps(_mm256_set1_epi32(-1)));
    }
    const int full = !short_steps || !_mm256_testz_ps(nan, nan);
    __m256 sum = zero, divisor = zero;
    __m256i pattern = _mm256_setzero_si256();
    for (int k = 0; k < models; k++) {
        const __m256 agrees = _mm256_or_ps(_mm256_and_ps(_mm256_cmp_ps(v[k], zero, _CMP_GT_OQ), up),
                                           _mm256_and_ps(_mm256_cmp_ps(v[k], zero, _CMP_LT_OQ), down));
        const __m256 weight = _mm256_and_ps(agrees, w[k]);
        const __m256 product = _mm256_mul_ps(v[k], weight);
        sum = _mm256_add_ps(sum, round_bf16_in(full, product));
        if (full) {
            divisor = _mm256_add_ps(divisor, weight);
        } else {
            pattern = _mm256_or_si256(pattern, _mm256_and_si256(_mm256_castps_si256(agrees), _mm256_set1_epi32(1 << k)));
        }
    }
    if (full) {
        const __m256 d = round_bf16(divisor);
        const __m256 clamped = _mm256_blendv_ps(d, floor, _mm256_cmp_ps(d, floor, _CMP_LT_OQ));
        _mm256_storeu_ps(out + i, round_bf16(_mm256_div_ps(round_bf16(sum), clamped)));
    } else {
        const __m256 q = _mm256_div_ps(round_bf16_quiet_nans(sum), _mm256_permutevar8x32_ps(divisors, pattern));
        _mm256_storeu_ps(out + i, round_bf16_quiet_nans(q));
    }
}

MG_TARGET_AVX2
void mg_sce_avx2(const float *sign, const float *const *x, const float *mask, const float *weights, int models,
                 int64_t count, float *out) {
    __m256 w[8];
    for (int k = 0; k < models; k++) w[k] = _mm256_set1_ps(weights[k]);
    const __m256 floor = round_bf16(_mm256_set1_ps(1e-6f));
    // Short steps need at most three models (the table's eight patterns).
    const int short_steps = models <= 3 && all_finite(weights, models);
    const __m256 divisors = short_steps ? sce_divisor_table(weights, models, floor) : _mm256_setzero_ps();
    if (mask) {
        if (models == 3) {
            for (int64_t i = 0; i < count; i += 8) sce_step(sign, x, mask, w, 3, floor, divisors, short_steps, i, out);
        } else {
            for (int64_t i = 0; i < count; i += 8) sce_step(sign, x, mask, w, models, floor, divisors, short_steps, i, out);
        }
    } else if (models == 3) {
        for (int64_t i = 0; i < count; i += 8) sce_step(sign, x, NULL, w, 3, floor, divisors, short_steps, i, out);
    } else if (models == 2) {
        for (int64_t i = 0; i < count; i += 8) sce_step(sign, x, NULL, w, 2, floor, divisors, short_steps, i, out);
    } else {
        for (int64_t i = 0; i < count; i += 8) sce_step(sign, x, NULL, w, models, floor, divisors, short_steps, i, out);
    }
}

// Eight elements. As `ties_step`, a step none of whose operands is NaN takes the short form when the weights, the
// divisor and `lambda` are finite (`short_steps`). The same bits either way.
MG_TARGET_AVX2
static inline void mix_step(const float *const *x, const __m256 *w, int models, int normalize, __m256 divisor,
                            float lambda, int short_steps, int64_t i, float *out) {
    __m256 v[8];
    __m256 nan = _mm256_setzero_ps();
    for (int k = 0; k < models; k++) {
        v[k] = _mm256_loadu_ps(x[k] + i);
        nan = _mm256_or_ps(nan, _mm256_cmp_ps(v[k], v[k], _CMP_UNORD_Q));
    }
    const int full = !short_steps || !_mm256_testz_ps(nan, nan);
    __m256 sum = _mm256_setzero_ps();
    for (int k = 0; k < models; k++) sum = _mm256_add_ps(sum, round_bf16_in(full, _mm256_mul_ps(v[k], w[k])));
    if (normalize) sum = _mm256_div_ps(round_bf16_in(full, sum), divisor);
    if (lambda != 1.0f) sum = _mm256_mul_ps(round_bf16_in(full, sum), _mm256_set1_ps(lambda));
    _mm256_storeu_ps(out + i, sum);
}

MG_TARGET_AVX2
void mg_mix_avx2(const float *const *x, const float *weights, int models, int normalize, float lambda, int64_t count,
                 float *out) {
    __m256 w[8];
    float total = 0.0f;
    for (int k = 0; k < models; k++) {
        w[k] = _mm256_set1_ps(weights[k]);
        total += weights[k];
    }
    __m256 divisor = round_bf16(_mm256_set1_ps(total));
    const __m256 unusable = _mm256_and_ps(_mm256_cmp_ps(divisor, _mm256_set1_ps(1e-8f), _CMP_LT_OQ),
                                          _mm256_cmp_ps(divisor, _mm256_set1_ps(-1e-8f), _CMP_GT_OQ));
    divisor = _mm256_blendv_ps(divisor, _mm256_set1_ps(1.0f), unusable);
    const float scalars[2] = {lambda, total};
    const int quiet = all_finite(weights, models) && all_finite(scalars, 2);
    if (models == 3) {
        for (int64_t i = 0; i < count; i += 8) mix_step(x, w, 3, normalize, divisor, lambda, quiet, i, out);
    } else if (models == 2) {
        for (int64_t i = 0; i < count; i += 8) mix_step(x, w, 2, normalize, divisor, lambda, quiet, i, out);
    } else {
        for (int64_t i = 0; i < count; i += 8) mix_step(x, w, models, normalize, divisor, lambda, quiet, i, out);
    }
}

#else

int mg_sign_consensus_avx2_available(void) { return 0; }
void mg_ties_avx2(const float *const *x, const float *weights, int models, int normalize, int64_t count, float *out) {
    (void)x; (void)weights; (void)models; (void)normalize; (void)count; (void)out;
}
void mg_elect_avx2(const float *const *x, const float *weights, int models, int64_t count, float *out) {
    (void)x; (void)weights; (void)models; (void)count; (void)out;
}
void mg_sce_avx2(const float *sign, const float *const *x, const float *mask, const float *weights, int models,
                 int64_t count, float *out) {
    (void)sign; (void)x; (void)mask; (void)weights; (void)models; (void)count; (void)out;
}
void mg_mix_avx2(const float *const *x, const float *weights, int models, int normalize, float lambda, int64_t count,
                 float *out) {
    (void)x; (void)weights; (void)models; (void)normalize; (void)lambda; (void)count; (void)out;
}

#endif
