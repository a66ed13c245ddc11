#if canImport(Glibc)
import Glibc
#endif
import CStoppers
import IR

/// Which elements PyTorch's CPU `torch.argsort` / `torch.sort` (`stable=False`) of a 1-D float32 tensor puts at a
/// range of sorted positions, bit for bit, including the elements of equal value that straddle the range's ends.
///
/// What PyTorch runs (ATen `sort_kernel` in `native/cpu/SortingKernel.cpp`): the PyPI wheels, including torch
/// 2.15.0 that `pip install mergekit==0.1.5` installs, are built without x86-simd-sort, so the unstable sort of
/// one 1-D row is a single call of libstdc++'s `std::sort` (introsort) over (value, index) pairs with the
/// comparators
///
///     descending (KeyValueCompDesc): before(a, b) = (isnan(a) && !isnan(b)) || a > b
///     ascending  (KeyValueCompAsc):  before(a, b) = (!isnan(a) && isnan(b)) || a < b
///
/// on the values only. The result therefore depends on neither the thread count nor `ATEN_CPU_CAPABILITY`.
/// libstdc++'s introsort is: while a segment is longer than 16 (`_S_threshold`), move the median of
/// (first + 1, middle, last − 1) to `first`, Hoare-partition the rest around it without bounds checks
/// (`__unguarded_partition`), recurse on the right part and loop on the left; once the depth budget
/// 2·⌊log2 n⌋ is spent, heapsort the segment (`__make_heap` + `__sort_heap`); a final insertion sort finishes.
/// That insertion sort never moves an element across a partition cut, so it acts on each leaf segment as a stable
/// insertion sort; hence the set of elements that ends at positions `lo..<hi` depends only on the segments
/// straddling `lo` or `hi`. The replay partitions just those (like a quickselect, about 2n element moves) and
/// leaves the others unsorted.
///
/// Provenance: the algorithm and its equivalence were established by the project's tie-cut study, which
/// replayed libstdc++ `std::sort` on (key, index) pairs with PyTorch's comparators and compared the result with
/// torch 2.15.0's: full permutations of bf16, fp16 and f32 magnitudes from 10^5 to 1.3·10^8 elements,
/// adversarial inputs that drive introsort into its heapsort path, and thousands of small arrays, ascending and
/// descending, all identical; the fixtures in `Tests/Fixtures/tiecut` come from it.
///
/// Representation (`ReplayEntries`): per element an order key and the element's index. The key is `|x|`'s bit
/// pattern with every NaN made one canonical NaN; for non-negative floats the bit patterns order like the values, and
/// one NaN key above +∞ makes integer comparison reproduce both comparators exactly (NaN after every number
/// ascending, before every number descending, NaNs equal among themselves). `PackedEntries` holds any f32 as one
/// `UInt64` (key above, index below: 8 bytes per element); `ShiftedEntries` and `TaggedEntries` hold bf16
/// magnitudes in 4 bytes, with identities only for the elements tied at the cut (see `TieCut`).
enum TorchArgsortReplay {
    /// The largest tensor the replay handles: its indices must fit the entries' 32 index bits.
    static let maxElementCount = TieOrder.torchMaxElementCount

    /// The packed entry of element `index` (< `maxElementCount`) of value `x`: order key above, index below.
    @inline(__always)
    static func entry(_ x: Float, index: Int) -> UInt64 {
        var key = x.bitPattern & 0x7FFF_FFFF
        key = key > 0x7F80_0000 ? 0x7FC0_0000 : key
        return UInt64(key) << 32 | UInt64(truncatingIfNeeded: index)
    }

    /// The element index an entry holds.
    @inline(__always)
    static func index(_ entry: UInt64) -> Int { Int(truncatingIfNeeded: entry & 0xFFFF_FFFF) }

    /// Reorders the `count` entries at `entries` so that positions `positions` hold the elements PyTorch's sort
    /// (descending: `torch.argsort(w, descending=True)`; ascending: `torch.sort(w)`) puts there; the order within
    /// `positions` and outside it is unspecified. `positions` must lie within `0..<count`.
    static func select(_ entries: UnsafeMutablePointer<UInt64>, count: Int, positions: Range<Int>, descending: Bool) {
        select(PackedEntries(e: entries), count: count, positions: positions, descending: descending)
    }

