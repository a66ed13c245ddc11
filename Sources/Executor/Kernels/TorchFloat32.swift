/// Float32 arithmetic in the order PyTorch's AVX2 CPU kernels use (8-lane vectors), for results that
/// decide a threshold and so must round exactly as mergekit's do: `vec::reduce_all`, the cascade sum of
/// `torch.sum` over a contiguous last dimension, and SLEEF's `expf` (`Sleef_expf8_u10`).
enum TorchFloat32 {
    /// Lanes of `Vectorized<float>` under AVX2.
    static let lanes = 8

    /// `vec::reduce_all(op, x, n)`: fewer than 8 values fold left; otherwise 8 lane accumulators take the
    /// chunks (a partial tail only in its lanes), then fold lane i with i^4, i^2, i^1. `lanesOp` is `op` on
    /// eight lanes at once (inlined, so that the chunks' loop runs in vector registers).
    @inline(__always)
    static func reduceAll(_ x: UnsafeBufferPointer<Float>, _ op: (Float, Float) -> Float,
                          lanes lanesOp: (SIMD8<Float>, SIMD8<Float>) -> SIMD8<Float>) -> Float {
        let n = x.count
        guard n >= lanes, let start = x.baseAddress else {
            guard var acc = x.first else { return 0 }
            for i in 1..<n { acc = op(acc, x[i]) }
            return acc
        }
        let raw = UnsafeRawPointer(start)
        var acc = raw.loadUnaligned(as: SIMD8<Float>.self)
        var d = lanes
        while d < n - n % lanes {
            acc = lanesOp(acc, raw.loadUnaligned(fromByteOffset: d * 4, as: SIMD8<Float>.self))
            d += lanes
        }
        for l in 0..<(n - d) { acc[l] = op(acc[l], x[d + l]) }
        for stride in [4, 2, 1] {
            var folded = acc
            for l in 0..<lanes { folded[l] = op(acc[l], acc[l ^ stride]) }
            acc = folded
        }
        return acc[0]
    }

