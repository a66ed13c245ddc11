#ifndef CPUHINTS_H
#define CPUHINTS_H

/// A spin-wait hint: x86 `pause`, arm64 `yield` (nothing elsewhere). A loop that polls memory calls it once per
/// check, so that the processor neither floods the pipeline with speculative loads (and flushes it when the value
/// changes) nor starves a sibling hardware thread. About 27 ns on the AMD EPYC (Zen 4) VM of the benchmarks.
static inline void mg_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/// Asks the processor whether it runs AVX-512F (`__builtin_cpu_supports`), stores the answer in
/// `mg_avx512f_answer` and returns it: 1 or 0 (0 on other architectures).
int mg_avx512f_query(void);

/// The answer `mg_avx512f_query` stored: −1 until it is asked.
extern int mg_avx512f_answer;

/// Whether the processor runs AVX-512F instructions: 1 on an x86-64 processor that has them, else 0; asked once,
/// then a load. The C kernels compiled for AVX-512 (`target("avx512f")`) run only then.
static inline int mg_avx512f_available(void) {
    int answer = __atomic_load_n(&mg_avx512f_answer, __ATOMIC_RELAXED);
    return answer >= 0 ? answer : mg_avx512f_query();
}

/// Asks the processor whether it runs AVX2 (`__builtin_cpu_supports`), stores the answer in `mg_avx2_answer` and
/// returns it: 1 or 0 (0 on other architectures).
int mg_avx2_query(void);

/// The answer `mg_avx2_query` stored: −1 until it is asked.
extern int mg_avx2_answer;

/// Whether the processor runs AVX2 instructions: 1 on an x86-64 processor that has them, else 0; asked once, then a
/// load. The C kernels compiled for AVX2 (`target("avx2")`) run only then.
static inline int mg_avx2_available(void) {
    int answer = __atomic_load_n(&mg_avx2_answer, __ATOMIC_RELAXED);
    return answer >= 0 ? answer : mg_avx2_query();
}

#endif
