import Checkpoint
import IR
import XCTest

final class DTypeConversionTests: XCTestCase {
    // MARK: bfloat16

    func testBF16KnownBitPatternsDecode() {
        XCTAssertEqual(DTypeConversion.bf16ToFloat(0x3F80), 1.0)
        XCTAssertEqual(DTypeConversion.bf16ToFloat(0xC000), -2.0)
        XCTAssertEqual(DTypeConversion.bf16ToFloat(0x7F80), .infinity)
        XCTAssertEqual(DTypeConversion.bf16ToFloat(0xFF80), -.infinity)
        XCTAssertTrue(DTypeConversion.bf16ToFloat(0x7FC0).isNaN)
        XCTAssertEqual(DTypeConversion.bf16ToFloat(0x0001), Float(sign: .plus, exponent: -133, significand: 1))
        XCTAssertTrue(DTypeConversion.bf16ToFloat(0x0001).isSubnormal)
        XCTAssertEqual(DTypeConversion.bf16ToFloat(0x8000).bitPattern, (-0.0 as Float).bitPattern)
    }

    func testFloatToBF16RoundsToNearestEven() {
        let step = Float(sign: .plus, exponent: -8, significand: 1)
        XCTAssertEqual(DTypeConversion.floatToBF16(1.0), 0x3F80)
        XCTAssertEqual(DTypeConversion.floatToBF16(1.0 + step), 0x3F80, "tie goes to the even neighbour 0x3F80")
        XCTAssertEqual(DTypeConversion.floatToBF16(1.0 + 3 * step), 0x3F82, "tie goes to the even neighbour 0x3F82")
        XCTAssertEqual(DTypeConversion.floatToBF16((1.0 + step).nextUp), 0x3F81, "just above the tie rounds up")
        XCTAssertEqual(DTypeConversion.floatToBF16((1.0 + step).nextDown), 0x3F80, "just below the tie rounds down")
        XCTAssertEqual(DTypeConversion.floatToBF16(-(1.0 + 3 * step)), 0xBF82)
        XCTAssertEqual(DTypeConversion.floatToBF16(-0.0), 0x8000)
        XCTAssertEqual(DTypeConversion.floatToBF16(.infinity), 0x7F80)
        XCTAssertEqual(DTypeConversion.floatToBF16(-.infinity), 0xFF80)
        XCTAssertEqual(DTypeConversion.floatToBF16(.greatestFiniteMagnitude), 0x7F80, "overflows to +Inf")
        XCTAssertEqual(DTypeConversion.floatToBF16(.leastNonzeroMagnitude), 0x0000, "2^-149 rounds to zero")
        XCTAssertEqual(DTypeConversion.floatToBF16(Float(sign: .plus, exponent: -133, significand: 1)), 0x0001)
    }

    func testFloatToBF16KeepsEveryNaNANaN() {
        let nans: [Float] = [
            .nan, -.nan, .signalingNaN,
            Float(bitPattern: 0x7F80_0001), Float(bitPattern: 0xFF80_0001), Float(bitPattern: 0x7FFF_FFFF),
        ]
        for nan in nans {
            let bits = DTypeConversion.floatToBF16(nan)
            XCTAssertTrue(DTypeConversion.bf16ToFloat(bits).isNaN, "NaN \(nan.bitPattern) became \(bits)")
            XCTAssertNotEqual(bits & 0x0040, 0, "NaN \(nan.bitPattern) is not quiet as bf16 \(bits)")
            XCTAssertEqual(bits & 0x8000, UInt16(truncatingIfNeeded: nan.bitPattern >> 16) & 0x8000, "sign kept")
        }
    }

