/// The keep decisions of a randomized prune (`random_prune`, `della_prune`) made in its rescaling pass, one bit per
/// element of the tensor, read back by its output sweep instead of deciding again: `(n + 7) / 8` bytes, counted in
/// the kernel's cost. Only tensors of at most `maxElements` elements keep them (16 MiB of bits), so a model's
/// largest tensors cost no more than that at any budget; larger ones decide again in the sweep, to the same bits.
final class KeepBits: @unchecked Sendable {
    /// The largest tensor whose decisions are kept: 2²⁷ elements.
    static let maxElements = 1 << 27
    private let bits: AccountedBuffer<UInt8>

    /// Bytes the bits of `elementCount` elements take.
    static func bytes(elementCount: Int) -> Int { (elementCount + 7) / 8 }

    /// Whether a prune of `elementCount` elements that makes a rescaling pass keeps its decisions.
    static func kept(rescale: Bool, elementCount: Int) -> Bool { rescale && elementCount <= maxElements }

    init(elementCount: Int, memory: MemoryAccount) {
        bits = memory.allocate(UInt8.self, count: Self.bytes(elementCount: elementCount))
    }

    /// Records the flags (`0xFFFF_FFFF` kept, 0 dropped) of elements `range` (global indices); `flags[0]` is element
    /// `range.lowerBound`'s. Calls for different ranges may run at once when no byte (8 elements from a multiple of
    /// 8) holds elements of both.
    @inline(__always)
    func store(_ range: Range<Int>, from flags: UnsafePointer<UInt32>) {
        let b = bits.pointer
        var i = range.lowerBound
        while i < range.upperBound, i & 7 != 0 {
            set(i, flags[i - range.lowerBound] != 0)
            i += 1
        }
        while i + 8 <= range.upperBound {
            let f = flags + (i - range.lowerBound)
            var byte: UInt32 = 0
            for l in 0..<8 { byte |= f[l] & (1 << UInt32(l)) }
            b[i >> 3] = UInt8(truncatingIfNeeded: byte)
            i += 8
        }
        while i < range.upperBound {
            set(i, flags[i - range.lowerBound] != 0)
            i += 1
        }
    }

    @inline(__always)
    private func set(_ i: Int, _ keep: Bool) {
        let mask = UInt8(1) << UInt8(i & 7)
        bits.pointer[i >> 3] = keep ? bits.pointer[i >> 3] | mask : bits.pointer[i >> 3] & ~mask
    }

    /// Writes the flags of elements `range` to `flags[0 ..< range.count]`: `0xFFFF_FFFF` kept, 0 dropped.
    @inline(__always)
    func load(_ range: Range<Int>, into flags: UnsafeMutablePointer<UInt32>) {
        let b = bits.pointer
        var i = range.lowerBound
        let lanes = SIMD8<UInt32>(0, 1, 2, 3, 4, 5, 6, 7)
        while i < range.upperBound, i & 7 != 0 {
            flags[i - range.lowerBound] = b[i >> 3] & (1 << UInt8(i & 7)) != 0 ? .max : 0
            i += 1
        }
        while i + 8 <= range.upperBound {
            // Bit l of the byte to lane l, as all ones or zero (arithmetic: SIMD integer comparisons are not
            // vectorized).
            let keep = SIMD8<UInt32>() &- ((SIMD8<UInt32>(repeating: UInt32(b[i >> 3])) &>> lanes) & 1)
            UnsafeMutableRawPointer(flags + (i - range.lowerBound)).storeBytes(of: keep, as: SIMD8<UInt32>.self)
            i += 8
        }
        while i < range.upperBound {
            flags[i - range.lowerBound] = b[i >> 3] & (1 << UInt8(i & 7)) != 0 ? .max : 0
            i += 1
        }
    }
}