    /// `select` on entries of any layout; with `bounds`, a partition may leave stale entries on a side of its cut
    /// that no later step reads (`Sorter.keptSide`), so that only the tagged entries at `positions` are as the sort
    /// leaves them (what `TieCut` reads), not every entry.
    static func select<S: ReplayEntries>(_ entries: S, count: Int, positions: Range<Int>, descending: Bool,
                                         bounds: BoundaryKeys? = nil) {
        let rest = beginSelect(entries, count: count, positions: positions, descending: descending, bounds: bounds)
        finishSelect(entries, positions: positions, descending: descending, bounds: bounds, segments: rest)
    }

    /// What lets a partition write only one side of its cut (`Sorter.keptSide`): the order keys of the elements the
    /// sort puts at the first and last wanted positions, and the keys of the tracked elements, the only entries
    /// whose identity is read after the replay (`CompactEntries`' tags). Every other entry is read only for its key.
    struct BoundaryKeys: Sendable, Equatable {
        /// The key at position `positions.lowerBound` and at `positions.upperBound − 1`.
        var atLow: UInt32, atHigh: UInt32
        /// The tracked keys (equal when one is tracked).
        var first: UInt32, second: UInt32
    }

    /// Which side of a partition's cut is read again: both, or only the left or right part (the C block
    /// partition's `keep`).
    enum PartitionSide: Int32, Sendable {
        case both = 0, left = 1, right = 2
    }

    /// A segment `first..<last` of the entries that introsort has still to sort, with `depth` partitions left
    /// before it turns to heapsort.
    struct Segment: Sendable, Equatable {
        var first: Int, last: Int, depth: Int
    }

    /// `select`'s first step: the sort's first partition of the whole array when it has one (the largest single
    /// step, a full pass), returning the segments left, for `finishSelect`.
    static func beginSelect<S: ReplayEntries>(_ entries: S, count: Int, positions: Range<Int>,
                                              descending: Bool, bounds: BoundaryKeys? = nil) -> [Segment] {
        guard count > 1, !positions.isEmpty, positions.count < count else { return [] }
        let depth = 2 * (Int.bitWidth - 1 - count.leadingZeroBitCount)
        // `std::__introsort_loop`'s first iteration: partition, recurse on the right, loop on the left with the same
        // depth, which is a call on the left with that depth.
        func first<O: Comparator>(_ sorter: Sorter<O, S>) -> [Segment] {
            guard count > threshold, sorter.straddles(0, count), depth > 0 else { return [Segment(first: 0, last: count, depth: depth)] }
            let cut = sorter.partitionPivot(0, count)
            return [Segment(first: cut, last: count, depth: depth - 1), Segment(first: 0, last: cut, depth: depth - 1)]
        }
        let (lo, hi) = (positions.lowerBound, positions.upperBound)
        return descending ? first(Sorter<Descending, S>(e: entries, lo: lo, hi: hi, bounds: bounds))
                          : first(Sorter<Ascending, S>(e: entries, lo: lo, hi: hi, bounds: bounds))
    }

    /// `select`'s remaining steps on the segments `beginSelect` left.
    static func finishSelect<S: ReplayEntries>(_ entries: S, positions: Range<Int>, descending: Bool,
                                               bounds: BoundaryKeys? = nil, segments: [Segment]) {
        let (lo, hi) = (positions.lowerBound, positions.upperBound)
        for segment in segments {
            if descending {
                var sorter = Sorter<Descending, S>(e: entries, lo: lo, hi: hi, bounds: bounds)
                sorter.introsortLoop(segment.first, segment.last, segment.depth)
            } else {
                var sorter = Sorter<Ascending, S>(e: entries, lo: lo, hi: hi, bounds: bounds)
                sorter.introsortLoop(segment.first, segment.last, segment.depth)
            }
        }
    }

    /// Sets bit `i % 64` of word `i / 64` of `mask` for the index `i` of every entry at `positions`.
    static func mark(_ entries: UnsafePointer<UInt64>, positions: Range<Int>, in mask: UnsafeMutablePointer<UInt64>) {
        mark(PackedEntries(e: UnsafeMutablePointer(mutating: entries)), positions: positions, in: mask)
    }

    /// `mark` on entries of any layout.
    static func mark<S: ReplayEntries>(_ entries: S, positions: Range<Int>, in mask: UnsafeMutablePointer<UInt64>) {
        for p in positions {
            let i = entries.index(p)
            mask[i >> 6] |= 1 << UInt64(i & 63)
        }
    }

