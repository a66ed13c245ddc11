import CStoppers
import IR

/// PyTorch's choice at a magnitude cut, for `magnitude_prune` with PyTorch's ties: which elements
/// `torch.argsort(|x|)` (mergekit's `sparsify.magnitude`, `magnitude_outliers`) puts at the kept ascending ranks
/// `keep`, gathered over one statistics pass and decided at its end (`decide`, which the runner calls beside the
/// other kernels of the sweep); then `test` and the `kept` mask answer, element by element, what the output sweep
/// and the norms pass keep.
///
/// Two layouts, chosen by the operand's dtype before the run (`Layout`), so the memory held never depends on data:
/// - `.tagged` (bf16 operands of at most 2^30 elements): the pass writes each element's 16-bit key into the first
///   half of a buffer of 4 bytes per element and counts the keys (`StreamingSelect`, one pass since bf16 keys have
///   16 significant bits), which gives the magnitudes at the first and last kept rank. Only the elements of a
///   boundary magnitude that straddles a cut ("tracked") can go either way; the sort is replayed and `kept` marks
///   the tracked elements that land at kept positions. Every other element is kept by its magnitude alone. With no
///   magnitude straddling a cut nothing is replayed. With at most 2^22 tracked elements the replay runs on the
///   2-byte entries themselves (`CompactEntries`: a tracked element's entry carries a tag and 14 bits of its ordinal,
///   the buffer's third quarter a byte of the rest, and the fourth quarter is never touched); the replay is bound by
///   the entries' memory traffic, so half the bytes is about half the time. With more, the entries are widened in
///   place to 4 bytes that carry the ordinals (`ShiftedEntries`, `TaggedEntries`). 4 bytes per element and two masks
///   held, against 8 and one for the packed layout.
///
///   A deferred tagged cut (`deferred`: the prune holds its operand as bf16, `HeldOperand`) stores no entries in
///   the pass, only counts the keys (and the held operand's plane stores the values); `decide` takes the 4 bytes
///   per element and the second mask only when some magnitude straddles a cut, fills the keys from the plane, and
///   gives them back at its continuation's end (`finishBytes`). So the prunes of one tensor on one thread replay
///   one after another in the same memory instead of holding every prune's entries at once: a TIES merge of three
///   models holds one set of entries where it held three.
/// - `.packed` (any other operand): 8-byte (key, index) entries (`PackedEntries`) and a replay that marks every
///   kept element in `kept`.
final class TieCut {
    /// How the entries are held.
    enum Layout {
        case packed, tagged
    }

    /// The layout for a tensor of `elementCount` elements whose operand has dtype `operand`.
    static func layout(operand: DType, elementCount n: Int) -> Layout {
        operand == .bf16 && n <= TaggedEntries.maxTracked ? .tagged : .packed
    }

    /// 64-bit words of a mask with a bit per element.
    static func maskWords(elementCount n: Int) -> Int { (n + 63) / 64 }

    /// Whether a cut over `elementCount` elements whose operand has dtype `operand`, held by its prune as a plane of
    /// dtype `held` (nil: not held), is deferred (`deferred`): the tagged layout, its operand held as bf16.
    static func defers(operand: DType, held: DType?, elementCount n: Int) -> Bool {
        held == .bf16 && layout(operand: operand, elementCount: n) == .tagged
    }

    /// Bytes a deferred cut (`defers`) over `elementCount` elements holds through the gathering pass, on `threads`
    /// threads: the `kept` mask and the keys' counts (the held operand's plane is the kernel's).
    static func deferredPassBytes(elementCount n: Int, threads: Int) -> Int {
        maskWords(elementCount: n) * 8 + StreamingSelect.tableBytes(elementCount: n, threads: threads, slots: 1)
    }

    /// Bytes a deferred cut over `elementCount` elements takes while it decides, beyond `deferredPassBytes`: 4 bytes
    /// per element for the entries and the tracked elements' mask.
    static func finishBytes(elementCount n: Int) -> Int {
        TaggedEntries.bytesPerElement * n + maskWords(elementCount: n) * 8
    }

    /// Bytes held during the gathering pass (the `kept` mask included), for a tensor of `elementCount` elements
    /// whose operand has dtype `operand`, counted on `threads` threads.
    static func passBytes(operand: DType, elementCount n: Int, threads: Int) -> Int {
        let mask = maskWords(elementCount: n) * 8
        switch layout(operand: operand, elementCount: n) {
        case .packed:
            return PackedEntries.bytesPerElement * n + mask
        case .tagged:
            return TaggedEntries.bytesPerElement * n + 2 * mask
                + StreamingSelect.tableBytes(elementCount: n, threads: threads, slots: 1)
        }
    }