    /// `reduceAll` with `vec::maximum`: the largest value, NaN when any is NaN. The maximum does not depend on the
    /// order the values are taken in, except which of +0 and −0 a largest zero is, so four accumulators take
    /// the chunks, in turn, to overlap `vec::maximum`'s latency; `reduceAll` may return the other zero there. (The
    /// softmax subtracts the maximum, and `x − 0` and `x − (−0)` differ only as ±0, whose `exp` is 1.)
    static func maximumOfAll(_ x: UnsafeBufferPointer<Float>) -> Float {
        let n = x.count
        guard n >= 4 * lanes, let start = x.baseAddress else {
            return reduceAll(x, { maximum($0, $1) }, lanes: { maximum($0, $1) })
        }
        let raw = UnsafeRawPointer(start)
        @inline(__always) func load(_ i: Int) -> SIMD8<Float> { raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) }
        var (a, b, c, d) = (load(0), load(lanes), load(2 * lanes), load(3 * lanes))
        var i = 4 * lanes
        while i + 4 * lanes <= n {
            a = maximum(a, load(i))
            b = maximum(b, load(i + lanes))
            c = maximum(c, load(i + 2 * lanes))
            d = maximum(d, load(i + 3 * lanes))
            i += 4 * lanes
        }
        while i + lanes <= n {
            a = maximum(a, load(i))
            i += lanes
        }
        var acc = maximum(maximum(a, b), maximum(c, d))
        for l in 0..<(n - i) { acc[l] = maximum(acc[l], x[i + l]) }
        var top = acc[0]
        for l in 1..<lanes { top = maximum(top, acc[l]) }
        return top
    }

    /// `reduceAll` with `+`.
    static func sumOfAll(_ x: UnsafeBufferPointer<Float>) -> Float {
        reduceAll(x, { $0 + $1 }, lanes: { $0 + $1 })
    }

    /// `vec::maximum` on one lane: NaN if either is NaN, else the larger (the second on ties).
    @inline(__always)
    static func maximum(_ a: Float, _ b: Float) -> Float {
        if a.isNaN || b.isNaN { return .nan }
        return a > b ? a : b
    }

    /// `maximum` on eight lanes.
    @inline(__always)
    static func maximum(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> {
        b.replacing(with: a, where: a .> b).replacing(with: .nan, where: (a .!= a) .| (b .!= b))
    }

    /// `torch.sum` of one contiguous row of `n` float32 values (`vectorized_inner_sum` for n ≥ 8, else
    /// `scalar_inner_sum`), accumulated in float32.
    static func rowSum(_ x: UnsafeBufferPointer<Float>) -> Float {
        let n = x.count
        guard n >= lanes else { return cascade(x, count: n, width: 1)[0] }
        let vectors = n / lanes
        // `cascade(x, count: vectors, width: 8)`, item by item in vector registers.
        var items = TorchHalfReductions.StreamingCascade(items: vectors)
        let raw = UnsafeRawPointer(x.baseAddress!)
        for v in 0..<vectors { items.add(raw.loadUnaligned(fromByteOffset: v * 32, as: SIMD8<Float>.self)) }
        let partial = items.total
        var total: Float = 0
        for k in (vectors * lanes)..<n { total += x[k] }
        for l in 0..<lanes { total += partial[l] }
        return total
    }

    /// ATen's `row_sum` over `count` items of `width` lanes each: four interleaved accumulators fed by
    /// `multi_row_sum`'s four-level cascade, the leftover items added to the first, then the four combined.
    static func cascade(_ x: UnsafeBufferPointer<Float>, count: Int, width: Int) -> [Float] {
        let ilp = 4
        let levels = 4
        let size = count / ilp
        let levelPower = max(4, ceilLog2(size) / levels)
        let levelStep = 1 << levelPower
        let levelMask = levelStep - 1
        // acc[level][row][lane], flat (nested arrays would check uniqueness on every addition).
        return withUnsafeTemporaryAllocation(of: Float.self, capacity: levels * ilp * width) { buffer -> [Float] in
            let acc = buffer.baseAddress!
            acc.initialize(repeating: 0, count: levels * ilp * width)
            @inline(__always) func slot(_ level: Int, _ row: Int) -> UnsafeMutablePointer<Float> {
                acc + (level * ilp + row) * width
            }
            @inline(__always) func addItem(_ item: Int, into row: Int) {
                let a = slot(0, row)
                for l in 0..<width { a[l] += x[item * width + l] }
            }
            var i = 0
            while i + levelStep <= size {
                for _ in 0..<levelStep {
                    for k in 0..<ilp { addItem(i * ilp + k, into: k) }
                    i += 1
                }
                for j in 1..<levels {
                    for k in 0..<ilp {
                        let upper = slot(j, k), lower = slot(j - 1, k)
                        for l in 0..<width {
                            upper[l] += lower[l]
                            lower[l] = 0
                        }
                    }
                    if i & (levelMask << (j * levelPower)) != 0 { break }
                }
            }
            while i < size {
                for k in 0..<ilp { addItem(i * ilp + k, into: k) }
                i += 1
            }
            for j in 1..<levels {
                for k in 0..<ilp {
                    let lower = slot(0, k), upper = slot(j, k)
                    for l in 0..<width { lower[l] += upper[l] }
                }
            }
            let sums = slot(0, 0)
            for item in (size * ilp)..<count { for l in 0..<width { sums[l] += x[item * width + l] } }
            for k in 1..<ilp {
                let row = slot(0, k)
                for l in 0..<width { sums[l] += row[l] }
            }
            return Array(UnsafeBufferPointer(start: sums, count: width))
        }
    }

    /// `torch.linalg.vector_norm` (p = 2) of one contiguous f32 row of `length` elements, fed in order in pieces
    /// of any size (ATen's `norm_kernel_tensor_iterator_impl`, the last-dimension path): eight lane accumulators
    /// take `x·x` (product and sum each rounded: `_mm256_mul_ps`, `_mm256_add_ps`) over the row's whole groups
    /// of eight, the lanes fold left into lane 0, then the other `length mod 8` elements are added one by one, a
    /// rounded product for each whole group of four and a fused multiply-add for the rest (how the compiler
    /// vectorized the scalar tail: measured against torch 2.15 on rows of 1 to 33 elements, every one equal).
    struct NormTwo: InOrderReduction {
        /// Elements in the row.
        let length: Int
        private var lanes = SIMD8<Float>()
        private var seen = 0
        /// The row's last `length mod 8` elements.
        private var tail = SIMD8<Float>()

        init(length: Int) { self.length = length }

        /// Adds the row's next `count` elements, `x[0..<count]`.
        mutating func add(_ x: UnsafePointer<Float>, count: Int) {
            let vectorEnd = length - length % TorchFloat32.lanes
            var i = 0
            // Element by element up to a lane boundary, then whole groups of eight in registers.
            while i < count, seen < vectorEnd, seen % 8 != 0 {
                lanes[seen % 8] += x[i] * x[i]
                i += 1; seen += 1
            }
            var acc = lanes
            while i + 8 <= count, seen + 8 <= vectorEnd {
                let v = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
                acc += v * v
                i += 8; seen += 8
            }
            lanes = acc
            while i < count {
                if seen < vectorEnd { lanes[seen % 8] += x[i] * x[i] } else { tail[seen - vectorEnd] = x[i] }
                i += 1; seen += 1
            }
        }

        /// The row's norm, once all `length` elements were added.
        var norm: Float {
            var sum = lanes[0]
            for l in 1..<TorchFloat32.lanes { sum = sum + lanes[l] }
            let rest = length % TorchFloat32.lanes
            let rounded = rest - rest % 4
            for l in 0..<rest {
                let v = tail[l]
                sum = l < rounded ? sum + v * v : sum.addingProduct(v, v)
            }
            return sum.squareRoot()
        }
    }

    /// SLEEF's `xsinf_u1` with FMA (`Sleef_sinf8_u10`, what `torch.sin` runs on f32 under AVX2), for
    /// `|d| < 125` (`TRIGRANGEMAX2f`; larger arguments take SLEEF's Payne–Hanek branch, which is not followed
    /// here: NaN is returned for them). Reduces by π in three parts, then a double-float polynomial.
    static func sin(_ d: Float) -> Float {
        guard abs(d) < 125 else { return d.isNaN ? d : .nan }
        let u0 = (d * Float(0.318309886183790671537767526745028724 as Double)).rounded(.toNearestOrEven)
        let q = Int32(u0)
        let v = d.addingProduct(u0, -3.1414794921875)
        var s = DoubleFloat.add2(v, u0 * -0.00011315941810607910156)
        s = DoubleFloat.add(s, u0 * -1.9841872589410058936e-09)
        let t = s
        s = DoubleFloat.square(s)
        var u: Float = 2.6083159809786593541503e-06
        u = (-0.0001981069071916863322258 as Float).addingProduct(u, s.hi)
        u = (0.00833307858556509017944336 as Float).addingProduct(u, s.hi)
        let x = DoubleFloat.add(1, DoubleFloat.multiply(DoubleFloat.add(-0.166666597127914428710938, u * s.hi), s))
        var r = DoubleFloat.multiplyToFloat(t, x)
        if q & 1 == 1 { r = -r }
        return d == 0 && d.sign == .minus ? d : r
    }

    /// SLEEF's `xacosf_u1` with FMA (`Sleef_acosf8_u10`, what `torch.acos` runs on f32 under AVX2).
    static func acos(_ d: Float) -> Float {
        let small = abs(d) < 0.5
        let x2 = small ? d * d : (1 - abs(d)) * 0.5
        var x = small ? DoubleFloat(abs(d), 0) : DoubleFloat.squareRoot(x2)
        if abs(d) == 1 { x = DoubleFloat(0, 0) }
        var u: Float = 0.4197454825e-1
        for c: Float in [0.2424046025e-1, 0.4547423869e-1, 0.7495029271e-1, 0.1666677296e+0] { u = c.addingProduct(u, x2) }
        u = u * (x2 * x.hi)
        func withSign(_ v: Float, of s: Float) -> Float {
            Float(bitPattern: v.bitPattern ^ (s.bitPattern & 0x8000_0000))
        }
        var y = DoubleFloat.subtract(DoubleFloat(3.1415927410125732422 / 2, -8.7422776573475857731e-08 / 2),
                                     DoubleFloat.add(withSign(x.hi, of: d), withSign(u, of: d)))
        x = DoubleFloat.add(x, u)
        if !small { y = DoubleFloat(x.hi * 2, x.lo * 2) }
        if !small && d < 0 { y = DoubleFloat.subtract(DoubleFloat(3.1415927410125732422, -8.7422776573475857731e-08), y) }
        return y.hi + y.lo
    }

    /// SLEEF's double-float (`vfloat2`) helpers with FMA (`df.h`), one lane: a value `hi + lo`.
    struct DoubleFloat {
        var hi: Float, lo: Float
        init(_ hi: Float, _ lo: Float) { (self.hi, self.lo) = (hi, lo) }

        /// `dfadd2_vf2_vf_vf`.
        static func add2(_ x: Float, _ y: Float) -> DoubleFloat {
            let s = x + y, v = s - x
            return DoubleFloat(s, (x - (s - v)) + (y - v))
        }
        /// `dfadd_vf2_vf2_vf`.
        static func add(_ x: DoubleFloat, _ y: Float) -> DoubleFloat {
            let s = x.hi + y
            return DoubleFloat(s, ((x.hi - s) + y) + x.lo)
        }
        /// `dfadd_vf2_vf_vf`.
        static func add(_ x: Float, _ y: Float) -> DoubleFloat {
            let s = x + y
            return DoubleFloat(s, (x - s) + y)
        }
        /// `dfadd_vf2_vf_vf2`.
        static func add(_ x: Float, _ y: DoubleFloat) -> DoubleFloat {
            let s = x + y.hi
            return DoubleFloat(s, ((x - s) + y.hi) + y.lo)
        }
        /// `dfadd2_vf2_vf_vf2`.
        static func add2(_ x: Float, _ y: DoubleFloat) -> DoubleFloat {
            let s = x + y.hi, v = s - x
            return DoubleFloat(s, ((x - (s - v)) + (y.hi - v)) + y.lo)
        }
        /// `dfsub_vf2_vf2_vf2`.
        static func subtract(_ x: DoubleFloat, _ y: DoubleFloat) -> DoubleFloat {
            let s = x.hi - y.hi
            return DoubleFloat(s, (((x.hi - s) - y.hi) + x.lo) - y.lo)
        }
        /// `dfsqu_vf2_vf2`.
        static func square(_ x: DoubleFloat) -> DoubleFloat {
            let s = x.hi * x.hi
            return DoubleFloat(s, (-s).addingProduct(x.hi, x.hi).addingProduct(x.hi + x.hi, x.lo))
        }
        /// `dfmul_vf2_vf_vf`.
        static func multiply(_ x: Float, _ y: Float) -> DoubleFloat {
            let s = x * y
            return DoubleFloat(s, (-s).addingProduct(x, y))
        }
        /// `dfmul_vf2_vf2_vf2`.
        static func multiply(_ x: DoubleFloat, _ y: DoubleFloat) -> DoubleFloat {
            let s = x.hi * y.hi
            return DoubleFloat(s, (-s).addingProduct(x.hi, y.hi).addingProduct(x.lo, y.hi).addingProduct(x.hi, y.lo))
        }
        /// `dfmul_vf_vf2_vf2`.
        static func multiplyToFloat(_ x: DoubleFloat, _ y: DoubleFloat) -> Float {
            (x.hi * y.lo).addingProduct(x.lo, y.hi).addingProduct(x.hi, y.hi)
        }
        /// `dfrec_vf2_vf`.
        static func reciprocal(_ d: Float) -> DoubleFloat {
            let s = 1 / d
            return DoubleFloat(s, s * (1 as Float).addingProduct(-d, s))
        }
        /// `dfsqrt_vf2_vf`.
        static func squareRoot(_ d: Float) -> DoubleFloat {
            let t = d.squareRoot()
            let p = multiply(add2(d, multiply(t, t)), reciprocal(t))
            return DoubleFloat(p.hi * 0.5, p.lo * 0.5)
        }
    }

    /// `utils::CeilLog2`: 1 up to 2, else ⌈log2 x⌉.
    static func ceilLog2(_ x: Int) -> Int {
        x <= 2 ? 1 : (Int.bitWidth - (x - 1).leadingZeroBitCount)
    }

    /// SLEEF's `xexpf` with FMA, one lane: `q = rint(d/ln2)`, `s = d − q·ln2` (split), a degree-5
    /// polynomial, then `2^q` applied in two halves. 0 below −104, +∞ above 100.
    static func exp(_ d: Float) -> Float {
        if d.isNaN { return d }
        if d < -104 { return 0 }
        if d > 100 { return .infinity }
        let q = Int32((d * 1.442695040888963407359924681001892137426645954152985934135449).rounded(.toNearestOrEven))
        let qf = Float(q)
        var s = d.addingProduct(qf, -0.693145751953125)
        s = s.addingProduct(qf, -1.428606765330187045e-06)
        var u: Float = Float(0.00139304355252534151077271).addingProduct(0.000198527617612853646278381, s)
        u = Float(0.00833336077630519866943359).addingProduct(u, s)
        u = Float(0.0416664853692054748535156).addingProduct(u, s)
        u = Float(0.166666671633720397949219).addingProduct(u, s)
        u = Float(0.5).addingProduct(u, s)
        u = 1 + s.addingProduct(s * s, u)
        let h = q >> 1
        u = u * pow2(h)
        return u * pow2(q - h)
    }

    /// `exp` on eight lanes at once, each lane exactly as `exp(_:)` computes it (the same operations, fused
    /// multiply-adds included, in the same order).
    @inline(__always)
    static func exp(_ x: SIMD8<Float>) -> SIMD8<Float> {
        typealias F = SIMD8<Float>
        // Lanes outside −104…100 (and NaN) are replaced at the end; computing on 0 there keeps `q` in range.
        let inRange = (x .>= -104) .& (x .<= 100)
        let d = F().replacing(with: x, where: inRange)
        // Rounding to nearest even by adding and subtracting 1.5·2²³ (exact for |v| < 2²²), whose sum's low bits
        // are then the integer itself (the generic SIMD conversions run lane by lane).
        let magic = F(repeating: 12_582_912)
        let shifted = d * 1.442695040888963407359924681001892137426645954152985934135449 + magic
        let qf = shifted - magic
        var s = d.addingProduct(qf, F(repeating: -0.693145751953125))
        s = s.addingProduct(qf, F(repeating: -1.428606765330187045e-06))
        var u = F(repeating: 0.00139304355252534151077271).addingProduct(F(repeating: 0.000198527617612853646278381), s)
        u = F(repeating: 0.00833336077630519866943359).addingProduct(u, s)
        u = F(repeating: 0.0416664853692054748535156).addingProduct(u, s)
        u = F(repeating: 0.166666671633720397949219).addingProduct(u, s)
        u = F(repeating: 0.5).addingProduct(u, s)
        u = 1 + s.addingProduct(s * s, u)
        let q = unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- 0x4B40_0000
        let h = q &>> 1
        u = u * pow2(h)
        u = u * pow2(q &- h)
        return u.replacing(with: 0, where: x .< -104).replacing(with: .infinity, where: x .> 100)
            .replacing(with: x, where: x .!= x)
    }

    /// 2^q from the exponent bits (q in the normal range).
    static func pow2(_ q: Int32) -> Float { Float(bitPattern: UInt32(truncatingIfNeeded: q + 127) << 23) }

    /// `pow2` on eight lanes.
    @inline(__always)
    static func pow2(_ q: SIMD8<Int32>) -> SIMD8<Float> {
        unsafeBitCast((q &+ 127) &<< 23, to: SIMD8<Float>.self)
    }
}
