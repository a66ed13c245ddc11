import IR

extension DTypeConversion {
    /// Decodes `count` little-endian elements of `dtype` at `src` (any alignment) into `dst`.
    public static func decode(_ src: UnsafeRawPointer, dtype: DType, count: Int, into dst: UnsafeMutablePointer<Float>) {
        switch dtype {
        case .f32:
            UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: count &* 4)
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
