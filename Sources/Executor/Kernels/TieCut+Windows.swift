import CStoppers

extension TieCut {
    /// Where a tagged cut counts its keys once a sample of the tensor is in: around each cut rank that has a
    /// statistic to find (the first kept rank unless it is 0, the last unless it is the tensor's last), a window of
    /// keys holding the sample's ranks within 2% of the tensor (plus six standard deviations of a quantile of the
    /// sample) of it. Past the sample, only keys inside a window are counted one by one; those below the first
    /// window and between the two are counted as totals (`mg_window_count16`, thirty-two keys per comparison), those
    /// above the last not at all. A bf16 task vector has a few thousand distinct magnitudes, so a window holds a few
    /// percent of the elements and the count's increments, which took most of the gathering pass, drop to those.
    ///
    /// The statistics stay exact: `fold` puts the totals in the buckets just below each window, which makes every
    /// cumulative count inside a window exact; a rank that lands outside every window (the sample was not like the
    /// rest of the tensor) has the whole tensor counted again from its entries (`TieCut.cutStatistics`).
    struct Windows: Sendable {
        /// The first window's keys, `lo1 ... hi1`, and the second's, `lo2 ... hi2` (`hi1 < lo2 - 1`; empty when
        /// `lo2 > hi2`).
        let lo1: UInt16, hi1: UInt16, lo2: UInt16, hi2: UInt16

        /// Tables' buckets that hold the totals below the first window and between the two while counting (bf16
        /// magnitudes' keys stay below 0x8000, so these buckets are otherwise empty).
        static let belowBucket = 0xFFFE, betweenBucket = 0xFFFF

        /// Whether `gathered` elements of a tensor of `n` make the sample: tensors of at least 2^20 elements, once
        /// the larger of 2^18 elements and a sixteenth of the tensor is in.
        static func sampled(_ gathered: Int, of n: Int) -> Bool {
            n >= 1 << 20 && gathered >= max(1 << 18, n >> 4)
        }

        /// The windows of a cut keeping ascending ranks `keep` of `elementCount` elements, from the first pass's
        /// counts of the first `sample` elements (the tables of `select`'s workers, summed). Nil when no cut rank
        /// needs a statistic.
        init?(keep: Range<Int>, elementCount n: Int, sample: Int, select: StreamingSelect) {
            var ranks: [Int] = []
            if keep.lowerBound > 0 { ranks.append(keep.lowerBound) }
            if keep.upperBound < n { ranks.append(keep.upperBound - 1) }
            guard !ranks.isEmpty, sample > 0 else { return nil }
            let tables = (0..<select.workerCount).compactMap { select.firstPassTable(worker: $0) }
            // The sample's cumulative counts over the bf16 keys' buckets.
            var cumulative = [Int](repeating: 0, count: 0x8001)
            for b in 0..<0x8000 {
                var c = 0
                for t in tables { c += t[b] }
                cumulative[b + 1] = cumulative[b] + c
            }
            let counted = cumulative[0x8000]
            guard counted > 0 else { return nil }
            /// The key of sample rank `r` (clamped to the sample).
            func key(atSampleRank r: Int) -> Int {
                let rank = min(max(r, 0), counted - 1)
                var lo = 0, hi = 0x8000  // the first bucket b with cumulative[b + 1] > rank
                while lo < hi {
                    let mid = (lo + hi) / 2
                    if cumulative[mid + 1] > rank { hi = mid } else { lo = mid + 1 }
                }
                return lo
            }
            let margin = 0.02 * Double(counted) + 6 * Double(counted).squareRoot()
            var windows = ranks.map { rank -> (Int, Int) in
                let at = Double(rank) / Double(n) * Double(counted)
                return (key(atSampleRank: Int(at - margin)), key(atSampleRank: Int((at + margin).rounded(.up))))
            }.sorted { $0.0 < $1.0 }
            if windows.count == 2 && windows[0].1 + 1 >= windows[1].0 {
                windows = [(windows[0].0, max(windows[0].1, windows[1].1))]
            }
            lo1 = UInt16(windows[0].0)
            hi1 = UInt16(windows[0].1)
            (lo2, hi2) = windows.count == 2 ? (UInt16(windows[1].0), UInt16(windows[1].1)) : (0x8000, 0x7FFF)
        }

        /// Whether bucket `b` lies in a window.
        func contains(_ b: UInt32) -> Bool {
            (UInt32(lo1)...UInt32(hi1)).contains(b) || (lo2 <= hi2 && (UInt32(lo2)...UInt32(hi2)).contains(b))
        }

        /// Counts the `count` keys at `keys` into a worker's first-pass `table`: those in a window by key, the totals
        /// below and between the windows in `belowBucket` and `betweenBucket`.
        func count(_ keys: UnsafePointer<UInt16>, _ count: Int, into table: UnsafeMutablePointer<Int>) {
            let counts = UnsafeMutableRawPointer(table).assumingMemoryBound(to: Int64.self)
            if mg_window_count16(keys, Int64(count), lo1, hi1, lo2, hi2, counts, counts + Windows.belowBucket) == 0 {
                return
            }
            for i in 0..<count {
                let k = keys[i]
                if k < lo1 { table[Windows.belowBucket] += 1 }
                else if k <= hi1 { table[Int(k)] += 1 }
                else if k < lo2 { table[Windows.betweenBucket] += 1 }
                else if k <= hi2 { table[Int(k)] += 1 }
            }
        }

        /// Moves the totals from `belowBucket` and `betweenBucket` of the merged counts `table` into the buckets just
        /// below the first and the second window.
        func fold(into table: UnsafeMutablePointer<Int>) {
            let below = table[Windows.belowBucket], between = table[Windows.betweenBucket]
            table[Windows.belowBucket] = 0
            table[Windows.betweenBucket] = 0
            if lo1 > 0 { table[Int(lo1) - 1] += below }
            if lo2 <= hi2 { table[Int(lo2) - 1] += between }
        }
    }
}
