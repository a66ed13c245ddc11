// The hints are inline functions in include/CPUHints.h; this file holds the processor queries the AVX-512 and AVX2
// kernels use.
#include "CPUHints.h"

// Whether the processor has the instruction set `feature` (a literal such as "avx2"): 0 on other architectures.
#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#define MG_SUPPORTS(feature) (__builtin_cpu_init(), __builtin_cpu_supports(feature) ? 1 : 0)
#else
#define MG_SUPPORTS(feature) 0
#endif

// Stores `answer` in `slot` for the inline queries of CPUHints.h and returns it.
static int remember(int *slot, int answer) {
    __atomic_store_n(slot, answer, __ATOMIC_RELAXED);
    return answer;
}

int mg_avx512f_answer = -1;

int mg_avx512f_query(void) { return remember(&mg_avx512f_answer, MG_SUPPORTS("avx512f")); }

int mg_avx2_answer = -1;

int mg_avx2_query(void) { return remember(&mg_avx2_answer, MG_SUPPORTS("avx2")); }