    let layout: Layout
    let elementCount: Int
    /// Kept ascending ranks: `0 <= keep.lowerBound`, `keep.upperBound <= elementCount`, some kept and some not.
    let keep: Range<Int>
    /// `torch.argsort(w, descending=True)` (TIES) rather than `torch.sort(w)` (breadcrumbs' ranks).
    let descending: Bool
    /// Packed layout: every element's entry, during the pass.
    private var packed: AccountedBuffer<UInt64>?
    /// Tagged layout: every element's key or tag, during the pass: 4 bytes per element, of which the gathering
    /// pass writes the first half as 2-byte keys (`compact`).
    private var tagged: AccountedBuffer<UInt32>?
    /// Tagged layout: `tagged`'s memory as 2-byte keys, one per element, as the gathering pass writes them.
    private var compact: UnsafeMutablePointer<UInt16>?
    /// Whether a tagged cut may replay on 2-byte entries (`CompactEntries`) when few enough elements are tracked;
    /// tests turn it off to compare with the 4-byte entries.
    var compactReplay = true
    /// Tagged layout: the entries are taken, filled from the held operand's plane, and given back in `decide`
    /// (`TieCut` above); the pass only counts.
    let deferred: Bool
    /// A deferred cut: the held operand's plane (bf16 values by global element index), from the first `gather` on.
    private var plane: UnsafeMutablePointer<UInt16>?
    /// A deferred cut: where `decide` takes the entries from.
    private let memory: MemoryAccount
    /// A deferred cut: whether `decide` counts the entries it takes in `memory` (else its caller has reserved
    /// them: `ChunkKernel.finishBytes`).
    private let finishCounted: Bool
    /// Whether a compact replay's block partition runs in C where the processor can (`CompactEntries.vectorPartition`);
    /// tests turn it off to compare with the Swift block partition.
    var vectorPartition = CompactEntries.vectorPartitionAvailable
    /// Whether a tagged cut of a large tensor counts its keys in windows once a sample has shown where the cuts lie
    /// (`Windows`); tests turn it off to compare.
    var windowedCount = TieCut.windowedCountAvailable
    /// Whether this processor runs `mg_window_count16`, asked once.
    static let windowedCountAvailable = mg_window_count16_available() == 1
    /// Tagged layout: elements gathered so far in the pass.
    private var gathered = 0
    /// Tagged layout: the key windows counted since the sample, once chosen.
    private var windows: Windows?
    /// Whether the cut's statistics needed the whole tensor counted again (the windows missed a cut).
    private(set) var recounted = false
    /// Tagged layout: the kept tracked elements by ordinal, during the pass.
    private var ordinals: AccountedBuffer<UInt64>?
    /// Tagged layout: the keys' counts, during the pass.
    private var select: StreamingSelect?
    /// Bit `i % 64` of word `i / 64` for element `i`: packed, every kept element; tagged, every kept element of a
    /// tracked magnitude. Held until the kernel ends.
    let kept: AccountedBuffer<UInt64>
    /// What `kept` and the magnitudes say, once decided.
    private(set) var test = KeepTest.byMask

    /// The pass's buffers for a cut of `keep` (ascending ranks, clamped and proper) over `elementCount` elements
    /// whose operand has dtype `operand`, taken from `memory`; `deferred` (`defers` true): the caller holds the
    /// operand as bf16 and passes its plane to every `gather`, and the entries wait for `decide`, which counts them
    /// in `memory` unless `finishCounted` is false.
    init(keep: Range<Int>, descending: Bool, elementCount n: Int, operand: DType, threads: Int, memory: MemoryAccount,
         deferred: Bool = false, finishCounted: Bool = true) {
        layout = TieCut.layout(operand: operand, elementCount: n)
        elementCount = n
        self.keep = keep
        self.descending = descending
        self.memory = memory
        self.finishCounted = finishCounted
        self.deferred = deferred && layout == .tagged
        let words = TieCut.maskWords(elementCount: n)
        switch layout {
        case .packed:
            let entries = memory.allocate(UInt64.self, count: n, zeroed: false)
            TorchArgsortReplay.adviseHugePages(entries.pointer, bytes: 8 * n)
            packed = entries
        case .tagged where self.deferred:
            select = StreamingSelect(elementCount: n, threads: threads, memory: memory)
        case .tagged:
            let entries = memory.allocate(UInt32.self, count: n, zeroed: false)
            TorchArgsortReplay.adviseHugePages(entries.pointer, bytes: 4 * n)
            tagged = entries
            compact = UnsafeMutableRawPointer(entries.pointer).bindMemory(to: UInt16.self, capacity: 2 * n)
            // Cleared by `decide`, which uses it only when a magnitude straddles a cut.
            ordinals = memory.allocate(UInt64.self, count: words, zeroed: false)
            select = StreamingSelect(elementCount: n, threads: threads, memory: memory)
        }
        kept = memory.allocate(UInt64.self, count: words)
    }

