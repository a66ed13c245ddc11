import Checkpoint
import IR
import XCTest

final class BulkConversionTests: XCTestCase {
    /// Every 16-bit pattern, stored little-endian one byte past an aligned address.
    private func unalignedPatterns() -> [UInt8] {
        var bytes: [UInt8] = [0xAA]
        for pattern in 0...UInt16.max {
            bytes.append(UInt8(pattern & 0xFF))
            bytes.append(UInt8(pattern >> 8))
        }
        return bytes
    }

    func testDecodeMatchesScalarConversionForEvery16BitPatternFromAnUnalignedSource() {
        let bytes = unalignedPatterns()
        for (dtype, scalar) in [(DType.bf16, DTypeConversion.bf16ToFloat), (.f16, DTypeConversion.f16ToFloat)] {
            var decoded = [Float](repeating: 0, count: 65536)
            bytes.withUnsafeBytes { source in
                decoded.withUnsafeMutableBufferPointer { destination in
                    DTypeConversion.decode(source.baseAddress! + 1, dtype: dtype, count: 65536, into: destination.baseAddress!)
                }
            }
            let expected = (0...UInt16.max).map { scalar($0).bitPattern }
            XCTAssertEqual(bits(decoded), expected, "\(dtype)")
        }
    }

    func testEncodeMatchesScalarConversionIntoAnUnalignedDestination() {
        var values = sampleFloats(count: 10_000, seed: 7)
        values += [.nan, .signalingNaN, .infinity, -.infinity, 0, -0.0, 65520, .leastNonzeroMagnitude, .greatestFiniteMagnitude]
        for (dtype, scalar) in [(DType.bf16, DTypeConversion.floatToBF16), (.f16, DTypeConversion.floatToF16)] {
            var bytes = [UInt8](repeating: 0, count: 1 + values.count * 2)
            values.withUnsafeBufferPointer { source in
                bytes.withUnsafeMutableBytes { destination in
                    DTypeConversion.encode(source.baseAddress!, count: values.count, as: dtype, into: destination.baseAddress! + 1)
                }
            }
            let encoded = (0..<values.count).map { UInt16(bytes[1 + 2 * $0]) | UInt16(bytes[2 + 2 * $0]) << 8 }
            XCTAssertEqual(encoded, values.map(scalar), "\(dtype)")
        }
    }

    /// Every sign, exponent and top mantissa pattern, each with low bits just below, at and just above a rounding tie.
    func testEncodeMatchesScalarConversionAtEveryExponentAndTie() {
        let lowPatterns: [UInt32] = [0x0000, 0x0001, 0x0FFF, 0x1000, 0x1001, 0x1FFF, 0x2000, 0x7FFF, 0x8000, 0x8001, 0xFFFF]
        let values = (0...UInt32(UInt16.max)).flatMap { high in lowPatterns.map { Float(bitPattern: high << 16 | $0) } }
        for (dtype, scalar) in [(DType.bf16, DTypeConversion.floatToBF16), (.f16, DTypeConversion.floatToF16)] {
            var encoded = [UInt16](repeating: 0, count: values.count)
            values.withUnsafeBufferPointer { source in
                encoded.withUnsafeMutableBytes { destination in
                    DTypeConversion.encode(source.baseAddress!, count: values.count, as: dtype, into: destination.baseAddress!)
                }
            }
            let mismatches = zip(values, encoded).filter { scalar($0) != $1 }
            XCTAssertTrue(mismatches.isEmpty, "\(dtype): \(mismatches.prefix(5).map { (String($0.bitPattern, radix: 16), $1) })")
        }
    }

    func testF32DecodeAndEncodeCopyBitsExactly() {
        let values = sampleFloats(count: 1000, seed: 3) + [.signalingNaN, -0.0, .infinity]
        var bytes = [UInt8](repeating: 0, count: 3 + values.count * 4)
        var decoded = [Float](repeating: 0, count: values.count)
        values.withUnsafeBufferPointer { source in
            bytes.withUnsafeMutableBytes { raw in
                DTypeConversion.encode(source.baseAddress!, count: values.count, as: .f32, into: raw.baseAddress! + 3)
                decoded.withUnsafeMutableBufferPointer { destination in
                    DTypeConversion.decode(raw.baseAddress! + 3, dtype: .f32, count: values.count, into: destination.baseAddress!)
                }
            }
        }
        XCTAssertEqual(bits(decoded), bits(values))
    }
}
