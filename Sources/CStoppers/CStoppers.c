#include "CStoppers.h"
#include "CPUHints.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>
#include "BlockPairs.h"
#include "WindowCount.h"

int mg_stopper_offsets_available(void) { return mg_avx512f_available(); }

// Sixteen entries a step: one unsigned comparison gives the stoppers' mask, `vpcompressd` (register form: its
// memory form is microcoded on AMD Zen 4) packs their offsets to the front, `vpmovdb` narrows them to bytes, and a
// 16-byte store appends them; the bytes past the stoppers are overwritten by the next step or left unused. The
// store stays within `count` bytes: before step i at most i offsets are written.
__attribute__((target("avx512f")))
static int offsets_avx512(const uint32_t *entries, int count, uint32_t threshold, int at_least, int reversed,
                          uint8_t *out) {
    const __m512i limit = _mm512_set1_epi32((int)threshold);
    const __m512i step = _mm512_set1_epi32(16);
    const __m512i reverse = _mm512_setr_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    __m512i offsets = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    int n = 0;
    for (int i = 0; i < count; i += 16) {
        __m512i v;
        if (reversed) {
            // Lane l after the permutation holds entry count − 1 − i − l, of offset i + l.
            v = _mm512_permutexvar_epi32(reverse, _mm512_loadu_si512((const void *)(entries + count - 16 - i)));
        } else {
            v = _mm512_loadu_si512((const void *)(entries + i));
        }
        __mmask16 stops = at_least ? _mm512_cmpge_epu32_mask(v, limit) : _mm512_cmple_epu32_mask(v, limit);
        __m128i bytes = _mm512_cvtepi32_epi8(_mm512_maskz_compress_epi32(stops, offsets));
        // Keeps `vpmovdb` in its register form: the compiler would fold the store into it, and the memory form is
        // microcoded on AMD Zen 4 and 5 (a third of this loop's time in a profile).
        __asm__("" : "+x"(bytes));
        _mm_storeu_si128((__m128i *)(out + n), bytes);
        n += __builtin_popcount((unsigned)stops);
        offsets = _mm512_add_epi32(offsets, step);
    }
    return n;
}

int mg_stopper_offsets(const uint32_t *entries, int count, uint32_t threshold, int at_least, int reversed,
                       uint8_t *out) {
    if (!mg_stopper_offsets_available()) return -1;
    return offsets_avx512(entries, count, threshold, at_least, reversed, out);
}

// The 16-bit block partition (`mg_block_partition16`). A block is 128 entries: four vectors of 32 entries, and 128
// bytes of the ordinals' high bits (two vectors of 64); its masks are 128 bits (two words, bit i for entry i).
#define MG_TARGET16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vbmi,avx512vbmi2,bmi2")))

// The keys of 32 entries: an untagged entry's own bits, a tagged one's tracked key.
MG_TARGET16
static inline __m512i keys16(__m512i v, __m512i first_key, __m512i second_key) {
    __mmask32 tagged = _mm512_cmpge_epu16_mask(v, _mm512_set1_epi16((short)0x8000));
    __mmask32 seconds = _mm512_mask_test_epi16_mask(tagged, v, _mm512_set1_epi16(0x4000));
    v = _mm512_mask_blend_epi16(tagged, v, first_key);
    return _mm512_mask_blend_epi16(seconds, v, second_key);
}

// The stoppers of the 128 entries at `block`: keys at least (`at_least`) or at most `pivot`.
MG_TARGET16
static inline void block_stoppers16(const uint16_t *block, __m512i pivot, int at_least, __m512i first_key,
                                    __m512i second_key, uint64_t mask[2]) {
    uint64_t m[2] = {0, 0};
    for (int v = 0; v < 4; v++) {
        __m512i k = keys16(_mm512_loadu_si512((const void *)(block + 32 * v)), first_key, second_key);
        uint64_t bits = at_least ? _mm512_cmpge_epu16_mask(k, pivot) : _mm512_cmple_epu16_mask(k, pivot);
        m[v >> 1] |= bits << (32 * (v & 1));
    }
    mask[0] = m[0];
    mask[1] = m[1];
}