    /// Adds elements `range` of `x` (indexed by global element index) to the pass, and stores them to `filling`'s
    /// plane when given (the prune holds its operand; a deferred cut's must be a bf16 one) in the same loop.
    func gather(_ x: UnsafePointer<Float>, _ range: Range<Int>, parallel: Parallel, filling: HeldOperand.Filling? = nil) {
        let x = SendablePointer(x)
        if let packed {
            let e = SendablePointer(packed.pointer)
            parallel.forEachAlignedBlock(in: range) { _, part in
                let x = x.pointer, e = e.pointer
                for i in part { e[i] = TorchArgsortReplay.entry(x[i], index: i) }
                filling?.store(x, part)
            }
        } else if let select, deferred ? filling != nil : compact != nil {
            // One sweep over the chunk stores the keys (a deferred cut's only to a tile on the stack) and the values
            // (held as bf16: the tagged layout is the bf16 operand's, and a held operand is of the merge dtype), and
            // counts them: all of them until the sample is in, then only those in the windows.
            if deferred { plane = filling?.plane.pointer }
            let keys = GatheredKeys(x: x.pointer, e: compact, plane: filling?.plane.pointer)
            if let windows {
                let tables = (0..<select.workerCount).map { SendablePointer(select.firstPassTable(worker: $0)) }
                parallel.forEachAlignedBlock(in: range, workers: select.workerCount) { w, part in
                    guard let table = tables[w].pointer else { return keys.store(part) }
                    keys.forEachTile(part) { tile, count in windows.count(tile, count, into: table) }
                }
            } else {
                select.count(range, keys, parallel: parallel)
            }
            gathered += range.count
            if windows == nil, windowedCount, Windows.sampled(gathered, of: elementCount) {
                windows = Windows(keep: keep, elementCount: elementCount, sample: gathered, select: select)
            }
        }
    }

    /// The statistics of the cut's first and last kept ranks from the pass's counts. Without windows, the counts'.
    /// With windows, the counts below and between them are folded into the buckets just below each window, so that
    /// a rank inside a window has its exact statistic; a rank outside one (the sample misled) has every key counted
    /// again (`key(i)`: from the entries, or a deferred cut's plane). A rank at an end of the tensor (keep from rank 0, or up to the last) stands for every
    /// key beyond it: key 0 or 0x7FFF, which bound every bf16 magnitude's key.
    private func cutStatistics(_ select: StreamingSelect, key: (Int) -> UInt16) -> [StreamingSelect.Statistic] {
        let ranks = [keep.lowerBound, keep.upperBound - 1]
        guard let windows else { return select.statisticsFromFirstPass(ranks: ranks) }
        select.withMergedCounts { windows.fold(into: $0) }
        var stats = select.statisticsFromFirstPass(ranks: ranks, release: false)
        let n = elementCount
        if (keep.lowerBound > 0 && !windows.contains(stats[0].key >> 16))
            || (keep.upperBound < n && !windows.contains(stats[1].key >> 16)) {
            recounted = true
            select.withMergedCounts { table in
                table.update(repeating: 0, count: StreamingSelect.buckets)
                for i in 0..<n { table[Int(key(i))] += 1 }
            }
            stats = select.statisticsFromFirstPass(ranks: ranks, release: false)
        }
        select.releaseFirstPass()
        if keep.lowerBound == 0 { stats[0] = StreamingSelect.Statistic(key: 0, countLess: 0, countEqual: 0) }
        if keep.upperBound == n { stats[1] = StreamingSelect.Statistic(key: 0x7FFF << 16, countLess: n, countEqual: 0) }
        return stats
    }

