import IR

/// Rounding eight f32 lanes to a merge dtype, for kernels that follow mergekit's per-op rounding of tensors of
/// that dtype (PyTorch's CPU bf16/f16 elementwise ops compute in f32 and round each result; its sums over a
/// dimension accumulate in f32 and round once).
/// Kernels are generic over the rounding (one specialization per dtype, chosen once per block), so the hot loop
/// has no dtype switch.
enum MergeDTypeRounding {
    /// `v` rounded to the nearest `dtype` value (ties to even; NaN stays NaN) for bf16 and f16; other dtypes as is.
    static func round(_ v: SIMD8<Float>, to dtype: DType) -> SIMD8<Float> {
        switch dtype {
        case .bf16: return BF16Rounding.round(v)
        case .f16: return F16Rounding.round(v)
        // f32 as is; f64 merges compute in f32 too (README); f8 and integer dtypes never reach these kernels as
        // merge dtypes with per-op rounding (integer tensors are copied, f8 merges compute in f32).
        default: return NoRounding.round(v)
        }
    }

    /// Packs `x[range]` (values of `dtype`, bf16 or f16) into `plane[range]` as their 16-bit patterns, exactly
    /// (`HalfLaneRounding.pack`; global indices both): the one dtype dispatch of values held or kept as planes.
    @inline(__always)
    static func pack(_ x: UnsafePointer<Float>, as dtype: DType, into plane: UnsafeMutablePointer<UInt16>,
                     _ range: Range<Int>) {
        if dtype == .bf16 { BF16Rounding.pack(x, into: plane, range) } else { F16Rounding.pack(x, into: plane, range) }
    }

    /// Packs `x[range]` as `pack(_:as:into:_:)` does, with each element whose keep flag is 0 packed as +0 instead:
    /// `flags[i − range.lowerBound]` is `0xFFFF_FFFF` (kept) or 0 (`HalfLaneRounding.pack(_:keeping:into:_:)`).
    @inline(__always)
    static func pack(_ x: UnsafePointer<Float>, keeping flags: UnsafePointer<UInt32>, as dtype: DType,
                     into plane: UnsafeMutablePointer<UInt16>, _ range: Range<Int>) {
        if dtype == .bf16 {
            BF16Rounding.pack(x, keeping: flags, into: plane, range)
        } else {
            F16Rounding.pack(x, keeping: flags, into: plane, range)
        }
    }

    /// Unpacks `plane[range]` (16-bit patterns of `dtype`, bf16 or f16) into `out[range]` as f32 (global indices
    /// both; `HalfLaneRounding.unpack`).
    @inline(__always)
    static func unpack(_ plane: UnsafePointer<UInt16>, as dtype: DType, into out: UnsafeMutablePointer<Float>,
                       _ range: Range<Int>) {
        if dtype == .bf16 {
            BF16Rounding.unpack(plane, into: out, range)
        } else {
            F16Rounding.unpack(plane, into: out, range)
        }
    }
}

/// A rounding of eight f32 lanes to one dtype.
protocol LaneRounding: SendableMetatype {
    static func round(_ v: SIMD8<Float>) -> SIMD8<Float>
}

extension LaneRounding {
    /// One value rounded as a lane is (for the scalars computed between a kernel's vector loops).
    @inline(__always)
    static func round(_ x: Float) -> Float { round(SIMD8(repeating: x))[0] }
}

/// f32: the identity.
enum NoRounding: LaneRounding {
    @inline(__always)
    static func round(_ v: SIMD8<Float>) -> SIMD8<Float> { v }
}

/// bf16: round to nearest even on the bit pattern (as `DTypeConversion.floatToBF16`).
enum BF16Rounding: LaneRounding {
    @inline(__always)
    static func round(_ v: SIMD8<Float>) -> SIMD8<Float> {
        let bits = unsafeBitCast(v, to: SIMD8<UInt32>.self)
        let lowestKept = (bits &>> SIMD8<UInt32>(repeating: 16)) & SIMD8<UInt32>(repeating: 1)
        let rounded = (bits &+ SIMD8<UInt32>(repeating: 0x7FFF) &+ lowestKept) & SIMD8<UInt32>(repeating: 0xFFFF_0000)
        let quietNaN = (bits | SIMD8<UInt32>(repeating: 0x0040_0000)) & SIMD8<UInt32>(repeating: 0xFFFF_0000)
        // A float comparison finds the NaNs (the SIMD integer comparisons are lane-by-lane loops).
        let nan = v .!= v
        return unsafeBitCast(rounded, to: SIMD8<Float>.self)
            .replacing(with: unsafeBitCast(quietNaN, to: SIMD8<Float>.self), where: nan)
    }
}

/// f16: through `Float16`, lane by lane.
enum F16Rounding: LaneRounding {
    @inline(__always)
    static func round(_ v: SIMD8<Float>) -> SIMD8<Float> {
        var r = SIMD8<Float>()
        for l in 0..<8 { r[l] = Float(Float16(v[l])) }
        return r
    }
}

