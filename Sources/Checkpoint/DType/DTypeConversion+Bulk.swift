import IR

extension DTypeConversion {
    /// Decodes `count` little-endian elements of `dtype` at `src` (any alignment) into `dst`.
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
        }
    }

    /// Encodes `count` floats from `src` as little-endian `dtype` elements at `dst` (any alignment), rounding to nearest even.
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
        }
    }
}

extension DTypeConversion {
    /// Rounds `count` floats at `values` to the nearest `dtype` value (ties to even), in place; f32 is left as is.
    public static func roundInPlace(_ values: UnsafeMutablePointer<Float>, count: Int, to dtype: DType) {
        switch dtype {
        case .f32:
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
        }
    }
}