// Packs the entries of `block` whose bits are set in `select` into `stream` in increasing position order (the
// register form of `vpcompressw` and a full store: `stream` has room for 32 entries past the last); returns whether
// one of them is tagged.
MG_TARGET16
static inline int compress16(const uint16_t *block, const uint64_t select[2], uint16_t *stream) {
    int n = 0;
    __mmask32 tagged = 0;
    for (int v = 0; v < 4; v++) {
        __mmask32 m = (__mmask32)(select[v >> 1] >> (32 * (v & 1)));
        if (!m) continue;
        __m512i x = _mm512_loadu_si512((const void *)(block + 32 * v));
        tagged |= _mm512_mask_cmpge_epu16_mask(m, x, _mm512_set1_epi16((short)0x8000));
        _mm512_storeu_si512((void *)(stream + n), _mm512_maskz_compress_epi16(m, x));
        n += __builtin_popcount((unsigned)m);
    }
    return tagged != 0;
}

// Writes into the positions of `block` whose bits are set in `select`, in increasing position order, the entries
// `stream[count − 1]`, `stream[count − 2]`, … (the stream read backwards; 32 entries before `stream` are readable).
MG_TARGET16
static inline void expand_reversed16(uint16_t *block, const uint64_t select[2], const uint16_t *stream, int count) {
    const __m512i reverse = _mm512_set_epi16(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
                                             21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31);
    int t = 0;
    for (int v = 0; v < 4; v++) {
        __mmask32 m = (__mmask32)(select[v >> 1] >> (32 * (v & 1)));
        if (!m) continue;
        __m512i next = _mm512_permutexvar_epi16(reverse, _mm512_loadu_si512((const void *)(stream + count - t - 32)));
        __m512i x = _mm512_loadu_si512((const void *)(block + 32 * v));
        _mm512_storeu_si512((void *)(block + 32 * v), _mm512_mask_expand_epi16(x, m, next));
        t += __builtin_popcount((unsigned)m);
    }
}

// The same two steps on the blocks' bytes of ordinals' high bits (64 a vector; `stream` has room and slack of 64).
MG_TARGET16
static inline void compress8(const uint8_t *block, const uint64_t select[2], uint8_t *stream) {
    int n = 0;
    for (int v = 0; v < 2; v++) {
        __m512i x = _mm512_maskz_compress_epi8(select[v], _mm512_loadu_si512((const void *)(block + 64 * v)));
        _mm512_storeu_si512((void *)(stream + n), x);
        n += __builtin_popcountll(select[v]);
    }
}

MG_TARGET16
static inline void expand_reversed8(uint8_t *block, const uint64_t select[2], const uint8_t *stream, int count) {
    const __m512i reverse = _mm512_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
                                            21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38,
                                            39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56,
                                            57, 58, 59, 60, 61, 62, 63);
    int t = 0;
    for (int v = 0; v < 2; v++) {
        if (!select[v]) continue;
        __m512i next = _mm512_permutexvar_epi8(reverse, _mm512_loadu_si512((const void *)(stream + count - t - 64)));
        __m512i x = _mm512_loadu_si512((const void *)(block + 64 * v));
        _mm512_storeu_si512((void *)(block + 64 * v), _mm512_mask_expand_epi8(x, select[v], next));
        t += __builtin_popcountll(select[v]);
    }
}

// The lowest `k` set bits of the 128-bit mask `m` (k at most its population).
MG_TARGET16
static inline void lowest_bits128(const uint64_t m[2], int k, uint64_t out[2]) {
    int low = __builtin_popcountll(m[0]);
    if (k <= low) {
        out[0] = k == 0 ? 0 : _pdep_u64(k == 64 ? ~0ULL : (1ULL << k) - 1, m[0]);
        out[1] = 0;
    } else {
        int rest = k - low;
        out[0] = m[0];
        out[1] = _pdep_u64(rest == 64 ? ~0ULL : (1ULL << rest) - 1, m[1]);
    }
}