    func testFloatToBF16MatchesNearestCandidateOnSamples() {
        var state: UInt32 = 0x1234_5678
        for _ in 0..<200_000 {
            state = state &* 1_664_525 &+ 1_013_904_223
            let x = Float(bitPattern: state)
            guard !x.isNaN else { continue }
            let lower = UInt16(truncatingIfNeeded: state >> 16)
            let below = Double(DTypeConversion.bf16ToFloat(lower))
            let upper = DTypeConversion.bf16ToFloat(lower &+ 1)
            // Past the largest finite bf16 the next step is 2^128 (IEEE overflow rounds to Inf from there).
            let above = upper.isInfinite ? Double(upper.sign == .minus ? -1 : 1) * 0x1p128 : Double(upper)
            let distanceBelow = abs(Double(x) - below)
            let distanceAbove = abs(Double(x) - above)
            let expected: UInt16
            if distanceBelow == distanceAbove {
                expected = lower & 1 == 0 ? lower : lower &+ 1
            } else {
                expected = distanceBelow < distanceAbove ? lower : lower &+ 1
            }
            XCTAssertEqual(DTypeConversion.floatToBF16(x), expected, "x bits \(String(state, radix: 16))")
        }
    }

    func testEveryBF16PatternRoundTripsThroughFloat() {
        for pattern in 0...UInt16.max {
            let value = DTypeConversion.bf16ToFloat(pattern)
            if value.isNaN {
                XCTAssertTrue(DTypeConversion.bf16ToFloat(DTypeConversion.floatToBF16(value)).isNaN)
            } else if DTypeConversion.floatToBF16(value) != pattern {
                XCTFail("bf16 \(String(pattern, radix: 16)) did not round-trip")
            }
        }
    }

    // MARK: float16

    func testF16KnownBitPatternsDecode() {
        XCTAssertEqual(DTypeConversion.f16ToFloat(0x3C00), 1.0)
        XCTAssertEqual(DTypeConversion.f16ToFloat(0xC000), -2.0)
        XCTAssertEqual(DTypeConversion.f16ToFloat(0x7BFF), 65504)
        XCTAssertEqual(DTypeConversion.f16ToFloat(0x0001), Float(sign: .plus, exponent: -24, significand: 1))
        XCTAssertEqual(DTypeConversion.f16ToFloat(0x03FF), Float(sign: .plus, exponent: -24, significand: 1023))
        XCTAssertEqual(DTypeConversion.f16ToFloat(0x7C00), .infinity)
        XCTAssertEqual(DTypeConversion.f16ToFloat(0xFC00), -.infinity)
        XCTAssertTrue(DTypeConversion.f16ToFloat(0x7E00).isNaN)
        XCTAssertTrue(DTypeConversion.f16ToFloat(0x7C01).isNaN)
    }

    func testFloatToF16RoundsToNearestEven() {
        let step = Float(sign: .plus, exponent: -11, significand: 1)
        XCTAssertEqual(DTypeConversion.floatToF16(1.0), 0x3C00)
        XCTAssertEqual(DTypeConversion.floatToF16(1.0 + step), 0x3C00, "tie goes to the even neighbour 0x3C00")
        XCTAssertEqual(DTypeConversion.floatToF16(1.0 + 3 * step), 0x3C02, "tie goes to the even neighbour 0x3C02")
        XCTAssertEqual(DTypeConversion.floatToF16((1.0 + step).nextUp), 0x3C01)
        XCTAssertEqual(DTypeConversion.floatToF16(65504), 0x7BFF)
        XCTAssertEqual(DTypeConversion.floatToF16(65519.996), 0x7BFF, "below the overflow threshold stays finite")
        XCTAssertEqual(DTypeConversion.floatToF16(65520), 0x7C00, "the overflow threshold rounds to +Inf")
        XCTAssertEqual(DTypeConversion.floatToF16(-65520), 0xFC00)
        XCTAssertEqual(DTypeConversion.floatToF16(Float(sign: .plus, exponent: -25, significand: 1)), 0x0000, "half the smallest subnormal ties to zero")
        XCTAssertEqual(DTypeConversion.floatToF16(Float(sign: .plus, exponent: -26, significand: 3)), 0x0001)
        XCTAssertEqual(DTypeConversion.floatToF16(Float(sign: .plus, exponent: -25, significand: 3)), 0x0002, "subnormal tie 1.5 ulp goes to even")
        XCTAssertEqual(DTypeConversion.floatToF16(Float(sign: .plus, exponent: -25, significand: 5)), 0x0002, "subnormal tie 2.5 ulp goes to even")
        XCTAssertEqual(DTypeConversion.floatToF16(-0.0), 0x8000)
    }