    /// Asks the kernel to back the 2 MiB-aligned interior of `bytes` bytes at `pointer` with transparent huge pages:
    /// the entries are written once per tensor, and with 4 KiB pages the first touch of a 64M-element tensor's
    /// 512 MiB costs about 131,000 page faults. Only a hint: nothing changes when the system declines it.
    static func adviseHugePages(_ pointer: UnsafeMutableRawPointer, bytes: Int) {
        #if os(Linux)
        let huge = 2 << 20
        let start = (Int(bitPattern: pointer) + huge - 1) & ~(huge - 1)
        let end = (Int(bitPattern: pointer) + bytes) & ~(huge - 1)
        if end > start, let aligned = UnsafeMutableRawPointer(bitPattern: start) {
            _ = madvise(aligned, end - start, MADV_HUGEPAGE)
        }
        #endif
    }

    /// For each byte `m`, the positions (0…7) of its set bits in increasing order, packed from the low byte up: what
    /// the block partition appends to its stopper offsets for eight examined keys whose stoppers are `m`.
    static let stopperOffsets: SendablePointer<UnsafePointer<UInt64>> = {
        let table = UnsafeMutablePointer<UInt64>.allocate(capacity: 256)
        for m in 0..<256 {
            var packed: UInt64 = 0, k: UInt64 = 0
            for t in 0..<8 where (m >> t) & 1 == 1 {
                packed |= UInt64(t) << (8 * k)
                k += 1
            }
            table[m] = packed
        }
        return SendablePointer(UnsafePointer(table))
    }()

    /// libstdc++'s `_S_threshold`: segments this short are left to the final insertion sort.
    static let threshold = 16

    /// One of PyTorch's comparators on order keys.
    protocol Comparator {
        /// Whether key `a` sorts strictly before key `b`.
        static func before(_ a: UInt32, _ b: UInt32) -> Bool
        /// `before(a, b)` as 1 or 0, computed by arithmetic (a sign bit), not by a branch.
        static func beforeBit(_ a: UInt32, _ b: UInt32) -> Int
        /// `beforeBit` in eight lanes, for keys below 2³¹ (every order key is): 1 where `a` sorts strictly before
        /// `b`, else 0, from the sign bit of a lane difference (SIMD comparisons are lane-by-lane loops in Swift).
        static func beforeBits(_ a: SIMD8<UInt32>, _ b: SIMD8<UInt32>) -> SIMD8<UInt32>
        /// Whether the left scan stops at keys at least the pivot's (else at most it); the right scan stops at the
        /// others' bound: `!before(k, p)` and `!before(p, k)`.
        static var leftStopsAtLeast: Bool { get }
    }

    /// `KeyValueCompDesc`: larger first, NaN first.
    enum Descending: Comparator {
        @inline(__always) static var leftStopsAtLeast: Bool { false }
        @inline(__always) static func before(_ a: UInt32, _ b: UInt32) -> Bool { a > b }
        @inline(__always) static func beforeBit(_ a: UInt32, _ b: UInt32) -> Int {
            Int(truncatingIfNeeded: UInt64(bitPattern: Int64(b) &- Int64(a)) >> 63)
        }
        @inline(__always) static func beforeBits(_ a: SIMD8<UInt32>, _ b: SIMD8<UInt32>) -> SIMD8<UInt32> {
            (b &- a) &>> 31
        }
    }

    /// `KeyValueCompAsc`: smaller first, NaN last.
    enum Ascending: Comparator {
        @inline(__always) static var leftStopsAtLeast: Bool { true }
        @inline(__always) static func before(_ a: UInt32, _ b: UInt32) -> Bool { a < b }
        @inline(__always) static func beforeBit(_ a: UInt32, _ b: UInt32) -> Int {
            Int(truncatingIfNeeded: UInt64(bitPattern: Int64(a) &- Int64(b)) >> 63)
        }
        @inline(__always) static func beforeBits(_ a: SIMD8<UInt32>, _ b: SIMD8<UInt32>) -> SIMD8<UInt32> {
            (a &- b) &>> 31
        }
    }

    /// libstdc++'s introsort restricted to the segments that straddle `lo` or `hi`.
    struct Sorter<O: Comparator, S: ReplayEntries> {
        /// The entries.
        let e: S
        /// The wanted positions, `lo..<hi`.
        let lo: Int, hi: Int
        /// The keys that let a partition keep one side (`keptSide`); nil: every partition keeps both.
        let bounds: BoundaryKeys?

        @inline(__always) func key(_ i: Int) -> UInt32 { e.key(i) }

