import Synchronization
import IR

/// Whether chunks of f32 values hold a value that is, or becomes once stored in a dtype, infinite or NaN: one
/// integer max over the values' magnitudes' bit patterns (vectorized), no buffers.
enum FiniteCheck {
    /// The smallest magnitude bit pattern (an f32's bits without the sign) that is stored in `dtype` as ±Inf or NaN:
    /// Inf itself for f32 and f64; the halfway points past the largest finite value for f16 (65520), bf16
    /// (0x7F7F8000) and float8 e5m2 (61440), which round to even, that is to Inf; float8 e4m3fn saturates, so only
    /// NaN and Inf inputs are non-finite there.
    static func limitBits(for dtype: DType) -> UInt32 {
        switch dtype {
        case .f16: return Float(65520).bitPattern
        case .bf16: return 0x7F7F_8000
        case .f8e5m2: return Float(61440).bitPattern
        default: return Float.infinity.bitPattern
        }
    }

    /// True when any of `count` values at `values` has a magnitude whose bits reach `limitBits`.
    static func exceeds(_ values: UnsafePointer<Float>, count: Int, limitBits: UInt32) -> Bool {
        largestMagnitudeBits(values, 0..<count) >= limitBits
    }

    /// `exceeds(_:count:limitBits:)` with the values split between `parallel`'s threads.
    static func exceeds(_ values: UnsafePointer<Float>, count: Int, limitBits: UInt32, parallel: Parallel) -> Bool {
        let largest = Atomic<UInt32>(0), values = SendablePointer(values)
        parallel.forEachPart(of: 0..<count) { part in
            _ = largest.max(largestMagnitudeBits(values.pointer, part), ordering: .relaxed)
        }
        return largest.load(ordering: .relaxed) >= limitBits
    }

    /// The largest magnitude's bits (an f32's bits without the sign) among `values[range]`.
    private static func largestMagnitudeBits(_ values: UnsafePointer<Float>, _ range: Range<Int>) -> UInt32 {
        let bits = UnsafeRawPointer(values).assumingMemoryBound(to: UInt32.self)
        var largest: UInt32 = 0
        for i in range { largest = max(largest, bits[i] & 0x7FFF_FFFF) }
        return largest
    }
}