/// A rounding to a 16-bit dtype whose values kernels may hold packed: `pack` gives each lane's 16-bit pattern
/// (exact for a value of the dtype, which every lane must be), `unpack` the value back as f32.
protocol HalfLaneRounding: LaneRounding {
    static func pack(_ v: SIMD8<Float>) -> SIMD8<UInt16>
    static func unpack(_ v: SIMD8<UInt16>) -> SIMD8<Float>
}

extension HalfLaneRounding {
    /// Elements `i ..< i + lanes` (`lanes` at most 8; the other lanes 0) of the 16-bit patterns at `p`, as f32.
    @inline(__always)
    static func load(_ p: UnsafePointer<UInt16>, _ i: Int, _ lanes: Int) -> SIMD8<Float> {
        if lanes == 8 { return unpack(UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<UInt16>.self)) }
        var v = SIMD8<UInt16>()
        for l in 0..<lanes { v[l] = p[i + l] }
        return unpack(v)
    }

    /// Stores lanes `0 ..< lanes` of `v` (values of the dtype) as 16-bit patterns at `p[i ..< i + lanes]`.
    @inline(__always)
    static func store(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<UInt16>, _ i: Int, _ lanes: Int) {
        let packed = pack(v)
        if lanes == 8 { UnsafeMutableRawPointer(p + i).storeBytes(of: packed, as: SIMD8<UInt16>.self); return }
        for l in 0..<lanes { p[i + l] = packed[l] }
    }

    /// Packs `x[range]` (values of the dtype) into `plane[range]` (global indices both).
    @inline(__always)
    static func pack(_ x: UnsafePointer<Float>, into plane: UnsafeMutablePointer<UInt16>, _ range: Range<Int>) {
        LaneConversions.forEachGroup(range) { i, lanes in store(LaneConversions.load(x, i, lanes), plane, i, lanes) }
    }

    /// Packs `x[range]` (values of the dtype) into `plane[range]` (global indices both), each element whose flag
    /// `flags[i − range.lowerBound]` is 0 as +0 (the flags are `0xFFFF_FFFF` or 0): a pruned operand, masked as
    /// it is stored.
    @inline(__always)
    static func pack(_ x: UnsafePointer<Float>, keeping flags: UnsafePointer<UInt32>,
                     into plane: UnsafeMutablePointer<UInt16>, _ range: Range<Int>) {
        let f = flags - range.lowerBound
        LaneConversions.forEachGroup(range) { i, lanes in
            var keep = SIMD8<UInt32>()
            if lanes == 8 {
                keep = UnsafeRawPointer(f + i).loadUnaligned(as: SIMD8<UInt32>.self)
            } else {
                for l in 0..<lanes { keep[l] = f[i + l] }
            }
            let v = unsafeBitCast(LaneConversions.load(x, i, lanes), to: SIMD8<UInt32>.self) & keep
            store(unsafeBitCast(v, to: SIMD8<Float>.self), plane, i, lanes)
        }
    }

    /// Unpacks `plane[range]` into `out[range]` as f32 (global indices both).
    @inline(__always)
    static func unpack(_ plane: UnsafePointer<UInt16>, into out: UnsafeMutablePointer<Float>, _ range: Range<Int>) {
        LaneConversions.forEachGroup(range) { i, lanes in LaneConversions.store(load(plane, i, lanes), out, i, lanes) }
    }
}

extension BF16Rounding: HalfLaneRounding {
    /// The upper halves of the f32 patterns (the odd 16-bit lanes, little-endian; a shuffle, where the generic
    /// `truncatingIfNeeded` conversion was an out-of-line call).
    @inline(__always)
    static func pack(_ v: SIMD8<Float>) -> SIMD8<UInt16> {
        unsafeBitCast(v, to: SIMD16<UInt16>.self).oddHalf
    }

    @inline(__always)
    static func unpack(_ v: SIMD8<UInt16>) -> SIMD8<Float> {
        var halves = SIMD16<UInt16>()
        halves.oddHalf = v
        return unsafeBitCast(halves, to: SIMD8<Float>.self)
    }
}

extension F16Rounding: HalfLaneRounding {
    /// Through `Float16`, lane by lane.
    @inline(__always)
    static func pack(_ v: SIMD8<Float>) -> SIMD8<UInt16> {
        var r = SIMD8<UInt16>()
        for l in 0..<8 { r[l] = Float16(v[l]).bitPattern }
        return r
    }

    @inline(__always)
    static func unpack(_ v: SIMD8<UInt16>) -> SIMD8<Float> {
        var r = SIMD8<Float>()
        for l in 0..<8 { r[l] = Float(Float16(bitPattern: v[l])) }
        return r
    }
}
