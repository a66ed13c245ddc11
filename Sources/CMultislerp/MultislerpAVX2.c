// The AVX2 forms of `MultislerpHalfPrecisionChunkKernel`'s passes over held bf16 planes (CMultislerp.h): eight f32
// lanes a step, the Swift lanes' operations in their order, each model's loop unrolled for three and four models.
#include "CMultislerp.h"
#include "CPUHints.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>
#include <string.h>

#define MG_TARGET_AVX2 __attribute__((target("avx2")))
#define MG_MAX_MODELS 8

int mg_multislerp_available(void) { return mg_avx2_available(); }

// `BF16Rounding.round` in eight lanes, for the values these passes round: results of one f32 operation (`+`, `−`,
// `·`, `/`) on values of bf16 (the planes' patterns and the scalars, all rounded to bf16 before). Rounding is
// (bits + 0x7FFF + lowest kept bit) with the low half cleared; `BF16Rounding` gives a NaN lane its high half with the
// quiet bit set instead. Here that is the same pattern without asking: an x86 operation's NaN result is either the
// default NaN (0xFFC00000) or a NaN operand with its quiet bit set, and a NaN of bf16 has a zero low half, so a NaN
// lane is already quiet with a zero low half, which the rounding leaves as it is (0x7FFF + 1 carries nothing out of
// a zero low half). The NaN test and blend (four of the nine operations) are left out.
MG_TARGET_AVX2
static inline __m256 round_bf16(__m256 v) {
    const __m256i bits = _mm256_castps_si256(v);
    const __m256i lowest = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
    const __m256i rounded = _mm256_add_epi32(_mm256_add_epi32(bits, _mm256_set1_epi32(0x7FFF)), lowest);
    return _mm256_castsi256_ps(_mm256_and_si256(rounded, _mm256_set1_epi32((int)0xFFFF0000u)));
}

// Eight bf16 patterns at `p` as f32 (`BF16Rounding.unpack`).
MG_TARGET_AVX2
static inline __m256 load_bf16(const uint16_t *p) {
    const __m128i halves = _mm_loadu_si128((const __m128i *)p);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(halves), 16));
}

// The high halves of eight f32 lanes (values of bf16) to `p` (`BF16Rounding.pack`).
MG_TARGET_AVX2
static inline void store_bf16(uint16_t *p, __m256 v) {
    const __m256i high = _mm256_srli_epi32(_mm256_castps_si256(v), 16);
    _mm_storeu_si128((__m128i *)p, _mm_packus_epi32(_mm256_castsi256_si128(high), _mm256_extracti128_si256(high, 1)));
}

// One step of each pass at `p` (element i of plane 0; plane k at p + k·stride), results to `out`.
MG_TARGET_AVX2
static inline void units_step(uint16_t *p, int64_t stride, int models, const __m256 *d, const __m256 *w, float *out) {
    __m256 sum = _mm256_setzero_ps();
    for (int k = 0; k < models; k++) {
        const __m256 u = round_bf16(_mm256_div_ps(load_bf16(p + k * stride), d[k]));
        store_bf16(p + k * stride, u);
        sum = _mm256_add_ps(sum, round_bf16(_mm256_mul_ps(u, w[k])));
    }
    const __m256 mean = round_bf16(sum);
    store_bf16(p + models * stride, mean);
    _mm256_storeu_ps(out, mean);
}

MG_TARGET_AVX2
static inline void direction_step(uint16_t *p, int64_t stride, int models, __m256 norm, float *out, int64_t out_stride) {
    const __m256 m = round_bf16(_mm256_div_ps(load_bf16(p + models * stride), norm));
    store_bf16(p + models * stride, m);
    for (int k = 0; k < models; k++) {
        _mm256_storeu_ps(out + k * out_stride, round_bf16(_mm256_mul_ps(load_bf16(p + k * stride), m)));
    }
}

MG_TARGET_AVX2
static inline void tangent_step(uint16_t *p, int64_t stride, int models, const __m256 *dots, const __m256 *w, float *out) {
    const __m256 m = load_bf16(p + models * stride);
    __m256 sum = _mm256_setzero_ps();
    for (int k = 0; k < models; k++) {
        const __m256 along = round_bf16(_mm256_mul_ps(dots[k], m));
        const __m256 off = round_bf16(_mm256_sub_ps(load_bf16(p + k * stride), along));
        sum = _mm256_add_ps(sum, round_bf16(_mm256_mul_ps(off, w[k])));
    }
    const __m256 tangent = round_bf16(sum);
    store_bf16(p, tangent);
    _mm256_storeu_ps(out, tangent);
}

MG_TARGET_AVX2
static inline void output_step(const uint16_t *p, int64_t stride, int models, __m256 c, __m256 s, __m256 a, float *out) {
    const __m256 m = load_bf16(p + models * stride), tangent = load_bf16(p);
    const __m256 v = round_bf16(_mm256_add_ps(round_bf16(_mm256_mul_ps(m, c)), round_bf16(_mm256_mul_ps(tangent, s))));
    _mm256_storeu_ps(out, round_bf16(_mm256_mul_ps(v, a)));
}

