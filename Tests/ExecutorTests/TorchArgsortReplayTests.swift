@testable import Executor
import CStoppers
import Checkpoint
import Foundation
import IR
import XCTest

/// PyTorch's order among equal magnitudes at a magnitude cut: the replay and the `magnitude_prune` kernel against
/// the kept masks torch 2.15.0 computed (`Tests/Fixtures/tiecut`, written by its `make_*fixtures.py` with mergekit
/// 0.1.5's own `sparsify.magnitude` and `magnitude_outliers` as a cross-check).
final class TorchArgsortReplayTests: XCTestCase {
    /// One fixture: mergekit's `w` (|x| as f32), the sorted positions kept, and torch's kept mask.
    struct Fixture {
        var name: String
        var keys: [Float]
        var positions: Range<Int>
        var descending: Bool
        var mask: [Bool]

        /// The ascending ranks `magnitude_prune` is given for these positions.
        var keep: Range<Int> { descending ? (keys.count - positions.upperBound)..<(keys.count - positions.lowerBound) : positions }
        var ties: TieOrder { descending ? .torchDescending : .torchAscending }
    }

    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tiecut").path

    /// Reads every fixture: `TIECUT01` (descending, keeps the first k: u64 n, u64 k, f64 density) and `TIEASC01`
    /// (ascending, keeps lo..<hi: u64 n, u64 lo, u64 hi, f64 density, f64 gamma), then n f32 keys and n mask bytes.
    func fixtures() throws -> [Fixture] {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.folder).filter { $0.hasSuffix(".bin") }.sorted()
        XCTAssertEqual(names.count, 11)
        return try names.map { name in
            let data = try Data(contentsOf: URL(fileURLWithPath: "\(Self.folder)/\(name)"))
            func u64(_ at: Int) -> Int { Int(data.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: UInt64.self) }) }
            let magic = String(decoding: data.prefix(8), as: UTF8.self)
            let n = u64(8)
            let (positions, header): (Range<Int>, Int) = magic == "TIECUT01" ? (0..<u64(16), 32) : (u64(16)..<u64(24), 48)
            XCTAssertTrue(["TIECUT01", "TIEASC01"].contains(magic), name)
            XCTAssertEqual(data.count, header + 5 * n, name)
            let keys = data.withUnsafeBytes { raw in (0..<n).map { raw.loadUnaligned(fromByteOffset: header + 4 * $0, as: Float.self) } }
            let mask = (0..<n).map { data[data.startIndex + header + 4 * n + $0] != 0 }
            return Fixture(name: name, keys: keys, positions: positions, descending: magic == "TIECUT01", mask: mask)
        }
    }

    /// The replay keeps exactly torch's elements, and they are not simply the lowest indices among the tied.
    func testReplayKeepsTorchsElements() throws {
        var differFromIndexOrder = 0
        for f in try fixtures() {
            var entries = f.keys.enumerated().map { TorchArgsortReplay.entry($0.element, index: $0.offset) }
            var bits = [UInt64](repeating: 0, count: (f.keys.count + 63) / 64)
            entries.withUnsafeMutableBufferPointer { e in
                TorchArgsortReplay.select(e.baseAddress!, count: e.count, positions: f.positions, descending: f.descending)
                bits.withUnsafeMutableBufferPointer { TorchArgsortReplay.mark(e.baseAddress!, positions: f.positions, in: $0.baseAddress!) }
            }
            let kept = f.keys.indices.map { bits[$0 / 64] >> UInt64($0 % 64) & 1 == 1 }
            XCTAssertEqual(kept.filter { $0 }.count, f.positions.count, f.name)
            XCTAssertEqual(kept.indices.filter { kept[$0] != f.mask[$0] }.count, 0, f.name)
            let byIndex = try runChunked(.magnitudePrune(keep: f.keep, rescale: false, ties: .index), [f.keys],
                                         shape: [f.keys.count])
            if byIndex.indices.contains(where: { (byIndex[$0] != 0) != f.mask[$0] && f.keys[$0] != 0 }) { differFromIndexOrder += 1 }
        }
        XCTAssertGreaterThanOrEqual(differFromIndexOrder, 5, "half-precision ties make index order differ from torch's")
    }

    /// The kernel keeps torch's elements for any chunking and thread count, rescaled or not.
    func testKernelKeepsTorchsElementsForAnyChunking() throws {
        for f in try fixtures() {
            let n = f.keys.count
            let shape = n % 100 == 0 ? [n / 100, 100] : [n]
            let expected = f.keys.indices.map { f.mask[$0] ? f.keys[$0].bitPattern : 0 }
            let op = Op.magnitudePrune(keep: f.keep, rescale: false, ties: f.ties)
            for (chunkRows, threads) in [(1, 1), (7, 2), (shape[0], 3)] {
                let out = try runChunked(op, [f.keys], shape: shape, threads: threads, chunkRows: chunkRows)
                XCTAssertTrue(out.map(\.bitPattern) == expected, "\(f.name): \(chunkRows) rows, \(threads) threads")
            }
            try assertChunkInvariant(.magnitudePrune(keep: f.keep, rescale: true, ties: f.ties), [f.keys], shape: shape,
                                     dtype: .bf16)
            // Holding a bf16 or f16 operand (stored as it is gathered, read in place in the sweep): the same bytes.
            for dtype in [DType.bf16, .f16] {
                let values = f.keys.map { DTypeConversion.round($0, to: dtype) }
                for rescale in [false, true] {
                    try assertChunkInvariant(.magnitudePrune(keep: f.keep, rescale: rescale, ties: f.ties), [values],
                                             shape: shape, dtype: dtype, holding: true)
                }
                try assertStateMatchesDeclaredCost(.magnitudePrune(keep: f.keep, rescale: true, ties: f.ties), operands: 1,
                                                   shape: shape, chunkRows: 3, dtype: dtype, holding: true)
            }
        }
    }

    /// Signs do not matter (w is |x|); NaN sorts above +∞ both ways; without equal magnitudes at a cut, PyTorch's
    /// order keeps what index order keeps.
    func testSignsNaNAndDistinctMagnitudes() throws {
        let x: [Float] = [-3, .nan, 2, -.infinity, 1, -0.0, 0, -Float.nan]
        // Descending: NaN, NaN, ∞, 3, 2, 1, 0, 0 — the two largest are both NaNs.
        let top2 = try runChunked(.magnitudePrune(keep: 6..<8, rescale: false, ties: .torchDescending), [x], shape: [8])
        XCTAssertEqual(top2.indices.filter { !top2[$0].isNaN && top2[$0] != 0 }, [])
        XCTAssertEqual(top2.indices.filter { top2[$0].isNaN }, [1, 7])
        // Ascending: 0, 0, 1, 2, 3, ∞, NaN, NaN; positions 2..<6 are 1, 2, 3, ∞.
        let middle = try runChunked(.magnitudePrune(keep: 2..<6, rescale: false, ties: .torchAscending), [x], shape: [8])
        XCTAssertEqual(middle.map(\.bitPattern), [Float(-3), 0, 2, -.infinity, 1, 0, 0, 0].map(\.bitPattern))
        let distinct: [Float] = (0..<5000).map { (i: Int) -> Float in
            let sign: Float = i % 2 == 0 ? 1 : -1
            return sign * Float(i * 7919 % 5003)
        }
        for keep in [2500..<5000, 0..<1234, 100..<4000] {
            let index = try runChunked(.magnitudePrune(keep: keep, rescale: true, ties: .index), [distinct], shape: [50, 100])
            for ties in [TieOrder.torchDescending, .torchAscending] {
                let torch = try runChunked(.magnitudePrune(keep: keep, rescale: true, ties: ties), [distinct], shape: [50, 100],
                                           threads: 2, chunkRows: 3)
                XCTAssertEqual(torch.map(\.bitPattern), index.map(\.bitPattern), "\(keep) \(ties)")
            }
        }
    }

    /// Every magnitude equal: torch 2.15.0's `argsort(torch.full((40,), 0.5), descending=True)[:20]` is indices 20..<40
    /// (index order would keep 0..<20), whatever the chunking.
    func testAllEqualMagnitudes() throws {
        let x = (0..<40).map { Float($0 % 2 == 0 ? 0.5 : -0.5) }
        let out = try runChunked(.magnitudePrune(keep: 20..<40, rescale: false, ties: .torchDescending), [x], shape: [8, 5],
                                 chunkRows: 1)
        XCTAssertEqual(out.indices.filter { out[$0] != 0 }, Array(20..<40))
        try assertChunkInvariant(.magnitudePrune(keep: 20..<40, rescale: true, ties: .torchDescending), [x], shape: [8, 5])
    }

    /// bf16 operands take the 4-byte tagged layout (`TieCut`): it keeps torch's elements on every bf16 fixture,
    /// whatever the chunking and thread count.
    func testTaggedLayoutKeepsTorchsElements() throws {
        var bf16Fixtures = 0
        for f in try fixtures() where f.keys.allSatisfy({ $0.bitPattern & 0xFFFF == 0 }) {
            bf16Fixtures += 1
            let n = f.keys.count
            let shape = n % 100 == 0 ? [n / 100, 100] : [n]
            let expected = f.keys.indices.map { f.mask[$0] ? f.keys[$0].bitPattern : 0 }
            let op = Op.magnitudePrune(keep: f.keep, rescale: false, ties: f.ties)
            for (chunkRows, threads) in [(1, 1), (7, 2), (shape[0], 3)] {
                let out = try runChunked(op, [f.keys], shape: shape, dtype: .bf16, threads: threads, chunkRows: chunkRows,
                                         operandDType: .bf16)
                XCTAssertTrue(out.map(\.bitPattern) == expected, "\(f.name): \(chunkRows) rows, \(threads) threads")
            }
        }
        XCTAssertGreaterThanOrEqual(bf16Fixtures, 5)
    }

    /// NaN sorts above +∞ in both layouts (one canonical NaN key, whatever its sign and payload): cuts inside the
    /// NaNs and inside the infinities keep the same elements packed and tagged.
    func testTaggedLayoutOrdersNaNAboveInfinity() throws {
        let nans = [Float.nan, -Float.nan, Float(bitPattern: 0x7FC1_0000), Float(bitPattern: 0xFF81_0000)]
        let x = (0..<3000).map { i -> Float in
            switch (i * 7919) % 5 {
            case 0, 1: return nans[i % 4]
            case 2: return i % 2 == 0 ? .infinity : -.infinity
            default: return Float(bitPattern: (Float(i % 97 + 1) * 0.01).bitPattern & 0xFFFF_0000)
            }
        }
        for keep in [1500..<3000, 2000..<3000, 700..<2900] {
            for ties in [TieOrder.torchDescending, .torchAscending] {
                let op = Op.magnitudePrune(keep: keep, rescale: false, ties: ties)
                let packed = try runChunked(op, [x], shape: [30, 100], threads: 2, chunkRows: 7)
                let tagged = try runChunked(op, [x], shape: [30, 100], threads: 2, chunkRows: 7, operandDType: .bf16)
                XCTAssertTrue(packed.map(\.bitPattern) == tagged.map(\.bitPattern), "\(keep) \(ties)")
            }
        }
    }

    /// The partition's keys eight at a time (`keys8`) are each layout's keys one at a time, tagged entries of both
    /// tracked magnitudes included.
    func testLaneKeysAreTheKeys() {
        var rng = SystemRandomNumberGenerator()
        let n = 64
        let packed = UnsafeMutablePointer<UInt64>.allocate(capacity: n)
        let words = UnsafeMutablePointer<UInt32>.allocate(capacity: n)
        defer { packed.deallocate(); words.deallocate() }
        for i in 0..<n {
            let x = Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &rng))
            packed[i] = TorchArgsortReplay.entry(x, index: i)
        }
        let p = PackedEntries(e: packed)
        for i in 0...(n - 8) { XCTAssertEqual(p.keys8(i), SIMD8((0..<8).map { p.key(i + $0) }), "packed at \(i)") }
        for i in 0..<n { words[i] = UInt32.random(in: 0...UInt32.max, using: &rng) }
        let shifted = ShiftedEntries(e: words)
        for i in 0...(n - 8) { XCTAssertEqual(shifted.keys8(i), SIMD8((0..<8).map { shifted.key(i + $0) }), "shifted at \(i)") }
        for i in 0..<n {
            words[i] = [UInt32.random(in: 0...0x7FC0, using: &rng), TaggedEntries.tagged | UInt32(i),
                        TaggedEntries.tagged | TaggedEntries.secondBit | UInt32(i)][i % 3]
        }
        let tagged = TaggedEntries(e: words, first: 0x3F80, second: 0x4000)
        for i in 0...(n - 8) { XCTAssertEqual(tagged.keys8(i), SIMD8((0..<8).map { tagged.key(i + $0) }), "tagged at \(i)") }
    }

    /// The tagged layout and the packed one keep the same elements: random bf16 magnitudes (a few hundred levels,
    /// so thousands tie at each cut), a cut with more than 2^17 tied elements (the `TaggedEntries` path), one with
    /// no ties at the cut (no replay), both orders, rescaled or not.
    func testTaggedAndPackedLayoutsAgree() throws {
        var rng = SystemRandomNumberGenerator()
        let levels: [Float] = (0..<300).map { Float(bitPattern: (Float(0.01) * Float($0 + 1) / 300).bitPattern & 0xFFFF_0000) }
        let random = (0..<60_000).map { _ in levels.randomElement(using: &rng)! * (Bool.random(using: &rng) ? 1 : -1) }
        // 450,000 elements in three magnitudes: every cut inside the middle one ties 150,000 elements.
        let three = (0..<450_000).map { i -> Float in [0.25, 0.5, -1.0][(i * 7919) % 3] }
        // 600,000 in four: cuts inside the second and third tie 300,000 elements of two magnitudes (`TaggedEntries`
        // with both tags).
        let four = (0..<600_000).map { i -> Float in [0.25, -0.5, 1.0, 2.0][(i * 7919) % 4] }
        let distinct = (0..<5000).map { Float(bitPattern: (Float($0 + 1) * 0.001).bitPattern & 0xFFFF_0000) }
        let cases: [([Float], [Int], Range<Int>)] = [
            (random, [600, 100], 30_000..<60_000), (random, [60_000], 11_111..<49_999),
            (three, [4500, 100], 200_000..<450_000), (three, [450_000], 190_000..<260_000),
            (four, [600_000], 200_000..<400_000),
            (distinct.shuffled(using: &rng), [50, 100], 2500..<5000),
        ]
        for (x, shape, keep) in cases {
            for ties in [TieOrder.torchDescending, .torchAscending] {
                for rescale in [false, true] {
                    let op = Op.magnitudePrune(keep: keep, rescale: rescale, ties: ties)
                    let packed = try runChunked(op, [x], shape: shape, threads: 2, chunkRows: max(1, shape[0] / 3))
                    let tagged = try runChunked(op, [x], shape: shape, threads: 2, chunkRows: max(1, shape[0] / 3),
                                                operandDType: .bf16)
                    XCTAssertTrue(packed.map(\.bitPattern) == tagged.map(\.bitPattern), "\(x.count) \(keep) \(ties) \(rescale)")
                    XCTAssertEqual(tagged.filter { $0 != 0 }.count, keep.count, "\(x.count) \(keep) \(ties)")
                }
            }
        }
    }

    /// The block partition's AVX-512 classification (`mg_stopper_offsets`) finds the stoppers the eight-key Swift
    /// loop finds, so the replay moves the same entries: offsets of random blocks against a scalar reference, both
    /// bounds and both scan directions; and `select` on random shifted entries (a few hundred keys, so that many
    /// tie) leaves the same permutation with it as without it, both orders, cuts at one end and at two.
    func testVectorStoppersAreTheScalarStoppers() throws {
        try XCTSkipUnless(TorchArgsortReplay.vectorStoppers, "no AVX-512F here: the Swift classification is the only one")
        var rng = SystemRandomNumberGenerator()
        let words = UnsafeMutablePointer<UInt32>.allocate(capacity: 256)
        let out = UnsafeMutablePointer<UInt8>.allocate(capacity: 256)
        defer { words.deallocate(); out.deallocate() }
        for round in 0..<200 {
            let count = 16 * Int.random(in: 1...16, using: &rng)
            for i in 0..<count { words[i] = UInt32.random(in: 0...(UInt32(round % 7) << 17 + 0x7FFFF), using: &rng) }
            let pivot = UInt32.random(in: 0...(UInt32(round % 7) + 3), using: &rng)
            for atLeast in [false, true] {
                for reversed in [false, true] {
                    let entries = ShiftedEntries(e: words)
                    let n = try XCTUnwrap(entries.stopperOffsets(from: 0, count: count, pivot: pivot, atLeast: atLeast,
                                                                 reversed: reversed, into: out))
                    let expected = (0..<count).filter { j in
                        let key = entries.key(reversed ? count - 1 - j : j)
                        return atLeast ? key >= pivot : key <= pivot
                    }
                    XCTAssertEqual((0..<n).map { Int(out[$0]) }, expected, "\(count) \(atLeast) \(reversed)")
                }
            }
        }
        let n = 300_000
        let vector = UnsafeMutablePointer<UInt32>.allocate(capacity: n)
        let scalar = UnsafeMutablePointer<UInt32>.allocate(capacity: n)
        defer { vector.deallocate(); scalar.deallocate() }
        for (positions, descending) in [(0..<150_000, true), (70_000..<290_000, false), (1000..<n, true)] {
            for i in 0..<n {
                vector[i] = UInt32.random(in: 0..<400, using: &rng) << ShiftedEntries.ordinalBits | UInt32(i % (1 << 17))
                scalar[i] = vector[i]
            }
            TorchArgsortReplay.select(ShiftedEntries(e: vector), count: n, positions: positions, descending: descending)
            TorchArgsortReplay.select(ShiftedEntries(e: scalar, vectorStoppers: false), count: n, positions: positions,
                                      descending: descending)
            XCTAssertTrue(UnsafeBufferPointer(start: vector, count: n).elementsEqual(UnsafeBufferPointer(start: scalar, count: n)),
                          "\(positions) \(descending)")
        }
    }

    /// A generator with a fixed seed (SplitMix64), so that a failing case can be run again.
    struct SeededGenerator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// `v` truncated to a bf16 value.
    static func bf16(_ v: Float) -> Float { Float(bitPattern: v.bitPattern & 0xFFFF_0000) }

    /// `n` bf16 values of `count` magnitudes (0.001, 0.002, …), each drawn with a random sign: many equal magnitudes.
    static func levels(_ count: Int, _ n: Int, _ rng: inout SeededGenerator) -> [Float] {
        let magnitudes = (0..<count).map { bf16(Float(0.001) * Float($0 + 1)) }
        return (0..<n).map { _ in magnitudes.randomElement(using: &rng)! * (Bool.random(using: &rng) ? 1 : -1) }
    }

    /// Two bf16 tensors of `n` gaussian values for the windowed count: one alike throughout (scale 0.01), and one
    /// whose sample (its first quarter) is ten times smaller than the rest, so that the windows miss the cuts.
    func windowTestTensors(_ n: Int, _ rng: inout SeededGenerator) -> (alike: [Float], unlike: [Float]) {
        func gaussian(_ scale: Float) -> Float {
            let u = Double.random(in: 0.000001..<1, using: &rng), v = Double.random(in: 0..<1, using: &rng)
            return Float(bitPattern: (Float((-2 * log(u)).squareRoot() * cos(2 * .pi * v)) * scale).bitPattern & 0xFFFF_0000)
        }
        let alike = (0..<n).map { _ in gaussian(0.01) }
        return (alike, (0..<n).map { i in gaussian(i < n / 4 ? 0.001 : 0.01) })
    }

    /// What a decided `TieCut` keeps of bf16 values `x` (f32 holding bf16 values) at ascending ranks `keep`: the
    /// replay on 2-byte entries with its block partition in C (`compact`, `vector`), in Swift (`compact`, not
    /// `vector`), or on 4-byte entries (not `compact`); gathered in chunks of 1000 elements on two threads.
    func tieCutKeeps(_ x: [Float], keep: Range<Int>, descending: Bool, compact: Bool, vector: Bool,
                     windowed: Bool = false, chunk: Int = 1000) -> [Bool] {
        tieCut(x, keep: keep, descending: descending, compact: compact, vector: vector, windowed: windowed,
               chunk: chunk).kept
    }

    /// `tieCutKeeps`, and whether the cut counted the whole tensor again (`TieCut.recounted`). `deferred`: the cut
    /// gathers into a held plane (`TieCut.deferred`), which must then hold `x`'s bf16 bits.
    func tieCut(_ x: [Float], keep: Range<Int>, descending: Bool, compact: Bool, vector: Bool,
                windowed: Bool = false, chunk: Int = 1000, deferred: Bool = false) -> (kept: [Bool], recounted: Bool) {
        let n = x.count
        let memory = MemoryAccount()
        let cut = TieCut(keep: keep, descending: descending, elementCount: n, operand: .bf16, threads: 2,
                         memory: memory, deferred: deferred)
        XCTAssertEqual(cut.deferred, deferred)
        cut.compactReplay = compact
        cut.vectorPartition = vector
        cut.windowedCount = windowed
        let plane = UnsafeMutablePointer<UInt16>.allocate(capacity: max(1, n))
        defer { plane.deallocate() }
        let filling = deferred ? HeldOperand.Filling(plane: SendablePointer(plane), dtype: .bf16) : nil
        x.withUnsafeBufferPointer { b in
            for start in stride(from: 0, to: n, by: chunk) {
                cut.gather(b.baseAddress!, start..<min(n, start + chunk), parallel: Parallel(threads: 2), filling: filling)
            }
        }
        let gathered = memory.liveBytes
        if deferred {
            XCTAssertLessThan(gathered, TieCut.passBytes(operand: .bf16, elementCount: n, threads: 2) - 3 * n,
                              "a deferred cut keeps no entries while it gathers")
            XCTAssertEqual((0..<n).filter { plane[$0] != UInt16(truncatingIfNeeded: x[$0].bitPattern >> 16) }, [])
        }
        cut.decide()?.run()
        if deferred {
            XCTAssertLessThanOrEqual(memory.liveBytes, gathered, "the entries are given back by the replay's end")
            XCTAssertLessThanOrEqual(memory.peakBytes, gathered + TieCut.finishBytes(elementCount: n))
        }
        cut.endPass()
        let test = cut.test, bits = UnsafePointer(cut.kept.pointer)
        return ((0..<n).map { test.mask(x[$0], bits, $0) != 0 }, cut.recounted)
    }

    /// A deferred cut (`TieCut.deferred`: its prune holds the operand as bf16; only the keys' counts in the pass,
    /// the entries taken from the held plane when the sort is replayed, given back at its end) keeps what the cut
    /// gathering its entries keeps: TIES and breadcrumbs cuts, fewer and more than 2^14 tracked elements, NaN and
    /// infinities at the cut, a cut with no magnitude straddling it (nothing replayed), and large tensors counted
    /// in windows, with and without a recount.
    func testDeferredCutKeepsWhatTheGatheringCutKeeps() {
        var rng = SeededGenerator(state: 23)
        func levels(_ count: Int, _ n: Int) -> [Float] { TorchArgsortReplayTests.levels(count, n, &rng) }
        var special = levels(4, 5000)
        for i in stride(from: 0, to: special.count, by: 7) { special[i] = [Float.nan, -.nan, .infinity, -.infinity][i % 4] }
        // A fifth NaN of several payloads (all equal to the sort), so that the breadcrumbs cut straddles them.
        var nans = levels(30, 5000)
        for i in stride(from: 0, to: nans.count, by: 5) {
            nans[i] = Float(bitPattern: [0x7FC0_0000, 0x7F81_0000, 0xFFA0_0000, 0x7FFF_0000][(i / 5) % 4])
        }
        let distinct = (0..<4096).map { Self.bf16(Float($0 + 1)) * ($0 % 3 == 0 ? -1 : 1) }
        let cases: [(String, [Float])] = [("few", levels(50, 20_000)), ("many", levels(3, 100_000)),
                                          ("special", special), ("nans", nans), ("distinct", distinct)]
        for (name, x) in cases {
            let n = x.count
            for (keep, descending) in [((n / 2)..<n, true), ((n / 10)..<(n * 9 / 10), false), (0..<(n / 3), false)] {
                let gathering = tieCutKeeps(x, keep: keep, descending: descending, compact: true, vector: true)
                XCTAssertEqual(gathering.filter { $0 }.count, keep.count, "\(name) \(keep)")
                // The compact replay fills and tags the keys block by block, the widened one fills them all first.
                for (chunk, compact) in [(1000, true), (777, true), (1000, false)] {
                    let deferred = tieCut(x, keep: keep, descending: descending, compact: compact, vector: true,
                                          chunk: chunk, deferred: true).kept
                    XCTAssertTrue(deferred == gathering, "\(name) \(keep) \(descending) chunk \(chunk) compact \(compact)")
                }
            }
        }
        let n = 1 << 20
        let (alike, unlike) = windowTestTensors(n, &rng)
        for (name, x) in [("alike", alike), ("unlike", unlike)] {
            for (keep, descending) in [((n / 2)..<n, true), ((n / 10)..<(n * 99 / 100), false)] {
                let gathering = tieCut(x, keep: keep, descending: descending, compact: true, vector: true,
                                       windowed: true, chunk: 65536)
                let deferred = tieCut(x, keep: keep, descending: descending, compact: true, vector: true,
                                      windowed: true, chunk: 65536, deferred: true)
                XCTAssertTrue(deferred.kept == gathering.kept, "\(name) \(keep) \(descending)")
                XCTAssertEqual(deferred.recounted, gathering.recounted, "\(name) \(keep)")
            }
        }
    }

    /// The replay on 2-byte entries (`CompactEntries`: the tracked elements' ordinals in 14 bits of the entry and a
    /// byte beside it) keeps what the 4-byte replay keeps, with its block partition in C (`mg_block_partition16`)
    /// and in Swift: TIES cuts (descending, one tracked magnitude) and breadcrumbs cuts (ascending, two), with fewer
    /// than 2^14 tracked elements and with more (the ordinals' high byte in use), all magnitudes equal, and NaN and
    /// infinities at the cut; the 4-byte replay with its two layouts (more than 2^17 elements tracked when all are equal).
    func testCompactReplayKeepsWhatTheWidenedReplayKeeps() {
        var rng = SeededGenerator(state: 15)
        func levels(_ count: Int, _ n: Int) -> [Float] { TorchArgsortReplayTests.levels(count, n, &rng) }
        let gaussian = (0..<300_000).map { _ -> Float in
            let u = Double.random(in: 0.000001..<1, using: &rng), v = Double.random(in: 0..<1, using: &rng)
            return Self.bf16(Float((-2 * log(u)).squareRoot() * cos(2 * .pi * v) * 0.01))
        }
        let special = (0..<50_000).map { i -> Float in
            [Float.nan, .infinity, -.infinity, 0.5, -0.25][(i &* 7919) % 5]
        }
        let cases: [(String, [Float], [Range<Int>])] = [
            ("gaussian", gaussian, [150_000..<300_000, 270_000..<300_000, 3000..<297_000]),
            ("eight levels", levels(8, 200_000), [100_000..<200_000, 20_000..<190_000]),
            ("300 levels", levels(300, 100_000), [50_000..<100_000, 10_000..<99_000]),
            ("all equal", [Float](repeating: 0.5, count: 140_000), [70_000..<140_000, 1000..<139_000]),
            ("special", special, [25_000..<50_000, 5_000..<45_000, 30_001..<40_001]),
        ]
        for (name, x, keeps) in cases {
            for keep in keeps {
                for descending in [true, false] {
                    let widened = tieCutKeeps(x, keep: keep, descending: descending, compact: false, vector: false)
                    XCTAssertEqual(widened.filter { $0 }.count, keep.count, "\(name) \(keep) \(descending)")
                    for vector in [true, false] {
                        let compact = tieCutKeeps(x, keep: keep, descending: descending, compact: true, vector: vector)
                        XCTAssertTrue(compact == widened, "\(name) \(keep) descending \(descending) vector \(vector)")
                    }
                }
            }
        }
    }

    /// `mg_block_partition16` makes the Swift block partition's exchanges on 2-byte entries, tagged ones (of two
    /// tracked keys) and their bytes of ordinals' high bits included: `select` on random entries leaves the same
    /// entries, and the same byte at every tagged position, with it as without it.
    func testCompactVectorPartitionIsTheSwiftPartition() throws {
        try XCTSkipUnless(CompactEntries.vectorPartitionAvailable, "no AVX-512 VBMI2 or AVX2 here: the Swift partition is the only one")
        compareCompactPartitions(avx2: false)
    }

    /// The AVX2 form of `mg_block_partition16` (the one processors without AVX-512 run) makes the same exchanges as
    /// the Swift block partition too, whichever form the processor would choose.
    func testCompactAVX2PartitionIsTheSwiftPartition() throws {
        try XCTSkipUnless(CompactEntries.avx2PartitionAvailable, "no AVX2 and POPCNT here")
        compareCompactPartitions(avx2: true)
    }

    /// Partitions that write only the side of their cut read again (`TorchArgsortReplay.BoundaryKeys`, the AVX2
    /// block partition's `keep`) leave the same tracked elements at the wanted positions as full exchanges (the Swift
    /// partition), for one wanted end inside the array or two, ascending and descending, the tracked keys being the
    /// keys at the wanted ends as in `TieCut`; and they do leave other entries than full exchanges do (the
    /// one-sided path ran).
    func testOneSidedPartitionsKeepTheTrackedElementsOfFullExchanges() throws {
        try XCTSkipUnless(CompactEntries.avx2PartitionAvailable, "no AVX2 and POPCNT here")
        var rng = SeededGenerator(state: 23)
        let n = 300_000
        var differed = 0
        let cases: [(Range<Int>, Bool)] = [(0..<150_000, true), (0..<150_001, false), (1000..<n, true), (1000..<n, false),
                                           (60_000..<240_000, false), (60_000..<240_000, true), (7..<8, false)]
        for (positions, descending) in cases {
            let keys = (0..<n).map { _ in UInt16.random(in: 0..<500, using: &rng) }
            let sorted = keys.sorted(by: descending ? { $0 > $1 } : { $0 < $1 })
            let atLow = sorted[positions.lowerBound], atHigh = sorted[positions.upperBound - 1]
            let first = positions.lowerBound > 0 ? atLow : atHigh
            let second = positions.upperBound < n ? atHigh : atLow
            let e = UnsafeMutablePointer<UInt16>.allocate(capacity: 2 * n)
            let high = UnsafeMutablePointer<UInt8>.allocate(capacity: 2 * n)
            defer { e.deallocate(); high.deallocate() }
            var tracked = 0
            for i in 0..<n {
                let tag = keys[i] == first || keys[i] == second
                e[i] = tag ? CompactEntries.tag(ordinal: i, second: keys[i] != first) : keys[i]
                high[i] = UInt8(truncatingIfNeeded: i >> CompactEntries.lowBits)
                e[n + i] = e[i]
                high[n + i] = high[i]
                tracked += tag ? 1 : 0
            }
            var oneSided = CompactEntries(e: e, high: high, first: first, second: second)
            oneSided.avx2Partition = true
            let full = CompactEntries(e: e + n, high: high + n, first: first, second: second, vectorPartition: false)
            let bounds = TorchArgsortReplay.BoundaryKeys(atLow: UInt32(atLow), atHigh: UInt32(atHigh),
                                                         first: UInt32(first), second: UInt32(second))
            TorchArgsortReplay.select(oneSided, count: n, positions: positions, descending: descending, bounds: bounds)
            TorchArgsortReplay.select(full, count: n, positions: positions, descending: descending)
            func trackedAt(_ entries: CompactEntries) -> [Int] {
                positions.filter { entries.e[$0] >= CompactEntries.tagged }.map { entries.index($0) }.sorted()
            }
            let expected = trackedAt(full)
            XCTAssertEqual(trackedAt(oneSided), expected, "\(positions) descending \(descending)")
            XCTAssertTrue(expected.count > 0 && expected.count < tracked, "the cut splits the tracked elements")
            differed += UnsafeBufferPointer(start: e, count: n).elementsEqual(UnsafeBufferPointer(start: e + n, count: n))
                ? 0 : 1
        }
        XCTAssertGreaterThan(differed, cases.count / 2, "the partitions wrote one side")
    }

    /// One Hoare partition (`Sorter.unguardedPartition`) whose block phase writes one side (the AVX2 block
    /// partition's `keep`) returns the cut of the full exchanges and leaves the kept side entry for entry as they do,
    /// tagged entries and their ordinals' high bits included, for pivots from the lowest to the highest keys (where
    /// one scan passes almost everything and the other side's stale entries lie in its way), both directions.
    func testOneSidedBlockPartitionMakesTheFullCutAndKeptSide() throws {
        try XCTSkipUnless(CompactEntries.avx2PartitionAvailable, "no AVX2 and POPCNT here")
        var rng = SeededGenerator(state: 24)
        let n = 20_000
        let first: UInt16 = 300, second: UInt16 = 301
        for quantile in [0.0005, 0.01, 0.2, 0.5, 0.8, 0.99, 0.9995] {
            for descending in [true, false] {
                for side in [TorchArgsortReplay.PartitionSide.left, .right] {
                    let keys = (0..<n).map { _ in UInt16.random(in: 0..<1000, using: &rng) }
                    let pivot = keys.sorted()[Int(quantile * Double(n))]
                    let e = UnsafeMutablePointer<UInt16>.allocate(capacity: 2 * n)
                    let high = UnsafeMutablePointer<UInt8>.allocate(capacity: 2 * n)
                    defer { e.deallocate(); high.deallocate() }
                    for i in 0..<n {
                        // The pivot at both ends guards both scans, as the median of three does in the sort.
                        let key = i == 0 || i == n - 1 ? pivot : keys[i]
                        let tag = key == first || key == second
                        e[i] = tag ? CompactEntries.tag(ordinal: i, second: key == second) : key
                        high[i] = UInt8(truncatingIfNeeded: i >> CompactEntries.lowBits)
                        e[n + i] = e[i]
                        high[n + i] = high[i]
                    }
                    var oneSided = CompactEntries(e: e, high: high, first: first, second: second)
                    oneSided.avx2Partition = true
                    let full = CompactEntries(e: e + n, high: high + n, first: first, second: second,
                                              vectorPartition: false)
                    let cuts: (Int, Int)
                    if descending {
                        cuts = (TorchArgsortReplay.Sorter<TorchArgsortReplay.Descending, CompactEntries>(
                                    e: oneSided, lo: 0, hi: n, bounds: nil)
                                    .unguardedPartition(1, n, UInt32(pivot), keep: side),
                                TorchArgsortReplay.Sorter<TorchArgsortReplay.Descending, CompactEntries>(
                                    e: full, lo: 0, hi: n, bounds: nil).unguardedPartition(1, n, UInt32(pivot)))
                    } else {
                        cuts = (TorchArgsortReplay.Sorter<TorchArgsortReplay.Ascending, CompactEntries>(
                                    e: oneSided, lo: 0, hi: n, bounds: nil)
                                    .unguardedPartition(1, n, UInt32(pivot), keep: side),
                                TorchArgsortReplay.Sorter<TorchArgsortReplay.Ascending, CompactEntries>(
                                    e: full, lo: 0, hi: n, bounds: nil).unguardedPartition(1, n, UInt32(pivot)))
                    }
                    let label = "quantile \(quantile) descending \(descending) keep \(side)"
                    XCTAssertEqual(cuts.0, cuts.1, label)
                    let kept = side == .left ? 0..<cuts.1 : cuts.1..<n
                    XCTAssertEqual(kept.filter { e[$0] != e[n + $0] }, [], label)
                    XCTAssertEqual(kept.filter { e[$0] >= CompactEntries.tagged && high[$0] != high[n + $0] }, [], label)
                }
            }
        }
    }

    private func compareCompactPartitions(avx2: Bool) {
        var rng = SeededGenerator(state: 16)
        let n = 250_000
        let first: UInt16 = 180, second: UInt16 = 220
        for (positions, descending) in [(0..<125_000, true), (60_000..<240_000, false), (1000..<n, true), (7..<8, false)] {
            let e = UnsafeMutablePointer<UInt16>.allocate(capacity: 2 * n)
            let high = UnsafeMutablePointer<UInt8>.allocate(capacity: 2 * n)
            defer { e.deallocate(); high.deallocate() }
            for i in 0..<n {
                let key = UInt16.random(in: 0..<400, using: &rng)
                let tag = key == first || key == second
                e[i] = tag ? CompactEntries.tag(ordinal: i, second: key == second) : key
                e[n + i] = e[i]
                high[i] = tag ? UInt8(truncatingIfNeeded: i >> CompactEntries.lowBits) : UInt8.random(in: 0...255, using: &rng)
                high[n + i] = high[i]
            }
            var vector = CompactEntries(e: e, high: high, first: first, second: second)
            vector.avx2Partition = avx2
            let swift = CompactEntries(e: e + n, high: high + n, first: first, second: second, vectorPartition: false)
            TorchArgsortReplay.select(vector, count: n, positions: positions, descending: descending)
            TorchArgsortReplay.select(swift, count: n, positions: positions, descending: descending)
            XCTAssertTrue(UnsafeBufferPointer(start: e, count: n).elementsEqual(UnsafeBufferPointer(start: e + n, count: n)),
                          "\(positions) \(descending)")
            XCTAssertEqual((0..<n).filter { e[$0] >= CompactEntries.tagged && vector.index($0) != swift.index($0) }, [],
                           "\(positions) \(descending)")
            // Every tracked element is still there exactly once.
            let ordinals = (0..<n).filter { e[$0] >= CompactEntries.tagged }.map { vector.index($0) }
            XCTAssertEqual(Set(ordinals).count, ordinals.count)
        }
    }

    /// `mg_window_count16` in AVX2 (`mg_window_count16_avx2`, on any AVX2 processor) and in whatever form this
    /// processor runs count what the definition counts, key by key: keys at and beside the windows' bounds, two
    /// windows, an empty second window (everything above the first is "between"), lengths that leave a tail.
    func testWindowCountAVX2IsTheScalarCount() throws {
        try XCTSkipUnless(mg_window_count16_avx2_available() == 1, "no AVX2 here")
        var rng = SeededGenerator(state: 18)
        let n = 10_000
        let keys = (0..<n).map { i -> UInt16 in
            i % 3 == 0 ? UInt16.random(in: 0..<0x8000, using: &rng) : UInt16.random(in: 0x3A00..<0x3D00, using: &rng)
        }
        let windows: [(UInt16, UInt16, UInt16, UInt16)] = [
            (0x3B00, 0x3B40, 0x3C00, 0x3C20), (0x3B00, 0x3B00, 0x3B01, 0x3B01), (0x3B80, 0x3BFF, 0x8000, 0x7FFF),
            (0, 0x3A80, 0x3C00, 0x7FFF), (0x3C10, 0x3C10, 0x8000, 0x7FFF),
        ]
        for (lo1, hi1, lo2, hi2) in windows {
            for count in [0, 31, 32, 33, 1000, n - 7, n] {
                var expected = [Int64](repeating: 3, count: 0x8000), expectedGaps: [Int64] = [5, 7]
                for k in keys[0..<count] {
                    if k < lo1 { expectedGaps[0] += 1 }
                    else if k <= hi1 { expected[Int(k)] += 1 }
                    else if k < lo2 { expectedGaps[1] += 1 }
                    else if k <= hi2 { expected[Int(k)] += 1 }
                }
                for (name, form) in [("avx2", mg_window_count16_avx2), ("dispatched", mg_window_count16)] {
                    var table = [Int64](repeating: 3, count: 0x8000), gaps: [Int64] = [5, 7]
                    XCTAssertEqual(form(keys, Int64(count), lo1, hi1, lo2, hi2, &table, &gaps), 0)
                    XCTAssertTrue(table == expected, "\(name) \(lo1) \(hi1) \(lo2) \(hi2) \(count)")
                    XCTAssertEqual(gaps, expectedGaps, "\(name) \(lo1) \(hi1) \(lo2) \(hi2) \(count)")
                }
            }
        }
    }

    /// `mg_tag_tracked16`, sixteen at a time (AVX2, where the processor has it) and one by one, makes the entries
    /// `TieCut.decide` defines: every key filled from a bf16 plane (NaNs of both signs and payloads made 0x7FC0) or
    /// already in place, each element of a tracked key tagged with the next ordinal in index order (`CompactEntries.tag`),
    /// its ordinal's high bits in `high` and its bit set in `bits`, nothing else written; one tracked key or two, ranges
    /// whose ends leave tails, a first ordinal above 2^14.
    func testTrackedTagsAreTheDefinedTags() {
        var rng = SeededGenerator(state: 25)
        let n = 5000
        let plane = (0..<n).map { i -> UInt16 in
            switch i % 5 {
            case 0: return UInt16.random(in: 0...0xFFFF, using: &rng)
            case 1: return [0x7F80, 0xFF80, 0x7FC1, 0xFFFF, 0x7F81][Int.random(in: 0..<5, using: &rng)]
            default: return UInt16.random(in: 0x3C00..<0x3C08, using: &rng) | (Bool.random(using: &rng) ? 0x8000 : 0)
            }
        }
        let keys = plane.map(TieCut.key)
        for (first, second) in [(UInt16(0x3C03), UInt16(0x3C03)), (0x3C01, 0x3C06), (0x7FC0, 0x7F80)] {
            for range in [0..<n, 1..<(n - 1), 17..<50, 100..<100, 3..<(n - 31)] {
                for fromPlane in [true, false] {
                    let start = 20_000
                    var e = fromPlane ? [UInt16](repeating: 0x1234, count: n) : keys
                    var high = [UInt8](repeating: 0xEE, count: n)
                    var bits = [UInt64](repeating: 0, count: (n + 63) / 64)
                    var ordinal = start
                    for i in range {
                        e[i] = keys[i]
                        guard keys[i] == first || keys[i] == second else { continue }
                        e[i] = CompactEntries.tag(ordinal: ordinal, second: keys[i] != first)
                        high[i] = UInt8(truncatingIfNeeded: ordinal >> CompactEntries.lowBits)
                        bits[i >> 6] |= 1 << UInt64(i & 63)
                        ordinal += 1
                    }
                    for vector: Int32 in [1, 0] {
                        var e2 = fromPlane ? [UInt16](repeating: 0x1234, count: n) : keys
                        var high2 = [UInt8](repeating: 0xEE, count: n)
                        var bits2 = [UInt64](repeating: 0, count: (n + 63) / 64)
                        let next = plane.withUnsafeBufferPointer { p in
                            mg_tag_tracked16(fromPlane ? p.baseAddress : nil, &e2, &high2, &bits2,
                                             Int64(range.lowerBound), Int64(range.upperBound), first, second,
                                             Int64(start), vector)
                        }
                        let label = "\(first) \(second) \(range) plane \(fromPlane) vector \(vector)"
                        XCTAssertEqual(next, Int64(ordinal), label)
                        XCTAssertTrue(e2 == e, label)
                        XCTAssertTrue(high2 == high, label)
                        XCTAssertEqual(bits2, bits, label)
                    }
                }
            }
        }
    }

    /// Counting a large tensor's keys only in windows around the cuts once a sample is in (`TieCut.Windows`) keeps
    /// what counting them all keeps: TIES and breadcrumbs cuts, a cut from rank 0, a sample like the rest of the
    /// tensor (the windows hold the cuts) and one unlike it (the whole tensor is counted again), the C count and the
    /// Swift one.
    func testWindowedCountKeepsWhatTheFullCountKeeps() {
        var rng = SeededGenerator(state: 17)
        let n = 1 << 20
        let (alike, unlike) = windowTestTensors(n, &rng)
        XCTAssertTrue(TieCut.Windows.sampled(n / 4, of: n))
        XCTAssertFalse(TieCut.Windows.sampled(n / 4 - 1, of: n))
        var recounts = 0
        for (name, x) in [("alike", alike), ("unlike", unlike)] {
            for (keep, descending) in [((n / 2)..<n, true), ((n / 10)..<(n * 99 / 100), false), (0..<(n / 3), false),
                                       ((n - 5000)..<n, true)] {
                let full = tieCutKeeps(x, keep: keep, descending: descending, compact: true, vector: true, chunk: 65536)
                XCTAssertEqual(full.filter { $0 }.count, keep.count, "\(name) \(keep)")
                let windowed = tieCut(x, keep: keep, descending: descending, compact: true, vector: true,
                                      windowed: true, chunk: 65536)
                XCTAssertTrue(windowed.kept == full, "\(name) \(keep) \(descending)")
                // A sample like the tensor puts every cut in a window: nothing is counted twice.
                if name == "alike" { XCTAssertFalse(windowed.recounted, "\(keep)") }
                recounts += windowed.recounted ? 1 : 0
            }
        }
        XCTAssertGreaterThan(recounts, 0)
    }
}
