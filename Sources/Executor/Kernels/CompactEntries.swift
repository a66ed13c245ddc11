import CStoppers

/// Entries of bf16 magnitudes in 2 bytes each, plus a byte for the tracked ones, for a cut whose boundary
/// magnitudes are known beforehand (`TieCut`). An element whose magnitude is not a tracked boundary magnitude holds
/// its 15-bit key (`TaggedEntries.bf16Key`: the magnitude's bf16 bit pattern, NaN `0x7FC0`) and nothing else, since
/// elements of equal key are interchangeable to the sort. A tracked element (its magnitude straddles a cut) holds a
/// tag, `0x8000 | second << 14 | ordinal & 0x3FFF`, whose key is `first` or `second`'s magnitude, and the rest of
/// its ordinal (`ordinal >> 14`, its ordinal among the tracked elements in index order) in the byte of its position
/// in `high`; a move of a tagged entry moves that byte with it. So the replay streams half the bytes of
/// `ShiftedEntries` (it is bound by memory traffic: measured in C on 11.5 M synthetic entries, a first partition
/// took 1.7 ms against 3.7 ms for the 4-byte entries' pairing loop), and its block partition (`mg_block_partition16`) classifies thirty-two keys per
/// AVX-512 comparison and exchanges a pair of blocks' stoppers by compressing and expanding vectors (sixteen keys per
/// AVX2 comparison and the pairs exchanged from lists of offsets where the processor has AVX2 but not AVX-512), for
/// up to 2^22 tracked elements.
struct CompactEntries: ReplayEntries {
    /// The entries, by position.
    let e: UnsafeMutablePointer<UInt16>
    /// By position: the high bits of the ordinal of the tagged entry there (unspecified at untagged positions).
    let high: UnsafeMutablePointer<UInt8>
    /// The keys of tracked elements whose tag has bit 14 clear and set.
    let first: UInt16, second: UInt16
    /// Whether the block partition runs in `mg_block_partition16` (AVX-512 with BW, VBMI and VBMI2, and BMI2, or
    /// AVX2 and POPCNT); the default where the processor has them. Tests turn it off to compare with the Swift block
    /// partition.
    var vectorPartition = CompactEntries.vectorPartitionAvailable
    /// Whether the block partition runs in its AVX2 form (`mg_block_partition16_avx2`) even where the processor has
    /// the AVX-512 one: tests compare both forms with the Swift partition on an AVX-512 machine.
    var avx2Partition = false

    /// Whether this processor runs `mg_block_partition16`, asked once.
    static let vectorPartitionAvailable = mg_block_partition16_available() == 1
    /// Whether this processor runs `mg_block_partition16_avx2` (AVX2 and POPCNT), asked once.
    static let avx2PartitionAvailable = mg_avx2_partition_available() == 1
    /// The tag bit.
    static let tagged: UInt16 = 0x8000
    /// The bit choosing `second`.
    static let secondBit: UInt16 = 0x4000
    /// Ordinal bits in the entry.
    static let lowBits = 14
    /// Most tracked elements (ordinals are below this).
    static let maxTracked = 1 << 22

    /// The tag of the tracked element of ordinal `ordinal` whose key is `second` (else `first`).
    @inline(__always)
    static func tag(ordinal: Int, second: Bool) -> UInt16 {
        tagged | (second ? secondBit : 0) | UInt16(truncatingIfNeeded: ordinal & (1 << lowBits - 1))
    }

    /// An entry as the sort moves it: the 2 bytes and, for a tagged one, its ordinal's high bits.
    struct Entry {
        var bits: UInt16
        var high: UInt8
    }

    @inline(__always) subscript(_ i: Int) -> Entry {
        get {
            let bits = e[i]
            return Entry(bits: bits, high: bits >= Self.tagged ? high[i] : 0)
        }
        nonmutating set {
            e[i] = newValue.bits
            if newValue.bits >= Self.tagged { high[i] = newValue.high }
        }
    }
    @inline(__always) func key(_ i: Int) -> UInt32 { key(of: e[i]) }
    /// The ordinal of a tagged entry.
    @inline(__always) func index(_ i: Int) -> Int {
        Int(e[i] & (Self.secondBit - 1)) | Int(high[i]) << Self.lowBits
    }
    @inline(__always) func swapAt(_ a: Int, _ b: Int) {
        let x = e[a], y = e[b]
        e[a] = y
        e[b] = x
        if (x | y) >= Self.tagged {
            let t = high[a]
            high[a] = high[b]
            high[b] = t
        }
    }
    @inline(__always) func key(of entry: Entry) -> UInt32 { key(of: entry.bits) }
    /// The key of an entry's 2 bytes.
    @inline(__always) func key(of bits: UInt16) -> UInt32 {
        UInt32(bits < Self.tagged ? bits : (bits & Self.secondBit == 0 ? first : second))
    }
    /// `key(of:)` in lanes, by masks from the tag bits.
    @inline(__always) func keys8(_ i: Int) -> SIMD8<UInt32> {
        let v = SIMD8<UInt32>(truncatingIfNeeded: UnsafeRawPointer(e + i).loadUnaligned(as: SIMD8<UInt16>.self))
        let isTagged = SIMD8<UInt32>() &- (v &>> 15), isSecond = SIMD8<UInt32>() &- ((v &>> 14) & 1)
        let tagKey = (SIMD8(repeating: UInt32(first)) & ~isSecond) | (SIMD8(repeating: UInt32(second)) & isSecond)
        return (v & ~isTagged) | (tagKey & isTagged)
    }
    /// By `mg_block_partition16`, which moves the ordinals' high bits with the tagged entries, and writes only the
    /// kept side's half of each exchange when `keep` is one side (its AVX2 form).
    @inline(__always)
    func partitionBlocks(_ start: Int, _ end: Int, pivot: UInt32, leftStopsAtLeast: Bool,
                         keep: TorchArgsortReplay.PartitionSide) -> (Int, Int)? {
        guard vectorPartition else { return nil }
        return withUnsafeTemporaryAllocation(of: Int64.self, capacity: 2) { out -> (Int, Int)? in
            let partition = avx2Partition ? mg_block_partition16_avx2 : mg_block_partition16
            let status = partition(e, high, Int64(start), Int64(end), UInt16(truncatingIfNeeded: pivot),
                                   leftStopsAtLeast ? 1 : 0, first, second, keep.rawValue, out.baseAddress!)
            return status < 0 ? nil : (Int(out[0]), Int(out[1]))
        }
    }
}
