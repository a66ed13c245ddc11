import IR

/// PyTorch's CPU reductions over bf16 and f16 tensors (values given here as f32), in the order its AVX2 kernels
/// accumulate in f32, so that a result rounded to the dtype has mergekit's bits. Each was measured against torch
/// 2.15 (`ATEN_CPU_CAPABILITY=avx2`, one thread), in bf16 and f16: norms of 50,000 rows of 1,003 elements and of
/// 300 rows of random lengths up to 3,000, sums of 20,000 rows each of 64, 1,003 and 2,048 elements and of 400 rows
/// of random lengths up to 5,000, column sums and norms of 64 to 5,000 rows: no result differed, where f64 sums
/// rounded once differed in up to 45 rows of 50,000.
enum TorchHalfReductions {
    /// Terms of one stream computed at once (in parallel) before they are fed in order (`inTiles`): 2¹⁸.
    static let tile = 1 << 18

    /// `tile`, or fewer for a smaller tensor of `n` elements.
    static func tile(elementCount n: Int) -> Int { min(n, tile) }

    /// `torch.norm(x, dim=-1)` of a contiguous row, fed in order in pieces of any size: the f32 sum of squares
    /// (`sumOfSquares`; squares of bf16/f16 values are exact in f32). bf16 takes `norm_kernel_tensor_iterator_impl`'s
    /// last-dimension path: sixteen elements a step, the first eight then the last eight added into eight lane
    /// accumulators, the lanes folded left, then the other `length mod 16` elements one by one. f16 (and any
    /// strided vector, `columns`) takes `binary_kernel_reduce`: one accumulator in index order.
    struct NormTwo: InOrderReduction {
        /// Elements in the row.
        let length: Int
        private let vectorEnd: Int
        private var lanes = SIMD8<Float>()
        private var serial: Float = 0
        private var seen = 0
        private var pending = [Float]()

        /// A row of `length` elements of `dtype` (bf16 takes the vector path; anything else adds in order).
        init(length: Int, dtype: DType) {
            self.length = length
            vectorEnd = dtype == .bf16 ? length - length % 16 : 0
        }

        /// Adds the row's next `count` elements, `x[0 ..< count]`.
        mutating func add(_ x: UnsafePointer<Float>, count: Int) {
            var i = 0
            // Whole steps of sixteen up to `vectorEnd`; a step split between pieces waits in `pending`.
            while i < count, seen < vectorEnd {
                if pending.isEmpty {
                    var acc = lanes
                    while i + 16 <= count, seen < vectorEnd {
                        let lo = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
                        let hi = UnsafeRawPointer(x + i + 8).loadUnaligned(as: SIMD8<Float>.self)
                        acc += lo * lo
                        acc += hi * hi
                        i += 16; seen += 16
                    }
                    lanes = acc
                    if i == count || seen == vectorEnd { break }
                }
                pending.append(x[i])
                i += 1; seen += 1
                if pending.count == 16 {
                    let (lo, hi) = pending.withUnsafeBufferPointer { p in
                        (UnsafeRawPointer(p.baseAddress!).loadUnaligned(as: SIMD8<Float>.self),
                         UnsafeRawPointer(p.baseAddress! + 8).loadUnaligned(as: SIMD8<Float>.self))
                    }
                    lanes += lo * lo
                    lanes += hi * hi
                    pending.removeAll(keepingCapacity: true)
                }
            }
            if seen == vectorEnd, !folded {
                // The lanes fold left once, when the last whole step is in.
                serial = lanes[0]
                for l in 1..<8 { serial = serial + lanes[l] }
                folded = true
            }
            while i < count {
                serial += x[i] * x[i]
                i += 1; seen += 1
            }
        }

        private var folded = false

        /// The f32 sum of squares, once all `length` elements were added.
        var sumOfSquares: Float { serial }
    }

