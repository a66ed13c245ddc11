/// The elements a selection keeps, by order key: every key strictly between `low` and `high`, and, of the
/// elements whose key equals a boundary key, those whose position among them (0-based, in index order) lies in
/// that boundary's window. When `low == high` both windows apply to the same elements.
struct KeepRule: Sendable {
    let low: UInt32
    let lowWindow: Range<Int>
    let high: UInt32
    let highWindow: Range<Int>
    /// How many keys lie strictly between the boundaries.
    private let span: UInt32

    init(low: UInt32, lowWindow: Range<Int>, high: UInt32, highWindow: Range<Int>) {
        self.low = low
        self.lowWindow = lowWindow
        self.high = high
        self.highWindow = highWindow
        span = high > low ? high - low - 1 : 0
    }

    /// A window keeping every boundary-equal element.
    static let everything = 0..<Int.max

    /// Every element.
    static let all = KeepRule(low: 0, lowWindow: everything, high: .max, highWindow: everything)

    /// Whether some boundary keeps only part of its equal elements, so that positions must be counted.
    var countsPositions: Bool { lowWindow != KeepRule.everything || highWindow != KeepRule.everything }

    /// Whether `low < key < high`, without a branch.
    @inline(__always)
    func isBetween(_ key: UInt32) -> Bool { key &- (low &+ 1) < span }

    /// Whether `key` is a boundary key.
    @inline(__always)
    func isBoundary(_ key: UInt32) -> Bool { key == low || key == high }

    /// All ones when `low ≤ key ≤ high` (as if every boundary-equal element were kept), else zero, without a branch.
    @inline(__always)
    func inclusiveMask(_ key: UInt32) -> UInt32 { 0 &- (key &- low <= high &- low ? 1 : 0) }
}

/// Decides element after element (in index order) from the positions reached so far among the boundary-equal ones.
struct KeepCursor {
    let rule: KeepRule
    var lowSeen: Int
    var highSeen: Int

    /// Whether the next element, of key `key`, is kept.
    @inline(__always)
    mutating func keeps(_ key: UInt32) -> Bool {
        if key == rule.low || key == rule.high { return keepsBoundary(key) }
        return rule.isBetween(key)
    }

    /// All ones when the next element, of key `key`, is kept, else zero: a mask for choosing without a branch.
    @inline(__always)
    mutating func mask(_ key: UInt32) -> UInt32 { 0 &- (keeps(key) ? 1 : 0) }

    /// How the next `lowCount` elements equal to the low boundary key and `highCount` equal to the high one fare.
    func fate(lowCount: Int, highCount: Int) -> TieFate {
        if rule.low == rule.high {
            let from = max(rule.lowWindow.lowerBound, rule.highWindow.lowerBound)
            let window = from..<max(from, min(rule.lowWindow.upperBound, rule.highWindow.upperBound))
            switch KeepCursor.overlap(lowSeen, lowCount, window) {
            case .all: return .kept
            case .none: return .dropped(low: true, high: true)
            case .some: return .mixed
            }
        }
        let low = KeepCursor.overlap(lowSeen, lowCount, rule.lowWindow)
        let high = KeepCursor.overlap(highSeen, highCount, rule.highWindow)
        if low == .some || high == .some { return .mixed }
        return low == .all && high == .all ? .kept : .dropped(low: low == .none, high: high == .none)
    }

    /// How much of positions `seen..<seen + count` a window holds (all when there are none).
    private static func overlap(_ seen: Int, _ count: Int, _ window: Range<Int>) -> Overlap {
        if count == 0 || (window.lowerBound <= seen && seen + count <= window.upperBound) { return .all }
        return (seen..<(seen + count)).overlaps(window) ? .some : .none
    }

    /// How much of a run of positions a window holds.
    private enum Overlap {
        case all, some, none
    }

    /// Whether the next element, whose key is a boundary key, is kept.
    private mutating func keepsBoundary(_ key: UInt32) -> Bool {
        var kept = true
        if key == rule.low {
            kept = rule.lowWindow.contains(lowSeen)
            lowSeen += 1
        }
        if key == rule.high {
            kept = kept && rule.highWindow.contains(highSeen)
            highSeen += 1
        }
        return kept
    }
}

/// How a run of boundary-equal elements fares: all kept, those equal to one or both boundary keys all dropped,
/// or a mix that must be decided element by element.
enum TieFate: Equatable {
    case kept
    case dropped(low: Bool, high: Bool)
    case mixed
}