// Where the scalar scans resume after the block loop over `l ..< r`: out[0] the next unpaired left stopper (the
// lowest of `ml`, of the block at l), or l; out[1] one past the next unpaired right stopper (the highest of `mr`, of
// the block at r − 128), or r.
static inline void scan_resume(const uint64_t ml[2], const uint64_t mr[2], int64_t l, int64_t r, int64_t *out) {
    out[0] = ml[0] ? l + __builtin_ctzll(ml[0]) : (ml[1] ? l + 64 + __builtin_ctzll(ml[1]) : l);
    out[1] = mr[1] ? r - 128 + 64 + (63 - __builtin_clzll(mr[1])) + 1
                   : (mr[0] ? r - 128 + (63 - __builtin_clzll(mr[0])) + 1 : r);
}

MG_TARGET16
static void partition16_avx512(uint16_t *e, uint8_t *high, int64_t first, int64_t last, uint16_t pivot,
                               int left_at_least, uint16_t first_key, uint16_t second_key, int64_t *out) {
    enum { B = 128 };
    const __m512i p = _mm512_set1_epi16((short)pivot);
    const __m512i k1 = _mm512_set1_epi16((short)first_key), k2 = _mm512_set1_epi16((short)second_key);
    uint16_t left_buffer[32 + B + 32], right_buffer[32 + B + 32];
    uint16_t *left_stream = left_buffer + 32, *right_stream = right_buffer + 32;
    uint8_t left_bytes[64 + B + 64], right_bytes[64 + B + 64];
    int64_t l = first, r = last;
    uint64_t ml[2] = {0, 0}, mr[2] = {0, 0};  // the unpaired stoppers of the blocks at l and r − B
    while (r - l >= 2 * B) {
        if (!(ml[0] | ml[1])) {
            // The blocks the scans reach next stream in from memory while this one is paired.
            if (r - l >= (2 + 2 * MG_PREFETCH_BLOCKS) * B) mg_prefetch_block16(e, high, l + MG_PREFETCH_BLOCKS * B);
            block_stoppers16(e + l, p, left_at_least, k1, k2, ml);
        }
        if (!(mr[0] | mr[1])) {
            if (r - l >= (2 + 2 * MG_PREFETCH_BLOCKS) * B) mg_prefetch_block16(e, high, r - (MG_PREFETCH_BLOCKS + 1) * B);
            block_stoppers16(e + r - B, p, !left_at_least, k1, k2, mr);
        }
        int cl = __builtin_popcountll(ml[0]) + __builtin_popcountll(ml[1]);
        int cr = __builtin_popcountll(mr[0]) + __builtin_popcountll(mr[1]);
        int pairs = cl < cr ? cl : cr;
        if (pairs > 0) {
            // The left scan's next `pairs` stoppers (lowest positions) meet the right scan's (highest positions):
            // the t-th lowest on the left is exchanged with the t-th highest on the right.
            uint64_t sl[2], keep[2], sr[2];
            lowest_bits128(ml, pairs, sl);
            lowest_bits128(mr, cr - pairs, keep);
            sr[0] = mr[0] & ~keep[0];
            sr[1] = mr[1] & ~keep[1];
            int tagged = compress16(e + l, sl, left_stream);
            tagged |= compress16(e + r - B, sr, right_stream);
            expand_reversed16(e + l, sl, right_stream, pairs);
            expand_reversed16(e + r - B, sr, left_stream, pairs);
            if (tagged) {
                // A tagged entry moves: its ordinal's high bits move with it (the other bytes move alike, unread).
                compress8(high + l, sl, left_bytes + 64);
                compress8(high + r - B, sr, right_bytes + 64);
                expand_reversed8(high + l, sl, right_bytes + 64, pairs);
                expand_reversed8(high + r - B, sr, left_bytes + 64, pairs);
            }
            ml[0] &= ~sl[0];
            ml[1] &= ~sl[1];
            mr[0] = keep[0];
            mr[1] = keep[1];
        }
        if (!(ml[0] | ml[1])) l += B;
        if (!(mr[0] | mr[1])) r -= B;
    }
    // Where the scalar scans resume: the next unpaired left stopper, or l; one past the next unpaired right stopper
    // (the highest), or r.
    scan_resume(ml, mr, l, r, out);
}