    /// `torch.sum(x, dim=-1)` of a contiguous bf16/f16 row (`cascade_sum`), fed in order in pieces of any size. A
    /// row of at least 16 elements: each sixteen in turn become one eight-lane item (`InnerSumCastLoadPolicy`: the
    /// first eight plus the last eight), the items go through ATen's four-level cascade (`StreamingCascade`), and
    /// the total is the other `length mod 16` elements added in order, then the eight lanes. A shorter row: the
    /// scalar cascade (`TorchFloat32.cascade`, width 1).
    struct RowSum: InOrderReduction {
        let length: Int
        private var cascade: StreamingCascade
        private var pending = [Float]()
        private var tail: Float = 0
        private var seen = 0
        private let vectorEnd: Int

        init(length: Int) {
            self.length = length
            vectorEnd = length >= 16 ? length - length % 16 : 0
            cascade = StreamingCascade(items: vectorEnd / 16)
        }

        /// Adds the row's next `count` elements, `x[0 ..< count]`.
        mutating func add(_ x: UnsafePointer<Float>, count: Int) {
            var i = 0
            if length < 16 {
                pending.append(contentsOf: UnsafeBufferPointer(start: x, count: count))
                seen += count
                return
            }
            while i < count, seen < vectorEnd {
                if pending.isEmpty {
                    while i + 16 <= count, seen < vectorEnd {
                        let lo = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
                        let hi = UnsafeRawPointer(x + i + 8).loadUnaligned(as: SIMD8<Float>.self)
                        cascade.add(lo + hi)
                        i += 16; seen += 16
                    }
                    if i == count || seen == vectorEnd { break }
                }
                pending.append(x[i])
                i += 1; seen += 1
                if pending.count == 16 {
                    let item = pending.withUnsafeBufferPointer { p in
                        UnsafeRawPointer(p.baseAddress!).loadUnaligned(as: SIMD8<Float>.self)
                            + UnsafeRawPointer(p.baseAddress! + 8).loadUnaligned(as: SIMD8<Float>.self)
                    }
                    cascade.add(item)
                    pending.removeAll(keepingCapacity: true)
                }
            }
            while i < count {
                tail += x[i]
                i += 1; seen += 1
            }
        }

        /// The f32 sum, once all `length` elements were added.
        var sum: Float {
            if length < 16 {
                return pending.withUnsafeBufferPointer { TorchFloat32.cascade($0, count: $0.count, width: 1)[0] }
            }
            let lanes = cascade.total
            var total = tail
            for l in 0..<8 { total += lanes[l] }
            return total
        }
    }

    /// ATen's `multi_row_sum` cascade (`TorchFloat32.cascade`) over `items` eight-lane items that arrive one at a
    /// time: four interleaved accumulators, each feeding four levels that carry up every `2^levelPower` groups.
    struct StreamingCascade {
        private let size: Int, levelPower: Int, levelStep: Int
        /// Level `j`, accumulator `k` at `4·j + k`.
        private var acc = InlineArray<16, SIMD8<Float>>(repeating: SIMD8())
        private var leftovers: [SIMD8<Float>] = []
        private var index = 0

        init(items: Int) {
            size = items / 4
            levelPower = max(4, TorchFloat32.ceilLog2(size) / 4)
            levelStep = 1 << levelPower
        }

        @inline(__always)
        mutating func add(_ item: SIMD8<Float>) {
            defer { index += 1 }
            guard index < size * 4 else { leftovers.append(item); return }
            acc[index & 3] += item
            guard index & 3 == 3 else { return }
            let group = index / 4 + 1
            guard group % levelStep == 0 else { return }
            let mask = levelStep - 1
            for j in 1..<4 {
                for k in 0..<4 {
                    acc[4 * j + k] += acc[4 * (j - 1) + k]
                    acc[4 * (j - 1) + k] = SIMD8()
                }
                if group & (mask << (j * levelPower)) != 0 { break }
            }
        }