    /// Decides the cut at the end of the pass: replays PyTorch's sort where it matters and fills `kept`, the sort's
    /// first partition now and the rest in the returned continuation (nil when nothing is left to do). Allocates
    /// nothing (the runner calls it, and the continuation, concurrently for the observers of a sweep) but a
    /// deferred cut's entries and tracked mask (`finishBytes`), taken only when a magnitude straddles a cut and
    /// given back by the continuation's end; frees the selection's tables.
    func decide() -> PassContinuation? {
        let n = elementCount
        let descending = self.descending
        let positions = descending ? (n - keep.upperBound)..<(n - keep.lowerBound) : keep
        if let packed {
            let e = PackedEntries(e: packed.pointer)
            let rest = TorchArgsortReplay.beginSelect(e, count: n, positions: positions, descending: descending)
            test = .byMask
            let kept = self.kept
            return PassContinuation {
                TorchArgsortReplay.finishSelect(e, positions: positions, descending: descending, segments: rest)
                TorchArgsortReplay.mark(e, positions: positions, in: kept.pointer)
            }
        }
        guard let select else { return nil }
        select.finishFirstPass()
        let stats: [StreamingSelect.Statistic]
        if deferred {
            guard let plane else { return nil }
            stats = cutStatistics(select) { TieCut.key(plane[$0]) }
        } else {
            guard let compact else { return nil }
            stats = cutStatistics(select) { compact[$0] }
        }
        self.select = nil
        guard stats.count == 2 else { return nil }
        let low = stats[0].key >> 16, high = stats[1].key >> 16
        // A boundary magnitude straddles a cut when some of its elements rank on each side of it.
        let straddlesLow = stats[0].countLess < keep.lowerBound
        let straddlesHigh = stats[1].countLess + stats[1].countEqual > keep.upperBound
        var tracked: [UInt32] = [], trackedCount = 0
        if straddlesLow {
            tracked.append(low)
            trackedCount += stats[0].countEqual
        }
        if straddlesHigh && !tracked.contains(high) {
            tracked.append(high)
            trackedCount += stats[1].countEqual
        }
        test = KeepTest(byMask: false, low: low, high: high, first: tracked.first ?? KeepTest.none,
                        second: tracked.count > 1 ? tracked[1] : KeepTest.none)
        guard let first = tracked.first else { return nil }
        // A deferred cut's keys are filled from its plane (`keysFrom`) in the pass that tags them (compact replay), or
        // all at once before the entries widen.
        let keysFrom = deferred ? plane : nil
        if keysFrom != nil { takeEntries() }
        guard let tagged, let compact, let ordinals else { return nil }
        let second = tracked.count > 1 ? tracked[1] : first
        let bits = kept.pointer, kinds = ordinals.pointer
        kinds.initialize(repeating: 0, count: TieCut.maskWords(elementCount: n))
        let markKept: () -> Void
        if compactReplay && trackedCount <= CompactEntries.maxTracked {
            // Tags the tracked elements in index order, the high bits of their ordinals in the buffer's third quarter,
            // and marks them all in `kept` (a deferred cut's keys filled from its plane in the same pass)...
            let highBits = (UnsafeMutableRawPointer(tagged.pointer) + 2 * n).bindMemory(to: UInt8.self, capacity: n)
            let firstKey = UInt16(first), secondKey = UInt16(second)
            // Sixteen at a time with AVX2 where the processor has it (`testTrackedTagsAreTheDefinedTags` compares both
            // forms with the definition).
            _ = mg_tag_tracked16(keysFrom.map { UnsafePointer($0) }, compact, highBits, bits, 0, Int64(n), firstKey,
                                 secondKey, 0, 1)
            let entries = CompactEntries(e: compact, high: highBits, first: firstKey, second: secondKey,
                                         vectorPartition: vectorPartition)
            // Only the tags at `positions` are read below, so a partition may write one side of its cut. The keys
            // at the first and last wanted positions: ascending, those of the first and last kept ranks; descending,
            // the last and first.
            let bounds = TorchArgsortReplay.BoundaryKeys(atLow: descending ? high : low,
                                                         atHigh: descending ? low : high, first: first, second: second)
            let rest = TorchArgsortReplay.beginSelect(entries, count: n, positions: positions, descending: descending,
                                                      bounds: bounds)
            markKept = {
                TorchArgsortReplay.finishSelect(entries, positions: positions, descending: descending, bounds: bounds,
                                                segments: rest)
                // ...marks the ordinals that land at kept positions...
                TieCut.forEachTagged(compact, positions) { p in
                    let o = entries.index(p)
                    kinds[o >> 6] |= 1 << UInt64(o & 63)
                }
            }
        } else {
            if let keysFrom { TieCut.fillKeys(compact, from: keysFrom, 0..<n) }
            markKept = widenedReplay(first: first, second: second, tracked: trackedCount, positions: positions)
        }
        return PassContinuation { [self] in
            markKept()
            // ...and unmarks the tracked elements whose ordinal did not.
            var j = 0
            for w in 0..<TieCut.maskWords(elementCount: n) {
                var word = bits[w], rest = word
                while rest != 0 {
                    let t = rest.trailingZeroBitCount
                    if (kinds[j >> 6] >> UInt64(j & 63)) & 1 == 0 { word &= ~(1 << UInt64(t)) }
                    j += 1
                    rest &= rest - 1
                }
                bits[w] = word
            }
            if deferred { endPass() }
        }
    }