        @inline(__always) func swapAt(_ a: Int, _ b: Int) { e.swapAt(a, b) }

        /// Whether the order of `first..<last` decides which elements land in `lo..<hi`.
        @inline(__always) func straddles(_ first: Int, _ last: Int) -> Bool {
            (first < lo && lo < last) || (first < hi && hi < last)
        }

        /// `std::__introsort_loop`, skipping segments wholly inside or outside `lo..<hi`.
        mutating func introsortLoop(_ first: Int, _ lastIn: Int, _ depthIn: Int) {
            var last = lastIn
            var depth = depthIn
            while last - first > TorchArgsortReplay.threshold {
                if !straddles(first, last) { return }
                if depth == 0 {
                    heapSort(first, last)  // std::__partial_sort(first, last, last)
                    return
                }
                depth -= 1
                let cut = partitionPivot(first, last)
                introsortLoop(cut, last, depth)
                last = cut
            }
            // A leaf: the final insertion sort acts on it as a stable insertion sort.
            if straddles(first, last) { insertionSort(first, last) }
        }

        /// `std::__unguarded_partition_pivot`.
        @inline(__always) func partitionPivot(_ first: Int, _ last: Int) -> Int {
            let mid = first + (last - first) / 2
            moveMedianToFirst(first, first + 1, mid, last - 1)
            let p = key(first)
            return unguardedPartition(first + 1, last, p, keep: keptSide(first, last, pivot: p))
        }

        /// Which side of the cut of `first..<last` around pivot key `p` any later step reads: the replay goes on
        /// only in a part that straddles `lo` or `hi`, and after it reads only the tagged entries at `lo..<hi`. When
        /// the segment straddles one of them, `b`, and the pivot sorts strictly after the key at `b − 1` (`bounds`
        /// give it, or one at or after it for `lo`), every element the sort puts before `b` goes left, so the cut
        /// lies at or past `b` and the right part lies past `hi` (b is `hi`: never read) or inside `lo..<hi`, which
        /// is read only for tags and holds no tracked element when every tracked key sorts before the pivot.
        /// Mirrored when the pivot sorts strictly before the key at `b`. Else (both straddled, a pivot equal to the
        /// boundary's key, no `bounds`) both sides.
        @inline(__always) func keptSide(_ first: Int, _ last: Int, pivot p: UInt32) -> PartitionSide {
            guard let bounds else { return .both }
            let low = first < lo && lo < last, high = first < hi && hi < last
            guard low != high else { return .both }
            let k = low ? bounds.atLow : bounds.atHigh
            if O.before(k, p) {
                if high || (O.before(bounds.first, p) && O.before(bounds.second, p)) { return .left }
            } else if O.before(p, k) {
                if low || (O.before(p, bounds.first) && O.before(p, bounds.second)) { return .right }
            }
            return .both
        }

        /// `std::__move_median_to_first`.
        @inline(__always) func moveMedianToFirst(_ result: Int, _ a: Int, _ b: Int, _ c: Int) {
            let ka = key(a), kb = key(b), kc = key(c)
            if O.before(ka, kb) {
                if O.before(kb, kc) { swapAt(result, b) }
                else if O.before(ka, kc) { swapAt(result, c) }
                else { swapAt(result, a) }
            } else if O.before(ka, kc) { swapAt(result, a) }
            else if O.before(kb, kc) { swapAt(result, c) }
            else { swapAt(result, b) }
        }

        /// Elements a block of the branch-free phase of `unguardedPartition` examines on each side.
        static var block: Int { 128 }

        /// `std::__unguarded_partition` around pivot key `p`: the same swaps and the same result, computed first
        /// in blocks without branches on the keys, then element by element once the unexamined part is short.
        ///
        /// Hoare's scans swap the m-th element from the left that does not sort before the pivot (a left stopper)
        /// with the m-th element from the right that the pivot does not sort before (a right stopper), for as long
        /// as the first lies left of the second, and return where the left scan stops next. So stoppers can be
        /// collected a block at a time from both ends (as in Edelkamp and Weiß's BlockQuicksort) and paired in
        /// order: while the two blocks are disjoint every pair lies in order, and swapped elements are never
        /// examined again. The scalar loop then resumes from the next unpaired stopper on each side.
        /// With `keep` one side, the block phase may leave the other side's entries stale
        /// (`ReplayEntries.partitionBlocks`).
        @inline(__always) func unguardedPartition(_ firstIn: Int, _ lastIn: Int, _ p: UInt32,
                                                  keep: PartitionSide = .both) -> Int {
            var first = firstIn, last = lastIn
            if last - first > 2 * Self.block {
                (first, last) = e.partitionBlocks(first, last, pivot: p, leftStopsAtLeast: O.leftStopsAtLeast,
                                                  keep: keep) ?? blockPartition(first, last, p)
            }
            while true {
                while O.before(key(first), p) { first += 1 }
                last -= 1
                while O.before(p, key(last)) { last -= 1 }
                if !(first < last) { return first }
                swapAt(first, last)
                first += 1
            }
        }