// Whether the AVX-512 form of the block partition (and the windowed count) runs here, asked once.
static int mg_avx512_partition_available(void) {
    static int answer = -1;
    int known = __atomic_load_n(&answer, __ATOMIC_RELAXED);
    if (known >= 0) return known;
    __builtin_cpu_init();
    known = mg_avx512f_available() && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")
            && __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("avx512vbmi2")
            && __builtin_cpu_supports("bmi2") ? 1 : 0;
    __atomic_store_n(&answer, known, __ATOMIC_RELAXED);
    return known;
}

int mg_block_partition16_available(void) {
    return mg_avx512_partition_available() || mg_avx2_partition_available() ? 1 : 0;
}

int mg_block_partition16(uint16_t *entries, uint8_t *high, int64_t first, int64_t last, uint16_t pivot,
                         int left_at_least, uint16_t first_key, uint16_t second_key, int keep, int64_t *out) {
    if (!mg_avx512_partition_available()) {
        return mg_block_partition16_avx2(entries, high, first, last, pivot, left_at_least, first_key, second_key, keep,
                                         out);
    }
    partition16_avx512(entries, high, first, last, pivot, left_at_least, first_key, second_key, out);
    return 0;
}

// `mg_window_count16` with AVX-512BW and VBMI2: thirty-two keys a step, the in-window ones packed by `vpcompressw`
// (register form) into a small buffer whose increments then run as a scalar loop.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vbmi2")))
static void window_count16_avx512(const uint16_t *keys, int64_t count, uint16_t lo1, uint16_t hi1, uint16_t lo2,
                                  uint16_t hi2, int64_t *table, int64_t *gaps) {
    const __m512i l1 = _mm512_set1_epi16((short)lo1), h1 = _mm512_set1_epi16((short)hi1);
    const __m512i l2 = _mm512_set1_epi16((short)lo2), h2 = _mm512_set1_epi16((short)hi2);
    uint16_t buffer[256 + 32];
    int64_t below = 0, between = 0;
    int64_t i = 0;
    while (i + 256 <= count) {
        int n = 0;
        for (int s = 0; s < 256; s += 32) {
            __m512i v = _mm512_loadu_si512((const void *)(keys + i + s));
            __mmask32 under1 = _mm512_cmplt_epu16_mask(v, l1), upto1 = _mm512_cmple_epu16_mask(v, h1);
            __mmask32 under2 = _mm512_cmplt_epu16_mask(v, l2), upto2 = _mm512_cmple_epu16_mask(v, h2);
            below += __builtin_popcount((unsigned)under1);
            between += __builtin_popcount((unsigned)(~upto1 & under2));
            __mmask32 in = (~under1 & upto1) | (~under2 & upto2);
            __m512i packed = _mm512_maskz_compress_epi16(in, v);
            __asm__("" : "+v"(packed));
            _mm512_storeu_si512((void *)(buffer + n), packed);
            n += __builtin_popcount((unsigned)in);
        }
        for (int j = 0; j < n; j++) table[buffer[j]] += 1;
        i += 256;
    }
    mg_window_count16_tail(keys + i, count - i, lo1, hi1, lo2, hi2, table, &below, &between);
    gaps[0] += below;
    gaps[1] += between;
}

int mg_window_count16(const uint16_t *keys, int64_t count, uint16_t lo1, uint16_t hi1, uint16_t lo2, uint16_t hi2,
                      int64_t *table, int64_t *gaps) {
    if (!mg_avx512_partition_available()) return mg_window_count16_avx2(keys, count, lo1, hi1, lo2, hi2, table, gaps);
    window_count16_avx512(keys, count, lo1, hi1, lo2, hi2, table, gaps);
    return 0;
}