// Runs `STEP` over the whole eights of `count` elements from `start`, with `models` a constant for three and four
// (so that the model loops unroll), then over the last `count % 8` elements: copied into planes of eight elements
// (the other lanes +0), one step there, and those elements (and, `writes_planes`, the planes' elements) copied back.
#define MG_PASS(writes_planes, outs, out_stride, STEP)                                                                               \
    do {                                                                                                              \
        uint16_t *base = (uint16_t *)planes + start;                                                                  \
        const int64_t eights = count & ~(int64_t)7;                                                                   \
        switch (models) {                                                                                             \
        case 3: for (int64_t i = 0; i < eights; i += 8) { STEP##_AT(3, base + i, stride, out + i, out_stride); } break; \
        case 4: for (int64_t i = 0; i < eights; i += 8) { STEP##_AT(4, base + i, stride, out + i, out_stride); } break; \
        default: for (int64_t i = 0; i < eights; i += 8) { STEP##_AT(models, base + i, stride, out + i, out_stride); } \
        }                                                                                                             \
        if (count > eights) {                                                                                         \
            const int64_t lanes = count - eights;                                                                     \
            uint16_t tp[(MG_MAX_MODELS + 1) * 8];                                                                     \
            float to[MG_MAX_MODELS * 8];                                                                              \
            memset(tp, 0, sizeof tp);                                                                                 \
            for (int k = 0; k <= models; k++) memcpy(tp + k * 8, base + eights + k * stride, (size_t)lanes * 2);      \
            STEP##_AT(models, tp, 8, to, 8);                                                                          \
            if (writes_planes) {                                                                                      \
                for (int k = 0; k <= models; k++) memcpy(base + eights + k * stride, tp + k * 8, (size_t)lanes * 2);  \
            }                                                                                                         \
            for (int k = 0; k < (outs); k++) memcpy(out + eights + k * (out_stride), to + k * 8, (size_t)lanes * 4);  \
        }                                                                                                             \
    } while (0)

// Whether the entry points refuse: no AVX2 here, or a model count out of 3…8.
static inline int refuses(int models) { return !mg_multislerp_available() || models < 3 || models > MG_MAX_MODELS; }

#define UNITS_AT(m, p, st, o, os) units_step(p, st, m, d, w, o)
#define DIRECTION_AT(m, p, st, o, os) direction_step(p, st, m, norm, o, os)
#define TANGENT_AT(m, p, st, o, os) tangent_step(p, st, m, dv, w, o)
#define OUTPUT_AT(m, p, st, o, os) output_step(p, st, m, cv, sv, av, o)

MG_TARGET_AVX2
int mg_multislerp_units_bf16(uint16_t *planes, int64_t stride, int models, int64_t start, int64_t count,
                             const float *divisors, const float *weights, float *out) {
    if (refuses(models)) return -1;
    __m256 d[MG_MAX_MODELS], w[MG_MAX_MODELS];
    for (int k = 0; k < models; k++) { d[k] = _mm256_set1_ps(divisors[k]); w[k] = _mm256_set1_ps(weights[k]); }
    MG_PASS(1, 1, 0, UNITS);
    return 0;
}

MG_TARGET_AVX2
int mg_multislerp_direction_bf16(uint16_t *planes, int64_t stride, int models, int64_t start, int64_t count,
                                 float mean_norm, float *out, int64_t out_stride) {
    if (refuses(models)) return -1;
    const __m256 norm = _mm256_set1_ps(mean_norm);
    MG_PASS(1, models, out_stride, DIRECTION);
    return 0;
}

MG_TARGET_AVX2
int mg_multislerp_tangent_bf16(uint16_t *planes, int64_t stride, int models, int64_t start, int64_t count,
                               const float *dots, const float *weights, float *out) {
    if (refuses(models)) return -1;
    __m256 dv[MG_MAX_MODELS], w[MG_MAX_MODELS];
    for (int k = 0; k < models; k++) { dv[k] = _mm256_set1_ps(dots[k]); w[k] = _mm256_set1_ps(weights[k]); }
    MG_PASS(1, 1, 0, TANGENT);
    return 0;
}

MG_TARGET_AVX2
int mg_multislerp_output_bf16(const uint16_t *planes, int64_t stride, int models, int64_t start, int64_t count,
                              float c, float s, float a, float *out) {
    if (refuses(models)) return -1;
    const __m256 cv = _mm256_set1_ps(c), sv = _mm256_set1_ps(s), av = _mm256_set1_ps(a);
    MG_PASS(0, 1, 0, OUTPUT);
    return 0;
}

#else

int mg_multislerp_available(void) { return 0; }
int mg_multislerp_units_bf16(uint16_t *planes, int64_t stride, int models, int64_t start, int64_t count,
                             const float *divisors, const float *weights, float *out) { return -1; }
int mg_multislerp_direction_bf16(uint16_t *planes, int64_t stride, int models, int64_t start, int64_t count,
                                 float mean_norm, float *out, int64_t out_stride) { return -1; }
int mg_multislerp_tangent_bf16(uint16_t *planes, int64_t stride, int models, int64_t start, int64_t count,
                               const float *dots, const float *weights, float *out) { return -1; }
int mg_multislerp_output_bf16(const uint16_t *planes, int64_t stride, int models, int64_t start, int64_t count,
                              float c, float s, float a, float *out) { return -1; }

#endif