        /// The branch-free phase of `unguardedPartition` on `firstIn..<lastIn`: swaps stopper pairs while the
        /// unexamined middle is longer than two blocks; returns where the scalar scans resume (`first`: the next
        /// position the left scan examines; `last`: one past the next position the right scan examines).
        func blockPartition(_ firstIn: Int, _ lastIn: Int, _ p: UInt32) -> (Int, Int) {
            let b = Self.block
            return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 2 * b) { buffer -> (Int, Int) in
                let left = buffer.baseAddress!, right = left + b
                var l = firstIn, r = lastIn  // unexamined: l..<r, besides unpaired stoppers in the buffers
                var leftCount = 0, leftStart = 0, rightCount = 0, rightStart = 0
                while r - l >= 2 * b {
                    if leftCount == 0 {
                        leftStart = 0
                        leftCount = stoppers(from: l, reversed: false, pivot: p, into: left)
                    }
                    if rightCount == 0 {
                        rightStart = 0
                        rightCount = stoppers(from: r - b, reversed: true, pivot: p, into: right)
                    }
                    let pairs = min(leftCount, rightCount)
                    for t in 0..<pairs {
                        swapAt(l + Int(left[leftStart + t]), r - 1 - Int(right[rightStart + t]))
                    }
                    leftCount -= pairs
                    leftStart += pairs
                    rightCount -= pairs
                    rightStart += pairs
                    if leftCount == 0 { l += b }
                    if rightCount == 0 { r -= b }
                }
                let first = leftCount > 0 ? l + Int(left[leftStart]) : l
                let last = rightCount > 0 ? r - Int(right[rightStart]) : r
                return (first, last)
            }
        }

        /// The offsets (bytes, increasing) of a scan's stoppers among the `block` positions from `start`: the
        /// left scan's (offset j is position start + j) or, `reversed`, the right scan's (offset j is position
        /// start + block − 1 − j). By the entries' vector path when they have one, else eight keys at a time (left:
        /// lane j is offset i + j, bit j of the mask; right: lane j is offset i + 7 − j, bit 7 − j). Returns how many.
        @inline(__always) func stoppers(from start: Int, reversed: Bool, pivot p: UInt32,
                                        into out: UnsafeMutablePointer<UInt8>) -> Int {
            let b = Self.block
            if let n = e.stopperOffsets(from: start, count: b, pivot: p, atLeast: O.leftStopsAtLeast != reversed,
                                        reversed: reversed, into: out) {
                return n
            }
            let pivot = SIMD8<UInt32>(repeating: p), offsets = TorchArgsortReplay.stopperOffsets.pointer
            var count = 0, i = 0
            while i < b {
                let keys = e.keys8(reversed ? start + b - 8 - i : start + i)
                let stops = 1 &- (reversed ? O.beforeBits(pivot, keys) : O.beforeBits(keys, pivot))
                let mask = Self.laneBits(stops, multiplier: reversed ? Self.inReversedLaneOrder : Self.inLaneOrder)
                UnsafeMutableRawPointer(out + count)
                    .storeBytes(of: offsets[mask] &+ UInt64(i) &* Self.everyByte, as: UInt64.self)
                count &+= mask.nonzeroBitCount
                i += 8
            }
            return count
        }

        /// `0x01` in every byte: adds a block offset to eight packed offsets at once (none carries: all are below 128).
        static var everyByte: UInt64 { 0x0101_0101_0101_0101 }
        /// The `laneBits` multiplier taking lane j to bit j (the left scan's order: offset i + j).
        static var inLaneOrder: UInt64 { 0x0102_0408_1020_4080 }
        /// The `laneBits` multiplier taking lane j to bit 7 − j (the right scan's order: lane j is offset i + 7 − j).
        static var inReversedLaneOrder: UInt64 { 0x8040_2010_0804_0201 }

