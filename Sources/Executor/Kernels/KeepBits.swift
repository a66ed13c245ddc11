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
        // 32 flags a step: each group of eight masked to its bits of a 32-bit word, the four groups ORed lane by
        // lane and the lanes summed (their bits are disjoint, so the sum is their OR): one horizontal reduction per
        // four bytes instead of one per byte.
        let weights = SIMD8<UInt32>(1, 2, 4, 8, 16, 32, 64, 128)
        while i + 32 <= range.upperBound {
            let f = UnsafeRawPointer(flags + (i - range.lowerBound))
            @inline(__always) func group(_ k: Int) -> SIMD8<UInt32> {
                f.loadUnaligned(fromByteOffset: 32 * k, as: SIMD8<UInt32>.self) & (weights &<< UInt32(8 * k))
            }
            let lanes: SIMD8<UInt32> = group(0) | group(1) | group(2) | group(3)
            UnsafeMutableRawPointer(b + (i >> 3)).storeBytes(of: lanes.wrappedSum().littleEndian, as: UInt32.self)
            i += 32
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

    /// `o[i] = R((kept ? x[i] : 0) · factor)` for `i` in `range` (global indices), straight from the bits: bit `i`
    /// of the kept decisions becomes lane `i mod 8`'s mask, eight elements at a time, so no tile of flags is
    /// written and read back. The same bits as `RandomMask.apply` given the decisions as flags.
    @inline(__always)
    func apply<R: LaneRounding, X: MaskedOperand>(_: R.Type, _ x: X, _ range: Range<Int>, factor: Float,
                                                  into o: UnsafeMutablePointer<Float>) {
        let b = bits.pointer
        @inline(__always) func one(_ i: Int) {
            o[i] = R.round((b[i >> 3] & (1 << UInt8(i & 7)) != 0 ? x[i] : 0) * factor)
        }
        var i = range.lowerBound
        while i < range.upperBound, i & 7 != 0 {
            one(i)
            i += 1
        }
        let lanes = SIMD8<UInt32>(0, 1, 2, 3, 4, 5, 6, 7), f = SIMD8<Float>(repeating: factor)
        while i + 8 <= range.upperBound {
            let keep = SIMD8<UInt32>() &- ((SIMD8<UInt32>(repeating: UInt32(b[i >> 3])) &>> lanes) & 1)
            let v = x.bits(i)
            UnsafeMutableRawPointer(o + i).storeBytes(of: R.round(unsafeBitCast(v & keep, to: SIMD8<Float>.self) * f),
                                                      as: SIMD8<Float>.self)
            i += 8
        }
        while i < range.upperBound {
            one(i)
            i += 1
        }
    }
}
