#ifndef CSIGNCONSENSUS_H
#define CSIGNCONSENSUS_H

#include <stdint.h>

/// TIES' sign consensus and merge of `models` (2 or 3) task vectors in bf16, as mergekit computes it
/// (`GeneralizedTaskArithmeticMerge` with `get_mask(method="sum")`, election and merge weighing alike, lambda 1),
/// sixteen f32 lanes per AVX-512 step, the same IEEE operations in the same order as `SignConsensusChunkKernel`:
/// t[k] = bf16(x[k][i] · w[k]); the sign +1 where ((0 + t[0]) + t[1]) (+ t[2]) ≥ 0, else −1; the sum and the divisor
/// of the agreeing terms (t[k] · sign > 0) from +0 in operand order; with `normalize`, both rounded to bf16 and the
/// sum divided by the divisor (by 1 where it is 0). bf16 rounding is to nearest even on the bit pattern, NaN made
/// quiet. Writes `out[i]` (f32, rounded to bf16 by the caller) for `i` in `0 ..< count`.
///
/// `x` holds `models` pointers to `count` f32 values each; `count` is a multiple of 16. Runs only where
/// `mg_sign_consensus_available()` is 1; elsewhere it returns −1 and writes nothing, else 0.
int mg_ties_merge_bf16(const float *const *x, const float *weights, int models, int normalize, int64_t count,
                       float *out);

/// The sign election alone (`get_mask(method="sum")`'s majority sign, the `sign_elect` op) of `models` (≥ 1) task
/// vectors in bf16, as `SignConsensusChunkKernel` computes it: +1 where ((0 + t[0]) + t[1]) + … ≥ 0 with
/// t[k] = bf16(x[k][i] · w[k]) summed in f32, else −1 (a NaN sum elects −1). Writes `out[i]` for `i` in
/// `0 ..< count` (a multiple of 16). Returns −1 and writes nothing where `mg_sign_consensus_available()` is 0, else 0.
int mg_sign_elect_bf16(const float *const *x, const float *weights, int models, int64_t count, float *out);

/// SCE's final mix (mergekit 0.1.5 `sce_merge` after its erase mask) of `models` (1…8) masked task vectors in bf16,
/// as `SCEMergeChunkKernel.halfMix` computes it: over the models whose `x[k][i]` is nonzero with the sign of
/// `sign[i]` (±1; when `sign` is NULL, elected here as `sign_elect` with weights 1 does: +1 where
/// ((0 + x[0][i]) + x[1][i]) + … ≥ 0 in f32, else −1), w = weights[k], else +0 (so a non-agreeing ±∞ or NaN makes the sum NaN, as mergekit's
/// `task_vectors * erased_weights` does), sum += bf16(x · w) and divisor += w in f32 from +0 in model order; then
/// bf16(bf16(sum) / max(bf16(divisor), bf16(1e-6))). bf16 rounding is to nearest even on the bit pattern, NaN made
/// quiet. With `mask` (SCE's 0/1 `variance_topk` mask, `sce_elect_merge(masked)`), each `x[k][i]` is taken as
/// `x[k][i] · mask[i]` (f32, exact) wherever it is read; NULL reads the task vectors as they are. Writes `out[i]` for
/// `i` in `0 ..< count` (a multiple of 16). Returns −1 and writes nothing where `mg_sign_consensus_available()` is 0 or
/// with another model count, else 0.
int mg_sce_mix_bf16(const float *sign, const float *const *x, const float *mask, const float *weights, int models,
                    int64_t count, float *out);

/// `mg_sce_mix_bf16` electing the signs itself, with the task vectors `x[k]` and the mask (NULL: none) read from
/// planes of bf16 patterns (`x[k][i]` is the f32 value whose high half is the pattern): the same bits as unpacking
/// them first. Returns −1 and writes nothing where the processor lacks AVX-512F or with another model count, else 0.
int mg_sce_mix_bf16_planes(const uint16_t *const *x, const uint16_t *mask, const float *weights, int models,
                           int64_t count, float *out);

/// Whether `mg_sce_mix_bf16_planes` runs here (an x86-64 processor with AVX-512F): 1 or 0.
int mg_sce_mix_bf16_planes_available(void);

/// The task-vector mix without sign consensus (`task_mix`: task arithmetic, breadcrumbs, DARE and DELLA linear) of
/// `models` (1…8) task vectors in bf16, as `SignConsensusChunkKernel` computes it (mergekit's
/// `GeneralizedTaskArithmeticMerge` without consensus): sum = ((0 + bf16(x[0][i] · w[0])) + …) in f32; with
/// `normalize`, bf16(sum) / d where d = bf16(((0 + w[0]) + w[1]) + …), or 1 where |d| < 1e-8; with `lambda` ≠ 1,
/// bf16(that) · lambda. Writes `out[i]` (f32, rounded to bf16 by the caller) for `i` in `0 ..< count` (a multiple of
/// 16). Returns −1 and writes nothing where `mg_sign_consensus_available()` is 0 or with another model count, else 0.
int mg_task_mix_bf16(const float *const *x, const float *weights, int models, int normalize, float lambda,
                     int64_t count, float *out);

/// Whether the kernels above run here: an x86-64 processor with AVX-512F (sixteen lanes a step) or AVX2 (eight lanes
/// a step, SignConsensusAVX2.c), asked once. Returns 1 or 0. Where it is 1 the kernels return 0 for arguments in
/// their ranges; the AVX2 forms give the same bytes as the AVX-512 ones.
int mg_sign_consensus_available(void);

#endif