        /// Eight lanes of 0 or 1 as the bits of a byte (the lanes narrowed to bytes, then one multiply gathers a bit
        /// of each into the top byte: the partial products land on distinct bits, so nothing carries).
        @inline(__always) static func laneBits(_ lanes: SIMD8<UInt32>, multiplier: UInt64) -> Int {
            let bytes = unsafeBitCast(SIMD8<UInt8>(truncatingIfNeeded: lanes), to: UInt64.self)
            return Int(truncatingIfNeeded: (bytes &* multiplier) >> 56)
        }

        /// `std::__insertion_sort` (stable).
        func insertionSort(_ first: Int, _ last: Int) {
            if first == last { return }
            var i = first + 1
            while i < last {
                let v = e[i]
                if O.before(e.key(of: v), key(first)) {
                    var j = i
                    while j > first { e[j] = e[j - 1]; j -= 1 }
                    e[first] = v
                } else {
                    unguardedLinearInsert(i)
                }
                i += 1
            }
        }

        /// `std::__unguarded_linear_insert`.
        @inline(__always) func unguardedLinearInsert(_ lastIn: Int) {
            var last = lastIn
            let v = e[last], k = e.key(of: v)
            var next = last - 1
            while O.before(k, key(next)) {
                e[last] = e[next]
                last = next
                next -= 1
            }
            e[last] = v
        }

        /// `std::__make_heap` then `std::__sort_heap` on `first..<last`.
        func heapSort(_ first: Int, _ last: Int) {
            let len = last - first
            if len >= 2 {
                var parent = (len - 2) / 2
                while true {
                    adjustHeap(first, parent, len, e[first + parent])
                    if parent == 0 { break }
                    parent -= 1
                }
            }
            var end = last
            while end - first > 1 {
                end -= 1
                // std::__pop_heap(first, end, end)
                let v = e[end]
                e[end] = e[first]
                adjustHeap(first, 0, end - first, v)
            }
        }

        /// `std::__adjust_heap` followed by its `std::__push_heap`.
        @inline(__always) func adjustHeap(_ first: Int, _ holeIn: Int, _ len: Int, _ v: S.Entry) {
            var hole = holeIn
            let top = hole
            var second = hole
            while second < (len - 1) / 2 {
                second = 2 * (second + 1)
                if O.before(key(first + second), key(first + second - 1)) { second -= 1 }
                e[first + hole] = e[first + second]
                hole = second
            }
            if (len & 1) == 0 && second == (len - 2) / 2 {
                second = 2 * (second + 1)
                e[first + hole] = e[first + second - 1]
                hole = second - 1
            }
            let k = e.key(of: v)
            var parent = (hole - 1) / 2
            while hole > top && O.before(key(first + parent), k) {
                e[first + hole] = e[first + parent]
                hole = parent
                parent = (hole - 1) / 2
            }
            e[first + hole] = v
        }
    }
}

/// Where `TorchArgsortReplay` keeps each element's order key and index: element `i`'s entry (`subscript`), its key
/// (an f32 magnitude's bit pattern, or one that orders the same way) and its index.
protocol ReplayEntries {
    /// One element's key and index, as moved by the sort.
    associatedtype Entry
    /// The entry at position `i`.
    subscript(_ i: Int) -> Entry { get nonmutating set }
    /// The order key at position `i`.
    func key(_ i: Int) -> UInt32
    /// The element index at position `i`.
    func index(_ i: Int) -> Int
    /// Exchanges the entries at positions `a` and `b`.
    func swapAt(_ a: Int, _ b: Int)
    /// An entry's order key.
    func key(of entry: Entry) -> UInt32
    /// The order keys at positions `i ..< i + 8`, lane j holding position `i + j`'s.
    func keys8(_ i: Int) -> SIMD8<UInt32>
    /// The block partition's classification by a vector instruction set: the offsets of the entries at positions
    /// `start ..< start + count` whose key is at least (`atLeast`) or at most `pivot`, in increasing order, as bytes
    /// at `out` (room for `count`), offset j being position `start + j`, or `start + count − 1 − j` when
    /// `reversed`; returns how many, or nil when this layout or processor has no such path (the caller then
    /// classifies eight keys at a time). `count` is a multiple of 16, at most 256.
    func stopperOffsets(from start: Int, count: Int, pivot: UInt32, atLeast: Bool, reversed: Bool,
                        into out: UnsafeMutablePointer<UInt8>) -> Int?
    /// The whole branch-free phase of `Sorter.unguardedPartition` on `first ..< last` around pivot key `pivot` by a
    /// vector instruction set, with the same exchanges as `Sorter.blockPartition` (the left scan stops at keys at
    /// least the pivot's when `leftStopsAtLeast`, else at most it; the right scan at the others): returns where the
    /// scalar scans resume, or nil when this layout or processor has no such path. With `keep` `.left` or `.right`
    /// it may leave stale entries on the other side, as `mg_block_partition16` documents (only the scalar scans'
    /// positions there are made to stop them alike, and no tagged entry is left there that went to the kept side).
    func partitionBlocks(_ first: Int, _ last: Int, pivot: UInt32, leftStopsAtLeast: Bool,
                         keep: TorchArgsortReplay.PartitionSide) -> (Int, Int)?
}

