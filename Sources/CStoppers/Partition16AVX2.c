// `mg_block_partition16` for x86-64 processors with AVX2 but not the AVX-512 subsets of CStoppers.c (AMD Zen 2 and 3,
// Intel client cores): the same exchanges, the stoppers of a block classified sixteen keys a comparison and the pairs
// exchanged one by one from lists of their offsets, made eight a step from tables when a block is reached. Exchanging
// the pairs by `pshufb` compressions and expansions through a stream (the AVX-512 form's scheme, eight lanes a step)
// was slower on the Zen 3 VM of 2026-12-04 (`breadcrumbs_ties3` 14.7–17.7 s against 12.7–13.6 s with the lists and
// 13.4–14.6 s with the Swift partition, alternated), also with each expansion put off until the next pair's
// compressions were done: the shuffles, table loads and blends of every group of eight cost more than the pairs'
// exchanges one by one (docs/performance-history.md).
#include "CStoppers.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>
#include "AVX2Masks.h"
#include "BlockPairs.h"
#include <pthread.h>
#include <string.h>

#define MG_TARGET2 __attribute__((target("avx2,popcnt")))

// For each byte of mask m: the offsets (0–7) of its set bits in increasing (`offsets_up`) and decreasing
// (`offsets_down`) order, packed into the low bytes of a word.
static uint64_t offsets_up[256], offsets_down[256];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static void make_tables(void) {
    for (int m = 0; m < 256; m++) {
        uint64_t up = 0, down = 0;
        int u = 0, d = 0;
        for (int j = 0; j < 8; j++) if (m >> j & 1) up |= (uint64_t)j << (8 * u++);
        for (int j = 7; j >= 0; j--) if (m >> j & 1) down |= (uint64_t)j << (8 * d++);
        offsets_up[m] = up;
        offsets_down[m] = down;
    }
}

int mg_avx2_partition_available(void) {
    static int answer = -1;
    int known = __atomic_load_n(&answer, __ATOMIC_ACQUIRE);
    if (known >= 0) return known;
    __builtin_cpu_init();
    known = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt");
    if (known) pthread_once(&tables_once, make_tables);
    __atomic_store_n(&answer, known, __ATOMIC_RELEASE);
    return known;
}

// The keys of sixteen entries: an untagged entry's own bits, a tagged one's tracked key.
MG_TARGET2
static inline __m256i keys16(__m256i v, __m256i first_key, __m256i second_key) {
    __m256i tagged = _mm256_srai_epi16(v, 15);
    __m256i seconds = _mm256_srai_epi16(_mm256_slli_epi16(v, 1), 15);
    return _mm256_blendv_epi8(v, _mm256_blendv_epi8(first_key, second_key, seconds), tagged);
}

// Sixteen lanes of all ones where the key is at least (`at_least`) or at most `pivot`, compared unsigned.
MG_TARGET2
static inline __m256i stops16(__m256i k, __m256i pivot, int at_least) {
    return _mm256_cmpeq_epi16(at_least ? _mm256_max_epu16(k, pivot) : _mm256_min_epu16(k, pivot), k);
}

// Whether a scan that stops at keys at least (`at_least`) or at most `pivot` stops at the entry `entry`.
static inline int stops_at(uint16_t entry, uint16_t pivot, int at_least, uint16_t first_key, uint16_t second_key) {
    uint16_t key = entry < 0x8000 ? entry : (entry & 0x4000 ? second_key : first_key);
    return at_least ? key >= pivot : key <= pivot;
}

// How a scan's stoppers are told from the entries (`stop_test`). Where the tracked keys either both stop the scan or
// both do not, every tagged entry (negative as a signed 16-bit lane) stops it or none does, and one comparison of
// the entries themselves decides each lane: `MG_STOP_ABOVE` (v > bound, signed: tagged never stop), `MG_STOP_NOT_ABOVE`
// (not v > bound, signed: tagged always stop), `MG_STOP_AT_LEAST` / `MG_STOP_AT_MOST` (v ≥ / ≤ bound unsigned: tagged
// always / never stop). Only when one tracked key stops the scan and the other does not are the tagged entries'
// keys put in first (`MG_STOP_BY_KEYS`: `keys16`, five more operations a vector). On the Zen 3 VM, a one-sided pass
// over 11.5 M keys took 0.44–0.47 ns an entry with the direct comparisons against 0.46–0.50 with every key put in.
enum { MG_STOP_ABOVE, MG_STOP_NOT_ABOVE, MG_STOP_AT_LEAST, MG_STOP_AT_MOST, MG_STOP_BY_KEYS };

struct stop_test {
    int kind;
    __m256i bound;
    // For `MG_STOP_BY_KEYS`: the scan's direction and the tracked keys, in every lane.
    int at_least;
    __m256i first_key, second_key;
};