int mg_window_count16_available(void) {
    return mg_avx512_partition_available() || mg_window_count16_avx2_available() ? 1 : 0;
}

// `mg_keep_bf16`: sixteen elements a step, the keep decision in mask registers (Swift's eight-lane masks took
// about three instructions an element).
__attribute__((target("avx512f")))
static void keep_bf16_avx512(const uint16_t *plane, const uint64_t *bits, int by_mask, uint32_t low, uint32_t high,
                             uint32_t first, uint32_t second, int64_t start, int64_t count, float *out) {
    const __m512i magnitude = _mm512_set1_epi32(0x7FFF), infinity = _mm512_set1_epi32(0x7F80);
    const __m512i nan = _mm512_set1_epi32(0x7FC0), lo = _mm512_set1_epi32((int)low);
    const __m512i span = _mm512_set1_epi32((int)(high - low));
    const __m512i f = _mm512_set1_epi32((int)first), s = _mm512_set1_epi32((int)second);
    for (int64_t j = 0; j < count; j += 16) {
        const int64_t i = start + j;
        const __m512i raw = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(plane + i)));
        const __mmask16 bit = (__mmask16)(bits[i >> 6] >> (i & 63));
        __mmask16 keep = bit;
        if (!by_mask) {
            __m512i key = _mm512_and_si512(raw, magnitude);
            key = _mm512_mask_mov_epi32(key, _mm512_cmpgt_epu32_mask(key, infinity), nan);
            const __mmask16 in_range = _mm512_cmple_epu32_mask(_mm512_sub_epi32(key, lo), span);
            const __mmask16 tracked = _mm512_cmpeq_epi32_mask(key, f) | _mm512_cmpeq_epi32_mask(key, s);
            keep = in_range & (bit | (__mmask16)~tracked);
        }
        _mm512_storeu_si512((void *)(out + j), _mm512_maskz_slli_epi32(keep, raw, 16));
    }
}

int mg_keep_bf16_available(void) { return mg_avx512f_available(); }

int mg_keep_bf16(const uint16_t *plane, const uint64_t *bits, int by_mask, uint32_t low, uint32_t high, uint32_t first,
                 uint32_t second, int64_t start, int64_t count, float *out) {
    if (!mg_keep_bf16_available() || start % 16 != 0 || count % 16 != 0) return -1;
    keep_bf16_avx512(plane, bits, by_mask, low, high, first, second, start, count, out);
    return 0;
}

#else

int mg_stopper_offsets_available(void) { return 0; }

int mg_stopper_offsets(const uint32_t *entries, int count, uint32_t threshold, int at_least, int reversed,
                       uint8_t *out) {
    (void)entries; (void)count; (void)threshold; (void)at_least; (void)reversed; (void)out;
    return -1;
}

int mg_block_partition16_available(void) { return 0; }

int mg_block_partition16(uint16_t *entries, uint8_t *high, int64_t first, int64_t last, uint16_t pivot,
                         int left_at_least, uint16_t first_key, uint16_t second_key, int keep, int64_t *out) {
    (void)entries; (void)high; (void)first; (void)last; (void)pivot; (void)left_at_least; (void)first_key;
    (void)second_key; (void)keep; (void)out;
    return -1;
}

int mg_window_count16_available(void) { return 0; }

int mg_window_count16(const uint16_t *keys, int64_t count, uint16_t lo1, uint16_t hi1, uint16_t lo2, uint16_t hi2,
                      int64_t *table, int64_t *gaps) {
    (void)keys; (void)count; (void)lo1; (void)hi1; (void)lo2; (void)hi2; (void)table; (void)gaps;
    return -1;
}

int mg_keep_bf16_available(void) { return 0; }

int mg_keep_bf16(const uint16_t *plane, const uint64_t *bits, int by_mask, uint32_t low, uint32_t high, uint32_t first,
                 uint32_t second, int64_t start, int64_t count, float *out) {
    (void)plane; (void)bits; (void)by_mask; (void)low; (void)high; (void)first; (void)second; (void)start;
    (void)count; (void)out;
    return -1;
}

#endif