    /// A deferred cut's entries and tracked mask, taken now; `decide` fills the keys from the held operand's plane
    /// (`fillKeys`).
    private func takeEntries() {
        let n = elementCount
        let entries = memory.allocate(UInt32.self, count: n, zeroed: false, counted: finishCounted)
        tagged = entries
        compact = UnsafeMutableRawPointer(entries.pointer).bindMemory(to: UInt16.self, capacity: 2 * n)
        ordinals = memory.allocate(UInt64.self, count: TieCut.maskWords(elementCount: n), zeroed: false,
                                   counted: finishCounted)
    }

    /// Stores into `e[i]` the key (`TaggedEntries.bf16Key`) of each held bf16 value `plane[i]` of `range`.
    static func fillKeys(_ e: UnsafeMutablePointer<UInt16>, from plane: UnsafePointer<UInt16>, _ range: Range<Int>) {
        // A plain loop, which the compiler vectorizes (generic SIMD32 arithmetic on UInt16 went lane by lane).
        for i in range { e[i] = TieCut.key(plane[i]) }
    }

    /// The bf16 key (`TaggedEntries.bf16Key`) of the bf16 value of bits `bits`.
    @inline(__always)
    static func key(_ bits: UInt16) -> UInt16 {
        let magnitude = bits & 0x7FFF
        return magnitude > 0x7F80 ? 0x7FC0 : magnitude
    }

    /// `decide` on 4-byte entries, when too many elements are tracked for `CompactEntries` (or tests ask): widens the
    /// 2-byte keys in place, puts the tracked elements' ordinals (in index order) into their entries, marks them all
    /// in `kept`, replays the sort's first partition and returns the rest, which marks in `ordinals` the ordinals
    /// that land at `positions`.
    private func widenedReplay(first: UInt32, second: UInt32, tracked trackedCount: Int,
                               positions: Range<Int>) -> () -> Void {
        guard let tagged, let compact, let ordinals else { return {} }
        let n = elementCount, descending = self.descending
        TieCut.widen(compact, count: n)
        let e = tagged.pointer, bits = kept.pointer, kinds = ordinals.pointer
        let shift = ShiftedEntries.ordinalBits
        var ordinal: UInt32 = 0
        if trackedCount <= ShiftedEntries.maxTracked {
            // Puts the tracked elements' ordinals (in index order) below their keys and marks them all in `kept`...
            TieCut.forEachTracked(e, 0..<n, first << shift, second << shift) { i in
                e[i] |= ordinal
                ordinal += 1
                bits[i >> 6] |= 1 << UInt64(i & 63)
            }
            let entries = ShiftedEntries(e: e)
            let rest = TorchArgsortReplay.beginSelect(entries, count: n, positions: positions, descending: descending)
            return {
                TorchArgsortReplay.finishSelect(entries, positions: positions, descending: descending, segments: rest)
                // ...marks the ordinals that land at kept positions...
                TieCut.forEachTracked(e, positions, first << shift, second << shift) { p in
                    let o = entries.index(p)
                    kinds[o >> 6] |= 1 << UInt64(o & 63)
                }
            }
        } else {
            // Tags the tracked elements in index order and marks them all in `kept`...
            for i in 0..<n {
                let key = e[i] >> shift
                if key == first || key == second {
                    e[i] = TaggedEntries.tagged | (key == first ? 0 : TaggedEntries.secondBit) | ordinal
                    ordinal += 1
                    bits[i >> 6] |= 1 << UInt64(i & 63)
                } else {
                    e[i] = key
                }
            }
            let entries = TaggedEntries(e: e, first: first, second: second)
            let rest = TorchArgsortReplay.beginSelect(entries, count: n, positions: positions, descending: descending)
            return {
                TorchArgsortReplay.finishSelect(entries, positions: positions, descending: descending, segments: rest)
                // ...marks the ordinals that land at kept positions...
                for p in positions where e[p] >= TaggedEntries.tagged {
                    let o = entries.index(p)
                    kinds[o >> 6] |= 1 << UInt64(o & 63)
                }
            }
        }
    }

    /// Widens `count` 2-byte keys at `e` in place into the shifted 4-byte entries (`ShiftedEntries`, ordinal bits
    /// clear) of the same memory, from the end down so that no key is overwritten before it is read.
    static func widen(_ e: UnsafeMutablePointer<UInt16>, count n: Int) {
        let raw = UnsafeMutableRawPointer(e)
        var i = n
        while i >= 8 {
            i -= 8
            let keys = raw.loadUnaligned(fromByteOffset: 2 * i, as: SIMD8<UInt16>.self)
            raw.storeBytes(of: SIMD8<UInt32>(truncatingIfNeeded: keys) &<< SIMD8(repeating: ShiftedEntries.ordinalBits),
                           toByteOffset: 4 * i, as: SIMD8<UInt32>.self)
        }
        while i > 0 {
            i -= 1
            let key = raw.load(fromByteOffset: 2 * i, as: UInt16.self)
            raw.storeBytes(of: UInt32(key) << ShiftedEntries.ordinalBits, toByteOffset: 4 * i, as: UInt32.self)
        }
        _ = raw.bindMemory(to: UInt32.self, capacity: n)
    }

