#ifndef SIGNCONSENSUSAVX2_H
#define SIGNCONSENSUSAVX2_H

#include <stdint.h>

// The AVX2 forms of the public kernels of CSignConsensus.h (SignConsensusAVX2.c), eight lanes a step: the same
// arguments and results; `count` a multiple of 8. Call only where `mg_sign_consensus_avx2_available()` is 1 (an
// x86-64 processor with AVX2, asked once); the public kernels do, where the processor lacks AVX-512F.
int mg_sign_consensus_avx2_available(void);
void mg_ties_avx2(const float *const *x, const float *weights, int models, int normalize, int64_t count, float *out);
void mg_elect_avx2(const float *const *x, const float *weights, int models, int64_t count, float *out);
void mg_sce_avx2(const float *sign, const float *const *x, const float *mask, const float *weights, int models,
                 int64_t count, float *out);
void mg_mix_avx2(const float *const *x, const float *weights, int models, int normalize, float lambda, int64_t count,
                 float *out);

#endif
