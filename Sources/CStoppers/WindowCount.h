#ifndef MG_WINDOWCOUNT_H
#define MG_WINDOWCOUNT_H

// The scalar step both forms of `mg_window_count16` share (`window_count16_avx512` in CStoppers.c and
// `window_count16_avx2` in WindowCount16AVX2.c): the keys left after the last whole vector step, one by one.
#include <stdint.h>

static inline void mg_window_count16_tail(const uint16_t *keys, int64_t count, uint16_t lo1, uint16_t hi1,
                                          uint16_t lo2, uint16_t hi2, int64_t *table, int64_t *below,
                                          int64_t *between) {
    for (int64_t i = 0; i < count; i++) {
        uint16_t k = keys[i];
        if (k < lo1) *below += 1;
        else if (k <= hi1) table[k] += 1;
        else if (k < lo2) *between += 1;
        else if (k <= hi2) table[k] += 1;
    }
}

#endif