/// Applies a `KeepRule` to a tensor fed chunk by chunk in index order, in parallel: `scan` counts the
/// boundary-equal elements of each fixed block of the chunk and prefix-sums them onto the counts of earlier
/// chunks, so that `cursor(at:)` can start any block of the chunk on its own. A kernel that counts them in its
/// own loop passes them to `record`, then calls `advance`, instead of scanning.
final class OrderedKeep: @unchecked Sendable {
    let rule: KeepRule
    /// Positions among the boundary-equal elements reached by the chunks scanned so far.
    private var lowSeen = 0
    private var highSeen = 0
    /// Per block of the tensor: low and high positions at the first element the current chunk has in it.
    private let starts: AccountedBuffer<Int>?
    /// The position table, allocated whatever the rule so that the memory held does not depend on the data.
    private let table: AccountedBuffer<Int>

    init(rule: KeepRule, elementCount: Int, memory: MemoryAccount) {
        self.rule = rule
        table = memory.allocate(Int.self, count: OrderedKeep.bytes(elementCount: elementCount) / 8)
        starts = rule.countsPositions ? table : nil
    }

    /// Starts again from the first chunk.
    func restart() {
        lowSeen = 0
        highSeen = 0
    }

    /// Counts the boundary-equal elements of chunk `range` (the next one in index order) per block.
    func scan<Keys: OrderKeys>(_ range: Range<Int>, _ keys: Keys, parallel: Parallel) {
        guard countsPositions, !range.isEmpty else { return }
        let low = rule.low, high = rule.high
        parallel.forEachAlignedBlock(in: range) { _, part in
            var l = 0, h = 0
            keys.forEach(part) { _, key in
                if key == low { l += 1 }
                if key == high { h += 1 }
            }
            self.record(part, low: l, high: h)
        }
        advance(range)
    }

    /// `scan` of keys that can be read eight at a time: the equal keys are counted in lanes.
    func scan<Keys: VectorOrderKeys>(_ range: Range<Int>, _ keys: Keys, parallel: Parallel) {
        guard countsPositions, !range.isEmpty else { return }
        let low = rule.low, high = rule.high
        let lowLanes = SIMD8(repeating: low), highLanes = SIMD8(repeating: high)
        parallel.forEachAlignedBlock(in: range) { _, part in
            var l = 0, h = 0
            var ls = SIMD8<UInt32>(), hs = SIMD8<UInt32>()
            keys.forEachLanes(part, lanes: { _, k in
                ls &+= LaneMask.equal(k, lowLanes) & 1
                hs &+= LaneMask.equal(k, highLanes) & 1
            }, single: { _, key in
                if key == low { l += 1 }
                if key == high { h += 1 }
            })
            self.record(part, low: l + Int(ls.wrappedSum()), high: h + Int(hs.wrappedSum()))
        }
        advance(range)
    }

    /// Whether positions among the boundary-equal elements are tracked (some boundary keeps only part of them).
    var countsPositions: Bool { starts != nil }

    /// Bytes an `OrderedKeep` over `elementCount` elements holds: two positions per block.
    static func bytes(elementCount: Int) -> Int {
        2 * max(1, (elementCount + Parallel.blockSize - 1) / Parallel.blockSize) * 8
    }

    /// Notes how many elements of `part` (within one block of the current chunk) equal the low and the high
    /// boundary key; workers may record different blocks at once. `advance` follows once every part is recorded.
    func record(_ part: Range<Int>, low: Int, high: Int) {
        guard let starts else { return }
        let b = part.lowerBound / Parallel.blockSize
        starts.pointer[2 * b] = low
        starts.pointer[2 * b + 1] = high
    }

    /// Turns the counts recorded for chunk `range` into the positions at the start of each of its blocks.
    func advance(_ range: Range<Int>) {
        guard let starts, !range.isEmpty else { return }
        for b in (range.lowerBound / Parallel.blockSize)...((range.upperBound - 1) / Parallel.blockSize) {
            let (l, h) = (starts[2 * b], starts[2 * b + 1])
            starts[2 * b] = lowSeen
            starts[2 * b + 1] = highSeen
            lowSeen += l
            highSeen += h
        }
    }

    /// After `advance`: how many elements of `part` (within one block of chunk `range`) equal each boundary key.
    func counts(of part: Range<Int>, in range: Range<Int>) -> (low: Int, high: Int) {
        guard let starts else { return (0, 0) }
        let b = part.lowerBound / Parallel.blockSize
        let last = (range.upperBound - 1) / Parallel.blockSize
        let (nextLow, nextHigh) = b == last ? (lowSeen, highSeen) : (starts[2 * b + 2], starts[2 * b + 3])
        return (nextLow - starts[2 * b], nextHigh - starts[2 * b + 1])
    }

    /// A cursor at `index`, the first element of the scanned chunk in its block.
    func cursor(at index: Int) -> KeepCursor {
        guard let starts else { return KeepCursor(rule: rule, lowSeen: 0, highSeen: 0) }
        let b = index / Parallel.blockSize
        return KeepCursor(rule: rule, lowSeen: starts[2 * b], highSeen: starts[2 * b + 1])
    }
}