    func testFloatToF16KeepsEveryNaNANaN() {
        for nan in [Float.nan, -.nan, .signalingNaN, Float(bitPattern: 0x7F80_0001), Float(bitPattern: 0x7F80_1000)] {
            let bits = DTypeConversion.floatToF16(nan)
            XCTAssertTrue(DTypeConversion.f16ToFloat(bits).isNaN, "NaN \(nan.bitPattern) became \(bits)")
            XCTAssertNotEqual(bits & 0x0200, 0, "NaN \(nan.bitPattern) is not quiet as f16 \(bits)")
        }
    }

    func testFloatToF16PicksTheNearestNeighbourOnSamples() {
        var state: UInt32 = 0x9E37_79B9
        for _ in 0..<200_000 {
            state = state &* 1_664_525 &+ 1_013_904_223
            let x = Float(bitPattern: (state & 0x8FFF_FFFF) | 0x3000_0000)
            let bits = DTypeConversion.floatToF16(x)
            let chosen = DTypeConversion.f16ToFloat(bits)
            guard chosen.isFinite else {
                XCTAssertGreaterThanOrEqual(abs(x), 65520, "x \(x)")
                continue
            }
            let error = abs(Double(x) - Double(chosen))
            for neighbour in [bits &+ 1, bits &- 1] where DTypeConversion.f16ToFloat(neighbour).isFinite {
                let other = abs(Double(x) - Double(DTypeConversion.f16ToFloat(neighbour)))
                XCTAssertTrue(error < other || (error == other && bits & 1 == 0), "x \(x) → \(bits), neighbour \(neighbour) is nearer")
            }
        }
    }

    func testEveryF16PatternRoundTripsThroughFloat() {
        for pattern in 0...UInt16.max {
            let value = DTypeConversion.f16ToFloat(pattern)
            if value.isNaN {
                XCTAssertTrue(DTypeConversion.f16ToFloat(DTypeConversion.floatToF16(value)).isNaN)
            } else if DTypeConversion.floatToF16(value) != pattern {
                XCTFail("f16 \(String(pattern, radix: 16)) did not round-trip")
            }
        }
    }

    // MARK: round(_:to:)

    func testRoundIsARoundTripThroughTheDType() {
        let step = Float(sign: .plus, exponent: -8, significand: 1)
        XCTAssertEqual(DTypeConversion.round(1.0 + step, to: .f32), 1.0 + step)
        XCTAssertEqual(DTypeConversion.round(1.0 + step, to: .bf16), 1.0)
        XCTAssertEqual(DTypeConversion.round(1.0 + 3 * step, to: .bf16), 1.0 + 4 * step)
        XCTAssertEqual(DTypeConversion.round(1.0 + step, to: .f16), 1.0 + step)
        XCTAssertEqual(DTypeConversion.round(65520, to: .f16), .infinity)
        XCTAssertEqual(DTypeConversion.round(0.1, to: .f16), DTypeConversion.f16ToFloat(0x2E66))
        XCTAssertTrue(DTypeConversion.round(.nan, to: .bf16).isNaN)
        XCTAssertTrue(DTypeConversion.round(.nan, to: .f16).isNaN)
        let signaling = Float(bitPattern: 0x7F80_0001)
        XCTAssertEqual(DTypeConversion.round(signaling, to: .f32).bitPattern, signaling.bitPattern)
    }
}