// The test of a scan that stops at keys at least (`at_least`) or at most `pivot`.
MG_TARGET2
static inline struct stop_test make_stop_test(uint16_t pivot, int at_least, uint16_t first_key, uint16_t second_key) {
    int first_stops = at_least ? first_key >= pivot : first_key <= pivot;
    int second_stops = at_least ? second_key >= pivot : second_key <= pivot;
    struct stop_test t = {MG_STOP_BY_KEYS, _mm256_set1_epi16((short)pivot), at_least,
                          _mm256_set1_epi16((short)first_key), _mm256_set1_epi16((short)second_key)};
    if (first_stops != second_stops) return t;
    if (at_least && !first_stops) {
        // v ≥ pivot for keys below 0x8000 is v > pivot − 1 (at least −1) in signed lanes.
        t.kind = MG_STOP_ABOVE;
        t.bound = _mm256_set1_epi16((short)(pivot - 1));
    } else if (at_least) {
        t.kind = MG_STOP_AT_LEAST;
    } else {
        t.kind = first_stops ? MG_STOP_NOT_ABOVE : MG_STOP_AT_MOST;
    }
    return t;
}

// The stoppers (by `t`) of the 128 entries at `block` as a 128-bit mask (bit i for entry i). Each kind has its loop.
#define MG_STOPS_LOOP(LANES, FLIP)                                                                                    \
    for (int v = 0; v < 4; v++) {                                                                                     \
        __m256i x = _mm256_loadu_si256((const __m256i *)(block + 32 * v));                                            \
        __m256i y = _mm256_loadu_si256((const __m256i *)(block + 32 * v + 16));                                       \
        w[v] = mg_mask32_epi16(LANES(x), LANES(y)) ^ (FLIP);                                                          \
    }
MG_TARGET2 __attribute__((always_inline))
static inline void block_stoppers(const uint16_t *block, const struct stop_test *t, uint64_t mask[2]) {
    uint64_t w[4];
    const __m256i bound = t->bound;
#define MG_ABOVE(x) _mm256_cmpgt_epi16(x, bound)
#define MG_AT_LEAST(x) _mm256_cmpeq_epi16(_mm256_max_epu16(x, bound), x)
#define MG_AT_MOST(x) _mm256_cmpeq_epi16(_mm256_min_epu16(x, bound), x)
#define MG_BY_KEYS(x) stops16(keys16(x, t->first_key, t->second_key), bound, t->at_least)
    switch (t->kind) {
    case MG_STOP_ABOVE: MG_STOPS_LOOP(MG_ABOVE, 0) break;
    case MG_STOP_NOT_ABOVE: MG_STOPS_LOOP(MG_ABOVE, 0xFFFFFFFFu) break;
    case MG_STOP_AT_LEAST: MG_STOPS_LOOP(MG_AT_LEAST, 0) break;
    case MG_STOP_AT_MOST: MG_STOPS_LOOP(MG_AT_MOST, 0) break;
    default: MG_STOPS_LOOP(MG_BY_KEYS, 0) break;
    }
#undef MG_ABOVE
#undef MG_AT_LEAST
#undef MG_AT_MOST
#undef MG_BY_KEYS
    mask[0] = w[0] | w[1] << 32;
    mask[1] = w[2] | w[3] << 32;
}
#undef MG_STOPS_LOOP

static inline unsigned group_mask(const uint64_t select[2], int g) {
    return (unsigned)(select[g >> 3] >> (8 * (g & 7))) & 0xFF;
}

// The offsets (0–127) of the set bits of `select`, in increasing (`down` 0) or decreasing order, as bytes at `out`
// (room for 8 bytes past the last); returns how many.
MG_TARGET2
static inline int offsets128(const uint64_t select[2], int down, uint8_t *out) {
    int n = 0;
    for (int s = 0; s < 16; s++) {
        int g = down ? 15 - s : s;
        unsigned m = group_mask(select, g);
        uint64_t word = (down ? offsets_down[m] : offsets_up[m]) + 0x0808080808080808ULL * (uint64_t)g;
        memcpy(out + n, &word, 8);
        n += __builtin_popcount(m);
    }
    return n;
}

// A one-sided partition's half of each of `pairs` exchanges: the entry at offset `from_offsets[t]` of the block
// `from` is written at offset `to_offsets[t]` of the block `to` (the kept side), and nothing goes back; a tagged entry
// brings its byte of `from_high` along and is overwritten where it was by the untagged `pivot`, so that no stale copy
// of it is left behind.
static inline void move_halves(const uint8_t *to_offsets, uint16_t *to, uint8_t *to_high, const uint8_t *from_offsets,
                               uint16_t *from, const uint8_t *from_high, int pairs, uint16_t pivot) {
    for (int t = 0; t < pairs; t++) {
        int a = to_offsets[t], b = from_offsets[t];
        uint16_t v = from[b];
        to[a] = v;
        if (v >= 0x8000) {
            to_high[a] = from_high[b];
            from[b] = pivot;
        }
    }
}