    /// Calls `body(i)` in increasing order for each `i` of `range` whose 2-byte entry `e[i]` is `first` or
    /// `second`, sixteen entries tested at a time (as four 64-bit words).
    @inline(__always)
    static func forEachTracked(_ e: UnsafeMutablePointer<UInt16>, _ range: Range<Int>, _ first: UInt16,
                               _ second: UInt16, _ body: (Int) -> Void) {
        let f = UInt64(first) &* TieCut.everyLane, s = UInt64(second) &* TieCut.everyLane
        forEachEntry(e, range, where: { w in TieCut.anyZeroLane(w ^ f) | TieCut.anyZeroLane(w ^ s) }) { k in
            if e[k] == first || e[k] == second { body(k) }
        }
    }

    /// Calls `body(i)` in increasing order for each `i` of `range` whose 2-byte entry `e[i]` is tagged
    /// (`CompactEntries.tagged`), sixteen entries tested at a time.
    @inline(__always)
    static func forEachTagged(_ e: UnsafeMutablePointer<UInt16>, _ range: Range<Int>, _ body: (Int) -> Void) {
        forEachEntry(e, range, where: { w in w & (UInt64(CompactEntries.tagged) &* TieCut.everyLane) }) { k in
            if e[k] >= CompactEntries.tagged { body(k) }
        }
    }

    /// `0x0001` in each 16-bit lane of a word.
    static var everyLane: UInt64 { 0x0001_0001_0001_0001 }

    /// Nonzero when some 16-bit lane of `w` is zero (the high bit of such a lane set: the classic SWAR test, exact
    /// for whether any lane is zero).
    @inline(__always)
    static func anyZeroLane(_ w: UInt64) -> UInt64 {
        (w &- everyLane) & ~w & (0x8000 &* everyLane)
    }

    /// Calls `visit(k)` for each `k` of `range`, in increasing order, within the groups of sixteen entries (four
    /// 64-bit words, from `range`'s start) for which `test` of some word is nonzero, and for each of the last
    /// entries that do not fill a group.
    @inline(__always)
    private static func forEachEntry(_ e: UnsafeMutablePointer<UInt16>, _ range: Range<Int>,
                                     where test: (UInt64) -> UInt64, _ visit: (Int) -> Void) {
        let raw = UnsafeRawPointer(e)
        var i = range.lowerBound
        while i + 16 <= range.upperBound {
            let w0 = raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt64.self)
            let w1 = raw.loadUnaligned(fromByteOffset: 2 * i + 8, as: UInt64.self)
            let w2 = raw.loadUnaligned(fromByteOffset: 2 * i + 16, as: UInt64.self)
            let w3 = raw.loadUnaligned(fromByteOffset: 2 * i + 24, as: UInt64.self)
            if test(w0) | test(w1) | test(w2) | test(w3) != 0 {
                for k in i..<(i + 16) { visit(k) }
            }
            i += 16
        }
        while i < range.upperBound {
            visit(i)
            i += 1
        }
    }

    /// Calls `body(i)` in increasing order for each `i` of `range` whose entry `e[i]` (a shifted key, its ordinal
    /// bits clear) has the key bits of `first` or `second` (shifted keys), sixteen entries compared at a time.
    @inline(__always)
    static func forEachTracked(_ e: UnsafeMutablePointer<UInt32>, _ range: Range<Int>, _ first: UInt32,
                               _ second: UInt32, _ body: (Int) -> Void) {
        let keyMask: UInt32 = ~(1 << ShiftedEntries.ordinalBits - 1)
        let vf = SIMD16<UInt32>(repeating: first), vs = SIMD16<UInt32>(repeating: second)
        let vm = SIMD16<UInt32>(repeating: keyMask)
        let raw = UnsafeRawPointer(e)
        var i = range.lowerBound
        while i + 16 <= range.upperBound {
            let v = raw.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<UInt32>.self) & vm
            if any(v .== vf .| v .== vs) {
                for k in i..<(i + 16) where e[k] & keyMask == first || e[k] & keyMask == second { body(k) }
            }
            i += 16
        }
        while i < range.upperBound {
            if e[i] & keyMask == first || e[i] & keyMask == second { body(i) }
            i += 1
        }
    }

    /// Frees what only the pass needed; `kept` stays.
    func endPass() {
        packed = nil
        tagged = nil
        compact = nil
        ordinals = nil
        select = nil
    }
}

