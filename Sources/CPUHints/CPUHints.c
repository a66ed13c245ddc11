// The hints are inline functions in include/CPUHints.h; this file holds the processor queries the AVX-512 and AVX2
// kernels use.
#include "CPUHints.h"

int mg_avx512f_answer = -1;

int mg_avx512f_query(void) {
    int answer = 0;
#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
    __builtin_cpu_init();
    answer = __builtin_cpu_supports("avx512f") ? 1 : 0;
#endif
    __atomic_store_n(&mg_avx512f_answer, answer, __ATOMIC_RELAXED);
    return answer;
}

int mg_avx2_answer = -1;

int mg_avx2_query(void) {
    int answer = 0;
#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
    __builtin_cpu_init();
    answer = __builtin_cpu_supports("avx2") ? 1 : 0;
#endif
    __atomic_store_n(&mg_avx2_answer, answer, __ATOMIC_RELAXED);
    return answer;
}
