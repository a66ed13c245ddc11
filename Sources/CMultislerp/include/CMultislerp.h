#ifndef CMULTISLERP_H
#define CMULTISLERP_H

#include <stdint.h>

// The per-element passes of mergekit 0.1.5's `multislerp` on a bf16 merge whose operands are held as planes
// (`MultislerpHalfPrecisionChunkKernel` holding its operands), eight f32 lanes a step with AVX2, the same IEEE
// operations in the same order as the kernel's Swift lanes. `R` below is bf16 rounding (to nearest even on the bit
// pattern, a NaN made quiet), every sum is in f32 from +0 in model order.
//
// `planes` holds `models + 1` planes of `stride` bf16 bit patterns each, one after another (plane `k` at
// `planes + k·stride`); the functions touch elements `start ..< start + count` of them (any `count` ≥ 0, a tail of
// fewer than eight included) and write their f32 results from `out[0]` on. `models` is 3 to 8 (with two the kernel
// keeps the operands for its linear fallback, which these passes do not). Each returns 0, or −1 having written
// nothing where `mg_multislerp_available()` is 0 or `models` is out of range.

/// Pass 1: with `x_k` in plane `k`, `u_k = R(x_k / divisors[k])` replaces `x_k`, and `mean = R(Σ_k R(u_k·weights[k]))`
/// goes to plane `models` and to `out[0 ..< count]`.
int mg_multislerp_units_bf16(uint16_t *planes, int64_t stride, int models, int64_t start, int64_t count,
                             const float *divisors, const float *weights, float *out);

/// Pass 2: `m = R(mean / mean_norm)` replaces `mean` in plane `models`, and `R(u_k·m)` goes to
/// `out[k·out_stride + (0 ..< count)]` for each model `k`.
int mg_multislerp_direction_bf16(uint16_t *planes, int64_t stride, int models, int64_t start, int64_t count,
                                 float mean_norm, float *out, int64_t out_stride);

/// Pass 3: `tr = R(Σ_k R(R(u_k − R(dots[k]·m))·weights[k]))` replaces `u_0` in plane 0 and goes to `out[0 ..< count]`.
int mg_multislerp_tangent_bf16(uint16_t *planes, int64_t stride, int models, int64_t start, int64_t count,
                               const float *dots, const float *weights, float *out);

/// The output: `R(R(R(m·c) + R(tr·s))·a)` (plane `models` holding `m`, plane 0 `tr`) to `out[0 ..< count]`.
int mg_multislerp_output_bf16(const uint16_t *planes, int64_t stride, int models, int64_t start, int64_t count,
                              float c, float s, float a, float *out);

/// Whether the functions above run here: an x86-64 processor with AVX2, asked once. 1 or 0.
int mg_multislerp_available(void);

#endif