MG_TARGET2
static void partition16_avx2(uint16_t *e, uint8_t *high, int64_t first, int64_t last, uint16_t pivot,
                             int left_at_least, uint16_t first_key, uint16_t second_key, int keep, int64_t *out) {
    enum { B = 128 };
    const struct stop_test left_test = make_stop_test(pivot, left_at_least, first_key, second_key);
    const struct stop_test right_test = make_stop_test(pivot, !left_at_least, first_key, second_key);
    int64_t l = first, r = last;
    // The offsets of the stoppers of the blocks at l (increasing) and at r − B (decreasing), made once when the
    // block is reached, and how many of each are listed and already paired. (Remaking the lists of both blocks at
    // every step, from masks of the unpaired stoppers, took about a sixth more time.)
    uint8_t lo[B + 8], ro[B + 8];
    int listed_l = 0, paired_l = 0, listed_r = 0, paired_r = 0;
    while (r - l >= 2 * B) {
        if (paired_l == listed_l) {
            if (r - l >= (2 + 2 * MG_PREFETCH_BLOCKS) * B) mg_prefetch_block16(e, high, l + MG_PREFETCH_BLOCKS * B);
            uint64_t m[2];
            block_stoppers(e + l, &left_test, m);
            listed_l = offsets128(m, 0, lo);
            paired_l = 0;
        }
        if (paired_r == listed_r) {
            if (r - l >= (2 + 2 * MG_PREFETCH_BLOCKS) * B) mg_prefetch_block16(e, high, r - (MG_PREFETCH_BLOCKS + 1) * B);
            uint64_t m[2];
            block_stoppers(e + r - B, &right_test, m);
            listed_r = offsets128(m, 1, ro);
            paired_r = 0;
        }
        int pairs = listed_l - paired_l < listed_r - paired_r ? listed_l - paired_l : listed_r - paired_r;
        // The t-th lowest unpaired left stopper is exchanged with the t-th highest unpaired right one; a tagged
        // entry's byte of ordinal's high bits moves with it.
        const uint8_t *lt = lo + paired_l, *rt = ro + paired_r;
        uint16_t *lb = e + l, *rb = e + r - B;
        uint8_t *lh = high + l, *rh = high + r - B;
        if (keep == MG_KEEP_LEFT) {
            move_halves(lt, lb, lh, rt, rb, rh, pairs, pivot);
        } else if (keep == MG_KEEP_RIGHT) {
            move_halves(rt, rb, rh, lt, lb, lh, pairs, pivot);
        } else {
            for (int t = 0; t < pairs; t++) {
                int a = lt[t], b = rt[t];
                uint16_t x = lb[a], y = rb[b];
                lb[a] = y;
                rb[b] = x;
                if ((uint16_t)(x | y) >= 0x8000) {
                    uint8_t h = lh[a];
                    lh[a] = rh[b];
                    rh[b] = h;
                }
            }
        }
        paired_l += pairs;
        paired_r += pairs;
        if (paired_l == listed_l) l += B;
        if (paired_r == listed_r) r -= B;
    }
    // Where the scalar scans resume: the next unpaired left stopper, or l; one past the next unpaired right stopper
    // (the highest), or r.
    out[0] = paired_l < listed_l ? l + lo[paired_l] : l;
    out[1] = paired_r < listed_r ? r - B + ro[paired_r] + 1 : r;
    // A one-sided partition leaves the other side's paired stoppers stale. Keeping the left, the scalar left scan
    // (which gives the cut) stops at `out[1]` at the latest, which holds a non-stopper (current) or a paired stopper:
    // a stale one gets the pivot's key, at which the scan stops as it would at the left stopper the exchange would
    // have put there. Keeping the right, the scalar right scan may run past the left scan into the left side, which
    // changes nothing (they have crossed; the cut is the left scan's), but through stale entries it could run far:
    // `out[0] − 1` gets the pivot's key alike when stale, so that it stops there.
    if (keep == MG_KEEP_LEFT && out[1] < last && stops_at(e[out[1]], pivot, !left_at_least, first_key, second_key)) {
        e[out[1]] = pivot;
    } else if (keep == MG_KEEP_RIGHT && out[0] > first
               && stops_at(e[out[0] - 1], pivot, left_at_least, first_key, second_key)) {
        e[out[0] - 1] = pivot;
    }
}

int mg_block_partition16_avx2(uint16_t *entries, uint8_t *high, int64_t first, int64_t last, uint16_t pivot,
                              int left_at_least, uint16_t first_key, uint16_t second_key, int keep, int64_t *out) {
    if (!mg_avx2_partition_available()) return -1;
    if (keep != MG_KEEP_LEFT && keep != MG_KEEP_RIGHT) keep = MG_KEEP_BOTH;
    partition16_avx2(entries, high, first, last, pivot, left_at_least, first_key, second_key, keep, out);
    return 0;
}

#else

int mg_avx2_partition_available(void) { return 0; }

int mg_block_partition16_avx2(uint16_t *entries, uint8_t *high, int64_t first, int64_t last, uint16_t pivot,
                              int left_at_least, uint16_t first_key, uint16_t second_key, int keep, int64_t *out) {
    (void)entries; (void)high; (void)first; (void)last; (void)pivot; (void)left_at_least; (void)first_key;
    (void)second_key; (void)keep; (void)out;
    return -1;
}

#endif
