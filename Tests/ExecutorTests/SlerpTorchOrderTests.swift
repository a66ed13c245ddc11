import Checkpoint
@testable import Executor
import IR
import XCTest

/// The slerp kernel against PyTorch 2.15's own arithmetic (`ATEN_CPU_CAPABILITY=avx2`, one thread): the expected
/// bit patterns below were printed by torch for the same `pseudoRandom` inputs (the script is in the comments).
final class SlerpTorchOrderTests: XCTestCase {
    /// `torch.linalg.vector_norm(x.reshape(1, -1), dim=1)` for `x = pseudoRandom(n, seed: n)`.
    func testNormTwoFollowsTorchRowByRow() {
        let expected: [Int: UInt32] = [
            1: 0x3F68_3127, 2: 0x3E2C_08F9, 3: 0x3FB7_338A, 4: 0x3F8C_6ABC, 5: 0x3F9F_EC4F, 7: 0x3FC5_CDFB,
            8: 0x3FAB_BDA6, 9: 0x3FCB_5F60, 12: 0x4015_3026, 13: 0x4007_CF24, 33: 0x4043_7A48, 1000: 0x4192_B033,
        ]
        for (n, bits) in expected {
            let x = pseudoRandom(n, seed: UInt64(n))
            // Whole, and fed in pieces of 1, 3 and 5 elements (the kernel's chunks cut rows anywhere).
            for piece in [n, 1, 3, 5] {
                var norm = TorchFloat32.NormTwo(length: n)
                x.withUnsafeBufferPointer { p in
                    var i = 0
                    while i < n {
                        let m = min(piece, n - i)
                        norm.add(p.baseAddress! + i, count: m)
                        i += m
                    }
                }
                XCTAssertEqual(norm.norm.bitPattern, bits, "length \(n), pieces of \(piece)")
            }
        }
    }

    /// A tensor of two 2²⁰-element segments: torch's norms, cosine and coefficients (`mergekit.merge_methods.slerp`
    /// gives exactly `ca·a + cb·b` with them), for any chunking and thread count.
    func testSlerpCoefficientsFollowTorchOverTwoSegments() throws {
        let shape = [1025, 1027]
        let n = shape[0] * shape[1]
        let a = pseudoRandom(n, seed: 1)
        let c = pseudoRandom(n, seed: 2)
        let b = (0..<n).map { Float(0.8) * a[$0] + Float(0.6) * c[$0] }
        let ca = Float(bitPattern: 0x3F39_C4E4), cb = Float(bitPattern: 0x3EA3_BB43)
        XCTAssertEqual(SlerpChunkKernel.coefficients(t: 0.3, dot: Float(bitPattern: 0x3F4C_B916)).0.bitPattern,
                       ca.bitPattern)
        for (chunkRows, threads) in [(100, 1), (1025, 2), (7, 3)] {
            let out = try runChunked(.slerp(t: 0.3), [a, b], shape: shape, threads: threads, chunkRows: chunkRows)
            var wrong = 0
            for i in 0..<n where out[i].bitPattern != (ca * a[i] + cb * b[i]).bitPattern { wrong += 1 }
            XCTAssertEqual(wrong, 0, "\(chunkRows) rows per chunk, \(threads) threads")
        }
        XCTAssertEqual(SlerpChunkKernel.tensorNorm([TorchFloat32.NormTwo(length: 0).norm]), 1)
    }

    /// One NaN makes the norm and the cosine NaN, so every element is NaN, as in mergekit.
    func testOneNaNMakesTheWholeTensorNaN() throws {
        var a = pseudoRandom(64, seed: 3)
        a[17] = .nan
        let out = try runChunked(.slerp(t: 0.4), [a, pseudoRandom(64, seed: 4)], shape: [8, 8], chunkRows: 3)
        XCTAssertTrue(out.allSatisfy(\.isNaN))
    }

    /// bf16 operands handed over as packed planes (`readsBF16Planes`: the dot products' pass and the output) give the
    /// bytes of the same operands as chunk buffers: both planes, one, and none, in chunks of 40 rows of 23 and of 3,
    /// over a tensor with rows that are not multiples of eight lanes; the norms' pass takes chunk buffers.
    func testPackedPlanesGiveTheUnpackedBytes() throws {
        let shape = [40, 23], n = 40 * 23
        let values = (1...2).map { seed in pseudoRandom(n, seed: UInt64(seed)).map { DTypeConversion.round($0, to: .bf16) } }
        let planes = values.map { $0.map { UInt16(truncatingIfNeeded: $0.bitPattern >> 16) } }
        let op = Op.slerp(t: 0.3)
        let reference = try runChunked(op, values, shape: shape, dtype: .bf16, chunkRows: 3, operandDType: .bf16)
        XCTAssertTrue(reference.contains { $0 != 0 })
        for packed in [Set([0, 1]), [1], []] {
            for chunkRows in [40, 3] {
                var handed = 0
                let out = try runWithPlanes(op, values, planes: planes, packed: packed, shape: shape,
                                            chunkRows: chunkRows, handed: &handed)
                XCTAssertEqual(out.map(\.bitPattern), reference.map(\.bitPattern), "planes \(packed.sorted()), \(chunkRows) rows")
                XCTAssertEqual(handed, packed.isEmpty ? 0 : 2, "the dot products' pass and the output take planes")
            }
        }
    }
}