/// Whether an element is kept at a decided `TieCut`: by its bit in the mask alone (packed), or by its magnitude
/// when that lies in `low...high` and is neither tracked magnitude, by its bit when it is one (tagged). Keys are
/// bf16 keys (`TaggedEntries.bf16Key`).
struct KeepTest: Sendable {
    var byMask: Bool
    var low: UInt32, high: UInt32
    var first: UInt32, second: UInt32

    /// No tracked magnitude (above every key).
    static let none = UInt32.max
    /// Every element by its bit.
    static let byMask = KeepTest(byMask: true, low: 0, high: 0, first: none, second: none)

    /// For each byte value, the eight lanes' masks it stands for (bit `l` set: lane `l` all ones, else zero).
    static let byteMasks: [SIMD8<UInt32>] = (0..<256).map { byte in
        SIMD8<UInt32>((0..<8).map { (byte >> $0) & 1 == 1 ? UInt32.max : 0 })
    }

    /// All ones when element `i` of value `x` is kept, else zero.
    @inline(__always)
    func mask(_ x: Float, _ bits: UnsafePointer<UInt64>, _ i: Int) -> UInt32 {
        mask(x, word: bits[i >> 6], i)
    }

    /// `mask(x, bits, i)` given `word`, the mask word holding element `i`'s bit.
    @inline(__always)
    func mask(_ x: Float, word: UInt64, _ i: Int) -> UInt32 {
        let bit = 0 &- UInt32(truncatingIfNeeded: (word >> UInt64(i & 63)) & 1)
        if byMask { return bit }
        let key = TaggedEntries.bf16Key(x)
        let inRange: UInt32 = key &- low <= high &- low ? .max : 0
        let tracked: UInt32 = key == first || key == second ? .max : 0
        return inRange & (bit | ~tracked)
    }

    /// Whether `applyBF16` masks in C here (`mg_keep_bf16`, AVX-512F), asked once.
    static let keepsInC = mg_keep_bf16_available() == 1

    /// `apply` on a held bf16 plane (`plane`: bf16 bit patterns by global element index): the sixteens of `range`
    /// (from the first index that is a multiple of 16) in C where the processor can (`mg_keep_bf16`: the decision
    /// in mask registers, a third of the instructions), the rest by `apply`. The same bits either way.
    func applyBF16(_ plane: UnsafePointer<UInt16>, _ bits: UnsafePointer<UInt64>, _ range: Range<Int>,
                   into out: UnsafeMutablePointer<Float>) {
        let x = HeldOperand.Plane<BF16Rounding>(p: plane)
        let first16 = min(range.upperBound, (range.lowerBound + 15) & ~15)
        let end16 = max(first16, range.upperBound & ~15)
        guard KeepTest.keepsInC, end16 > first16,
              mg_keep_bf16(plane, bits, byMask ? 1 : 0, low, high, first, second, Int64(first16),
                           Int64(end16 - first16), out + first16) == 0 else {
            return apply(x, bits, range, into: out)
        }
        if first16 > range.lowerBound { apply(x, bits, range.lowerBound..<first16, into: out) }
        if range.upperBound > end16 { apply(x, bits, end16..<range.upperBound, into: out) }
    }

    /// Writes `x[i]` where kept and +0 elsewhere to `out[i]` for every `i` of `range` (both indexed by global
    /// element index; `x` f32 values or a held plane), a mask word at a time so that the compiler vectorizes the
    /// inner loop.
    @inline(__always)
    func apply<X: MaskedOperand>(_ x: X, _ bits: UnsafePointer<UInt64>, _ range: Range<Int>,
                                 into out: UnsafeMutablePointer<Float>) {
        KeepTest.byteMasks.withUnsafeBufferPointer { masks in
            var i = range.lowerBound
            while i < range.upperBound {
                let end = min(range.upperBound, (i >> 6 + 1) << 6)
                let word = bits[i >> 6]
                if byMask, i & 63 == 0, end == i + 64 {
                    // A whole word: eight lanes at a time, each byte's lane masks from the table.
                    for g in 0..<8 {
                        let at = i + 8 * g
                        let lanes = masks[Int((word >> UInt64(8 * g)) & 0xFF)]
                        let v = x.bits(at)
                        UnsafeMutableRawPointer(out + at).storeBytes(of: v & lanes, as: SIMD8<UInt32>.self)
                    }
                } else if i & 63 == 0, end == i + 64 {
                    // A whole word, eight lanes at a time: the range test and the tracked keys by masks.
                    let low = SIMD8(repeating: self.low), high = SIMD8(repeating: self.high)
                    let first = SIMD8(repeating: self.first), second = SIMD8(repeating: self.second)
                    for g in 0..<8 {
                        let at = i + 8 * g
                        let bit = masks[Int((word >> UInt64(8 * g)) & 0xFF)]
                        let v = x.bits(at)
                        let key = TaggedEntries.bf16Keys(v)
                        // Keys are below 2¹⁵, so the differences' sign bits compare them.
                        let inRange = (((key &- low) | (high &- key)) &>> 31) &- 1
                        let tracked = LaneMask.equal(key, first) | LaneMask.equal(key, second)
                        UnsafeMutableRawPointer(out + at).storeBytes(of: v & inRange & (bit | ~tracked), as: SIMD8<UInt32>.self)
                    }
                } else if byMask {
                    for k in i..<end {
                        let bit = 0 &- UInt32(truncatingIfNeeded: (word >> UInt64(k & 63)) & 1)
                        out[k] = Float(bitPattern: x[k].bitPattern & bit)
                    }
                } else {
                    for k in i..<end { out[k] = Float(bitPattern: x[k].bitPattern & mask(x[k], word: word, k)) }
                }
                i = end
            }
        }
    }
}