extension ReplayEntries {
    @inline(__always)
    func stopperOffsets(from start: Int, count: Int, pivot: UInt32, atLeast: Bool, reversed: Bool,
                        into out: UnsafeMutablePointer<UInt8>) -> Int? { nil }
    @inline(__always)
    func partitionBlocks(_ first: Int, _ last: Int, pivot: UInt32, leftStopsAtLeast: Bool,
                         keep: TorchArgsortReplay.PartitionSide) -> (Int, Int)? { nil }
}

extension TorchArgsortReplay {
    /// Whether this processor runs `mg_stopper_offsets` (AVX-512F), asked once.
    static let vectorStoppers = mg_stopper_offsets_available() == 1
}

/// Entries as one `UInt64` each: the 32-bit order key above the 32-bit index (8 bytes per element).
struct PackedEntries: ReplayEntries {
    let e: UnsafeMutablePointer<UInt64>

    /// Bytes per element.
    static let bytesPerElement = 8

    @inline(__always) subscript(_ i: Int) -> UInt64 {
        get { e[i] }
        nonmutating set { e[i] = newValue }
    }
    @inline(__always) func key(_ i: Int) -> UInt32 { UInt32(truncatingIfNeeded: e[i] >> 32) }
    @inline(__always) func index(_ i: Int) -> Int { TorchArgsortReplay.index(e[i]) }
    @inline(__always) func swapAt(_ a: Int, _ b: Int) {
        let t = e[a]
        e[a] = e[b]
        e[b] = t
    }
    @inline(__always) func key(of entry: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: entry >> 32) }
    @inline(__always) func keys8(_ i: Int) -> SIMD8<UInt32> {
        let v = UnsafeRawPointer(e + i).loadUnaligned(as: SIMD8<UInt64>.self) &>> 32
        return SIMD8(UInt32(truncatingIfNeeded: v[0]), UInt32(truncatingIfNeeded: v[1]), UInt32(truncatingIfNeeded: v[2]),
                     UInt32(truncatingIfNeeded: v[3]), UInt32(truncatingIfNeeded: v[4]), UInt32(truncatingIfNeeded: v[5]),
                     UInt32(truncatingIfNeeded: v[6]), UInt32(truncatingIfNeeded: v[7]))
    }
}

/// Entries of bf16 magnitudes in 4 bytes each, for a cut whose boundary magnitudes are known beforehand
/// (`TaggedTieCut`): an element whose magnitude is not a tracked boundary magnitude holds its 16-bit key (its
/// magnitude's bf16 bit pattern, NaN: `0x7FC0`) and nothing else, since elements of equal key are interchangeable to
/// the sort; an element of a tracked magnitude holds a tag, `0x8000_0000 | second << 30 | ordinal` (its ordinal
/// among the tracked elements in index order, below 2^30), whose key is `first` or `second`'s magnitude. So the
/// replay moves half the bytes of `PackedEntries` and still tells where each tied element ends.
struct TaggedEntries: ReplayEntries {
    let e: UnsafeMutablePointer<UInt32>
    /// The keys of tracked elements whose tag has bit 30 clear and set.
    let first: UInt32, second: UInt32

    /// Bytes per element.
    static let bytesPerElement = 4
    /// The tag bit.
    static let tagged: UInt32 = 0x8000_0000
    /// The bit choosing `second`.
    static let secondBit: UInt32 = 0x4000_0000
    /// Most tracked elements (ordinals are below this).
    static let maxTracked = 1 << 30

    /// The key of `x`, a value of a bf16 tensor (its low 16 bits are zero).
    @inline(__always) static func bf16Key(_ x: Float) -> UInt32 {
        let key = x.bitPattern & 0x7FFF_FFFF
        return key > 0x7F80_0000 ? 0x7FC0 : key >> 16
    }