        /// The eight lane sums, once every item was added.
        var total: SIMD8<Float> {
            var rows = acc
            for j in 1..<4 { for k in 0..<4 { rows[k] = rows[k] + rows[4 * j + k] } }
            var sums = rows[0]
            for item in leftovers { sums += item }
            for k in 1..<4 { sums += rows[k] }
            return sums
        }
    }
}

extension TorchHalfReductions {
    /// `torch.sum` along the first dimension of a tensor (each column a strided vector; `vectorized_outer_sum`):
    /// per column one accumulator per level, the rows added to level 0 in order and carried up as
    /// `StreamingCascade` carries (one item per row, no interleaving). `carries(afterRows:)` tells how many
    /// levels carry once `rows` rows are in.
    struct ColumnCascade {
        private let levelPower: Int, levelStep: Int

        /// A cascade over `rows` rows.
        init(rows: Int) {
            levelPower = max(4, TorchFloat32.ceilLog2(rows) / 4)
            levelStep = 1 << levelPower
        }

        /// Levels `1 ... carries` each take the level below (which then restarts from 0) once `rows` rows are in.
        func carries(afterRows rows: Int) -> Int {
            guard rows % levelStep == 0 else { return 0 }
            let mask = levelStep - 1
            for j in 1..<4 where rows & (mask << (j * levelPower)) != 0 { return j }
            return 3
        }
    }

    /// Feeds the next `count` terms of each stream to its reduction: `sources[k]` to `reductions[k]`
    /// (`add(_:count:)`), the streams spread over `parallel`'s threads (each reduction stays in order; only
    /// different streams run at once).
    static func feed<Reduction: InOrderReduction>(_ reductions: inout [Reduction], _ sources: [UnsafePointer<Float>],
                                                  count: Int, parallel: Parallel) {
        let streams = min(reductions.count, sources.count)
        guard streams > 0 else { return }
        let source = SendablePointer(sources)
        reductions.withUnsafeMutableBufferPointer { buffer in
            let target = SendablePointer(buffer.baseAddress!)
            parallel.forEachRow(in: 0..<streams, workers: min(parallel.threads, streams)) { _, k in
                target.pointer[k].add(source.pointer[k], count: count)
            }
        }
    }

    /// `feed` from a tile of terms: stream `k` at `terms + k·capacity`.
    static func feed<Reduction: InOrderReduction>(_ reductions: inout [Reduction], tile terms: UnsafePointer<Float>,
                                                  capacity: Int, count: Int, parallel: Parallel) {
        feed(&reductions, (0..<reductions.count).map { terms + $0 * capacity }, count: count, parallel: parallel)
    }

    /// Computes f32 terms of `range` (global indices) a tile at a time into `scratch` (`streams` runs of
    /// `capacity` floats; `compute(subrange, scratch)` writes term `i` of stream `k` to
    /// `scratch[k·capacity + i − tileStart]`), in parallel, and hands each tile to `consume(scratch, count)` in
    /// order, on the calling thread: for sums whose order PyTorch fixes, with the terms' arithmetic spread over
    /// the threads.
    static func inTiles(_ range: Range<Int>, scratch: UnsafeMutablePointer<Float>, capacity: Int, parallel: Parallel,
                        compute: @Sendable (Range<Int>, Int, UnsafeMutablePointer<Float>) -> Void,
                        consume: (UnsafeMutablePointer<Float>, Int) -> Void) {
        let shared = SendablePointer(scratch)
        var start = range.lowerBound
        while start < range.upperBound {
            let end = min(range.upperBound, start + capacity)
            let tileStart = start
            parallel.forEachBlock(in: start..<end) { part in compute(part, tileStart, shared.pointer) }
            consume(scratch, end - start)
            start = end
        }
    }
}

/// A reduction fed its terms in order, in pieces of any size (`TorchHalfReductions.NormTwo`, `RowSum`).
protocol InOrderReduction: SendableMetatype {
    /// Adds the next `count` terms, `x[0 ..< count]`.
    mutating func add(_ x: UnsafePointer<Float>, count: Int)
}