/// The keys of a chunk of bf16 values as a tagged `TieCut` counts them (the bf16 key in the high half of an f32
/// order key), each stored as a 2-byte entry (`CompactEntries`, not flagged) as it is read; a deferred cut's
/// (`e` nil) only in a tile on the stack, long enough to be counted.
private struct GatheredKeys: OrderKeys, @unchecked Sendable {
    /// The values, by global element index.
    let x: UnsafePointer<Float>
    /// The entries, by global element index; nil for a deferred cut, which keeps none.
    let e: UnsafeMutablePointer<UInt16>?
    /// Where the values are held as bf16 (a held operand's plane), by global element index, if they are.
    let plane: UnsafeMutablePointer<UInt16>?

    /// Elements whose keys `store` computes and stores before `body` sees them, read back from the entries (or
    /// the tile), in a scalar loop of their own: the count's increments then do not wait behind the key arithmetic.
    static let tile = 256
    /// Keys in a deferred cut's tile for the windowed count (`forEachTile`), 8 KiB on the stack.
    static let countTile = 4096

    /// Stores the entries, if kept, and the plane's values of `range` without counting them.
    @inline(__always)
    func store(_ range: Range<Int>) {
        if let e { store(range, keys: e + range.lowerBound) } else { store(range, keys: nil) }
    }

    /// Stores the plane's values of `range` and, at `keys` (the key of element `range.lowerBound` first), their keys.
    @inline(__always)
    func store(_ range: Range<Int>, keys: UnsafeMutablePointer<UInt16>?) {
        let origin = range.lowerBound
        var i = origin
        while i + 8 <= range.upperBound {
            let v = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<UInt32>.self)
            if let plane {
                UnsafeMutableRawPointer(plane + i).storeBytes(of: BF16Rounding.pack(unsafeBitCast(v, to: SIMD8<Float>.self)),
                                                              as: SIMD8<UInt16>.self)
            }
            if let keys {
                UnsafeMutableRawPointer(keys + (i - origin)).storeBytes(
                    of: SIMD8<UInt16>(truncatingIfNeeded: TaggedEntries.bf16Keys(v)), as: SIMD8<UInt16>.self)
            }
            i += 8
        }
        while i < range.upperBound {
            plane?[i] = UInt16(truncatingIfNeeded: x[i].bitPattern >> 16)
            keys?[i - origin] = UInt16(truncatingIfNeeded: TaggedEntries.bf16Key(x[i]))
            i += 1
        }
    }

    /// Stores `range` as `store` does, a tile at a time, and calls `body(keys, count)` with each tile's keys: the
    /// entries themselves when kept, else a tile of `countTile` keys on the stack.
    @inline(__always)
    func forEachTile(_ range: Range<Int>, _ body: (UnsafePointer<UInt16>, Int) -> Void) {
        if let e {
            store(range, keys: e + range.lowerBound)
            body(e + range.lowerBound, range.count)
            return
        }
        withUnsafeTemporaryAllocation(of: UInt16.self, capacity: Self.countTile) { tile in
            guard let t = tile.baseAddress else { return }
            var start = range.lowerBound
            while start < range.upperBound {
                let end = min(range.upperBound, start + Self.countTile)
                store(start..<end, keys: t)
                body(t, end - start)
                start = end
            }
        }
    }

    @inline(__always)
    func forEach(_ range: Range<Int>, _ body: (Int, UInt32) -> Void) {
        withUnsafeTemporaryAllocation(of: UInt16.self, capacity: Self.tile) { tile in
            guard let t = tile.baseAddress else { return }
            var start = range.lowerBound
            while start < range.upperBound {
                let end = min(range.upperBound, start + Self.tile)
                let keys = e.map { $0 + start } ?? t
                store(start..<end, keys: keys)
                for i in start..<end { body(i, UInt32(keys[i - start]) << 16) }
                start = end
            }
        }
    }
}
