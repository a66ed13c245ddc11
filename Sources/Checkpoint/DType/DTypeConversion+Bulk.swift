import IR

extension DTypeConversion {
    /// Decodes `count` little-endian elements of `dtype` at `src` (any alignment) into `dst` as f32. Floats are
    /// converted as torch's `.to(torch.float32)` does: exactly for f16, bf16 and the float8 formats, rounded to
    /// nearest even for f64. Integers and BOOL convert to the nearest f32 too (int64 beyond 2^24 is not exact), but
    /// the executor never decodes them: it copies their bytes (`isFloatingPoint`).
    public static func decode(_ src: UnsafeRawPointer, dtype: DType, count: Int, into dst: UnsafeMutablePointer<Float>) {
        switch dtype {
        case .f32:
            UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: count &* 4)
        case .bf16 where Int(bitPattern: src) & 1 == 0:
            let halves = src.assumingMemoryBound(to: UInt16.self)
            let words = UnsafeMutableRawPointer(dst).assumingMemoryBound(to: UInt32.self)
            for i in 0..<count { words[i] = UInt32(halves[i]) << 16 }
        case .bf16:
            for i in 0..<count {
                dst[i] = bf16ToFloat(src.loadUnaligned(fromByteOffset: i &* 2, as: UInt16.self))
            }
        case .f16:
            for i in 0..<count {
                dst[i] = HalfPrecisionKernels.toFloat(src.loadUnaligned(fromByteOffset: i &* 2, as: UInt16.self))
            }
        case .f64:
            for i in 0..<count { dst[i] = Float(src.loadUnaligned(fromByteOffset: i &* 8, as: Double.self)) }
        case .f8e4m3:
            Float8Conversion.e4m3Table.withUnsafeBufferPointer { table in
                for i in 0..<count { dst[i] = table[Int(src.load(fromByteOffset: i, as: UInt8.self))] }
            }
        case .f8e5m2:
            Float8Conversion.e5m2Table.withUnsafeBufferPointer { table in
                for i in 0..<count { dst[i] = table[Int(src.load(fromByteOffset: i, as: UInt8.self))] }
            }
        case .i64:
            for i in 0..<count { dst[i] = Float(src.loadUnaligned(fromByteOffset: i &* 8, as: Int64.self)) }
        case .i32:
            for i in 0..<count { dst[i] = Float(src.loadUnaligned(fromByteOffset: i &* 4, as: Int32.self)) }
        case .i16:
            for i in 0..<count { dst[i] = Float(src.loadUnaligned(fromByteOffset: i &* 2, as: Int16.self)) }
        case .i8:
            for i in 0..<count { dst[i] = Float(src.load(fromByteOffset: i, as: Int8.self)) }
        case .u8:
            for i in 0..<count { dst[i] = Float(src.load(fromByteOffset: i, as: UInt8.self)) }
        case .bool:
            for i in 0..<count { dst[i] = src.load(fromByteOffset: i, as: UInt8.self) != 0 ? 1 : 0 }
        }
    }

    /// Encodes `count` floats from `src` as little-endian `dtype` elements at `dst` (any alignment), as torch's
    /// `.to(dtype)` does: floats round to nearest even (f64 is exact; float8 as `Float8Conversion`); BOOL is
    /// `x != 0`; integers truncate toward zero, NaN gives 0 and values outside the type's range saturate (torch
    /// leaves those undefined). The executor writes integer and BOOL tensors from their bytes instead.
    public static func encode(_ src: UnsafePointer<Float>, count: Int, as dtype: DType, into dst: UnsafeMutableRawPointer) {
        switch dtype {
        case .f32:
            dst.copyMemory(from: src, byteCount: count &* 4)
        case .bf16:
            for i in 0..<count {
                dst.storeBytes(of: floatToBF16(src[i]), toByteOffset: i &* 2, as: UInt16.self)
            }
        case .f16:
            for i in 0..<count {
                dst.storeBytes(of: HalfPrecisionKernels.fromFloat(src[i]), toByteOffset: i &* 2, as: UInt16.self)
            }
        case .f64:
            for i in 0..<count { dst.storeBytes(of: Double(src[i]), toByteOffset: i &* 8, as: Double.self) }
        case .f8e4m3:
            for i in 0..<count { dst.storeBytes(of: Float8Conversion.floatToE4M3(src[i]), toByteOffset: i, as: UInt8.self) }
        case .f8e5m2:
            for i in 0..<count { dst.storeBytes(of: Float8Conversion.floatToE5M2(src[i]), toByteOffset: i, as: UInt8.self) }
        case .i64:
            for i in 0..<count { dst.storeBytes(of: saturating(src[i], Int64.self), toByteOffset: i &* 8, as: Int64.self) }
        case .i32:
            for i in 0..<count { dst.storeBytes(of: saturating(src[i], Int32.self), toByteOffset: i &* 4, as: Int32.self) }
        case .i16:
            for i in 0..<count { dst.storeBytes(of: saturating(src[i], Int16.self), toByteOffset: i &* 2, as: Int16.self) }
        case .i8:
            for i in 0..<count { dst.storeBytes(of: saturating(src[i], Int8.self), toByteOffset: i, as: Int8.self) }
        case .u8:
            for i in 0..<count { dst.storeBytes(of: saturating(src[i], UInt8.self), toByteOffset: i, as: UInt8.self) }
        case .bool:
            for i in 0..<count { dst.storeBytes(of: UInt8(src[i] != 0 ? 1 : 0), toByteOffset: i, as: UInt8.self) }
        }
    }

    /// `x` truncated toward zero into `T`, NaN as 0, out-of-range values clamped to `T`'s bounds.
    @inline(__always)
    static func saturating<T: FixedWidthInteger>(_ x: Float, _: T.Type) -> T {
        if x.isNaN { return 0 }
        if x <= Float(T.min) { return T.min }
        if x >= Float(T.max) { return T.max }
        return T(x.rounded(.towardZero))
    }
}

extension DTypeConversion {
    /// Rounds `count` floats at `values` to the nearest `dtype` value (ties to even), in place: what a store to
    /// `dtype` and a load back give. f32 and f64 (which holds every f32) leave them as they are.
    public static func roundInPlace(_ values: UnsafeMutablePointer<Float>, count: Int, to dtype: DType) {
        switch dtype {
        case .f32, .f64:
            return
        case .bf16:
            let bits = UnsafeMutableRawPointer(values).assumingMemoryBound(to: UInt32.self)
            for i in 0..<count {
                let b = bits[i]
                let rounded = (b &+ 0x7FFF &+ ((b >> 16) & 1)) & 0xFFFF_0000
                let quietNaN = (b | 0x0040_0000) & 0xFFFF_0000
                bits[i] = (b & 0x7FFF_FFFF) > 0x7F80_0000 ? quietNaN : rounded
            }
        case .f16:
            for i in 0..<count { values[i] = Float(Float16(values[i])) }
        case .f8e4m3, .f8e5m2, .i64, .i32, .i16, .i8, .u8, .bool:
            for i in 0..<count { values[i] = round(values[i], to: dtype) }
        }
    }
}