    /// `bf16Key` of eight values' bit patterns, by masks (SIMD comparisons are lane-by-lane loops).
    @inline(__always) static func bf16Keys(_ bits: SIMD8<UInt32>) -> SIMD8<UInt32> {
        let magnitude = bits & 0x7FFF_FFFF
        let nan = SIMD8<UInt32>() &- ((SIMD8(repeating: 0x7F80_0000) &- magnitude) &>> 31)
        return ((magnitude &>> 16) & ~nan) | (SIMD8(repeating: 0x7FC0) & nan)
    }

    @inline(__always) subscript(_ i: Int) -> UInt32 {
        get { e[i] }
        nonmutating set { e[i] = newValue }
    }
    @inline(__always) func key(_ i: Int) -> UInt32 { key(of: e[i]) }
    /// The ordinal of a tagged entry.
    @inline(__always) func index(_ i: Int) -> Int { Int(e[i] & (Self.secondBit - 1)) }
    @inline(__always) func swapAt(_ a: Int, _ b: Int) {
        let t = e[a]
        e[a] = e[b]
        e[b] = t
    }
    @inline(__always) func key(of entry: UInt32) -> UInt32 {
        entry < Self.tagged ? entry : (entry & Self.secondBit == 0 ? first : second)
    }
    /// `key(of:)` in lanes, by masks from the tag bits.
    @inline(__always) func keys8(_ i: Int) -> SIMD8<UInt32> {
        let v = UnsafeRawPointer(e + i).loadUnaligned(as: SIMD8<UInt32>.self)
        let isTagged = SIMD8<UInt32>() &- (v &>> 31), isSecond = SIMD8<UInt32>() &- ((v &>> 30) & 1)
        let tagKey = (SIMD8(repeating: first) & ~isSecond) | (SIMD8(repeating: second) & isSecond)
        return (v & ~isTagged) | (tagKey & isTagged)
    }
}

/// Entries of bf16 magnitudes in 4 bytes each when at most 2^17 elements are tracked (`TaggedEntries` otherwise):
/// the 15-bit key (`TaggedEntries.bf16Key`) above 17 bits holding a tracked element's ordinal (0 for the others),
/// so that the key is one shift away, as in `PackedEntries`.
struct ShiftedEntries: ReplayEntries {
    let e: UnsafeMutablePointer<UInt32>
    /// Whether the block partition classifies by `mg_stopper_offsets` (AVX-512F, sixteen entries a comparison);
    /// the default where the processor has it. Tests turn it off to compare the two paths.
    var vectorStoppers = TorchArgsortReplay.vectorStoppers

    /// Bits of the ordinal.
    static let ordinalBits: UInt32 = 17
    /// Most tracked elements.
    static let maxTracked = 1 << 17

    @inline(__always) subscript(_ i: Int) -> UInt32 {
        get { e[i] }
        nonmutating set { e[i] = newValue }
    }
    @inline(__always) func key(_ i: Int) -> UInt32 { e[i] >> Self.ordinalBits }
    /// The ordinal of a tracked element's entry.
    @inline(__always) func index(_ i: Int) -> Int { Int(e[i] & (1 << Self.ordinalBits - 1)) }
    @inline(__always) func swapAt(_ a: Int, _ b: Int) {
        let t = e[a]
        e[a] = e[b]
        e[b] = t
    }
    @inline(__always) func key(of entry: UInt32) -> UInt32 { entry >> Self.ordinalBits }
    @inline(__always) func keys8(_ i: Int) -> SIMD8<UInt32> {
        UnsafeRawPointer(e + i).loadUnaligned(as: SIMD8<UInt32>.self) &>> SIMD8(repeating: Self.ordinalBits)
    }
    /// Compares the entries themselves: a key is at least `pivot` when its entry is at least `pivot << 17`, at
    /// most `pivot` when its entry is at most `pivot << 17` with every ordinal bit set.
    @inline(__always)
    func stopperOffsets(from start: Int, count: Int, pivot: UInt32, atLeast: Bool, reversed: Bool,
                        into out: UnsafeMutablePointer<UInt8>) -> Int? {
        guard vectorStoppers else { return nil }
        let low = pivot << Self.ordinalBits
        let n = mg_stopper_offsets(e + start, Int32(count), atLeast ? low : low | (1 << Self.ordinalBits - 1),
                                   atLeast ? 1 : 0, reversed ? 1 : 0, out)
        return n < 0 ? nil : Int(n)
    }
}
