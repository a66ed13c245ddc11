import Checkpoint
import Foundation
import IR
import XCTest

/// Every dtype's decode and encode, against torch where it matters (float8), and through safetensors files.
final class DTypeCoverageTests: XCTestCase {
    func testFloat8MatchesTorchBitForBit() throws {
        let t = try safetensorsContents(pytorchFixturesDirectory + "/float8/conversions.safetensors")
        func floats(_ b: [UInt8]) -> [UInt32] {
            stride(from: 0, to: b.count, by: 4).map { UInt32(b[$0]) | UInt32(b[$0 + 1]) << 8 | UInt32(b[$0 + 2]) << 16 | UInt32(b[$0 + 3]) << 24 }
        }
        let patterns = (0..<256).map(UInt8.init)
        for (dtype, key) in [(DType.f8e4m3, "e4m3_decoded"), (.f8e5m2, "e5m2_decoded")] {
            var decoded = [Float](repeating: 0, count: 256)
            DTypeConversion.decode(patterns, dtype: dtype, count: 256, into: &decoded)
            XCTAssertEqual(bits(decoded), floats(t[key]!.bytes), key)
        }
        let samples = floats(t["samples"]!.bytes).map(Float.init(bitPattern:))
        for (dtype, key) in [(DType.f8e4m3, "samples_e4m3"), (.f8e5m2, "samples_e5m2")] {
            var encoded = [UInt8](repeating: 0, count: samples.count)
            DTypeConversion.encode(samples, count: samples.count, as: dtype, into: &encoded)
            XCTAssertEqual(encoded, t[key]!.bytes, key)
        }
    }

    func testF64DecodesToTheNearestFloatAndEncodesExactly() {
        let doubles: [Double] = [0.1, 1 + 0x1p-24, 1 + 0x1.8p-24, -1e300, 1e-50, .nan, -0.0]
        var decoded = [Float](repeating: 0, count: doubles.count)
        DTypeConversion.decode(doubles, dtype: .f64, count: doubles.count, into: &decoded)
        XCTAssertEqual(decoded[0].bitPattern, 0x3DCC_CCCD)
        XCTAssertEqual(decoded[1], 1, "a tie rounds to even")
        XCTAssertEqual(decoded[2], 1 + 0x1p-23)
        XCTAssertEqual(decoded[3], -.infinity)
        XCTAssertEqual(decoded[4], 0)
        XCTAssertTrue(decoded[5].isNaN)
        XCTAssertEqual(decoded[6].bitPattern, 0x8000_0000)
        var encoded = [Double](repeating: 0, count: 3)
        DTypeConversion.encode([0.1, -3, .infinity], count: 3, as: .f64, into: &encoded)
        XCTAssertEqual(encoded, [Double(Float(0.1)), -3, .infinity])
        XCTAssertEqual(DTypeConversion.round(0.1, to: .f64), 0.1)
    }

    func testIntegersAndBoolDecodeAsTorchCastsThem() {
        var out = [Float](repeating: 0, count: 3)
        DTypeConversion.decode([Int64(-5), 1 << 40, Int64.max], dtype: .i64, count: 3, into: &out)
        XCTAssertEqual(out, [-5, Float(1 << 40), Float(Int64.max)])
        DTypeConversion.decode([UInt8(0), 1, 255], dtype: .bool, count: 3, into: &out)
        XCTAssertEqual(out, [0, 1, 1])
        DTypeConversion.decode([UInt8(0), 1, 255], dtype: .u8, count: 3, into: &out)
        XCTAssertEqual(out, [0, 1, 255])
        DTypeConversion.decode([Int8(-128), 1, 127], dtype: .i8, count: 3, into: &out)
        XCTAssertEqual(out, [-128, 1, 127])
        var i16 = [Int16](repeating: 0, count: 4)
        DTypeConversion.encode([-2.7, 40000, .nan, 3.9], count: 4, as: .i16, into: &i16)
        XCTAssertEqual(i16, [-2, Int16.max, 0, 3])
    }

    /// Writes one tensor of every dtype (floats from f32, integers and BOOL as bytes) and reads the file back.
    func testSafetensorsRoundTripOfEveryDType() throws {
        let directory = try makeTemporaryDirectory()
        let path = directory + "/model.safetensors"
        let values: [Float] = [0, -1.5, 3.25, 1e-3, -448, 7]
        let raw: [DType: [UInt8]] = [
            .i64: [Int64.min, -1, 1 << 62, 0, 5, Int64.max].flatMap { v in withUnsafeBytes(of: v.littleEndian) { Array($0) } },
            .i32: [Int32.min, -1, 1 << 30, 0, 5, Int32.max].flatMap { v in withUnsafeBytes(of: v.littleEndian) { Array($0) } },
            .i16: [Int16.min, -1, 1 << 14, 0, 5, Int16.max].flatMap { v in withUnsafeBytes(of: v.littleEndian) { Array($0) } },
            .i8: [0x80, 0xFF, 0x40, 0, 5, 0x7F], .u8: [0, 255, 128, 1, 2, 3], .bool: [1, 0, 0, 1, 1, 0],
        ]
        let writer = try SafetensorsWriter(path: path, tensors: DType.allCases.map { ($0.rawValue, $0, [2, 3]) })
        for dtype in DType.allCases {
            if let bytes = raw[dtype] {
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 8)
                defer { buffer.deallocate() }
                buffer.copyBytes(from: bytes)
                let half = bytes.count / 2
                try writer.write(dtype.rawValue, elementOffset: 0, bytes: UnsafeRawBufferPointer(rebasing: buffer[0..<half]))
                try writer.write(dtype.rawValue, elementOffset: 3, bytes: UnsafeRawBufferPointer(rebasing: buffer[half...]))
            } else {
                try values.withUnsafeBufferPointer { (buffer) throws(CheckpointError) in try writer.write(dtype.rawValue, floats: buffer) }
            }
        }
        try writer.finish()
        let reader = try SafetensorsModel(directory: directory)
        for dtype in DType.allCases {
            let t = try XCTUnwrap(reader.tensor(dtype.rawValue))
            XCTAssertEqual(t.dtype, dtype)
            XCTAssertEqual(t.shape, [2, 3])
            if let bytes = raw[dtype] {
                XCTAssertEqual(try reader.rawBytes(dtype.rawValue), bytes, dtype.rawValue)
            } else {
                XCTAssertEqual(bits(try reader.floats(dtype.rawValue)), bits(values.map { DTypeConversion.round($0, to: dtype) }),
                               dtype.rawValue)
            }
        }
        let header = String(decoding: try Data(contentsOf: URL(fileURLWithPath: path)).prefix(900), as: UTF8.self)
        for dtype in DType.allCases { XCTAssertTrue(header.contains("\"dtype\":\"\(dtype.rawValue)\""), dtype.rawValue) }
    }

    func testRawWriteOfAPartialElementIsRefused() throws {
        let directory = try makeTemporaryDirectory()
        let writer = try SafetensorsWriter(path: directory + "/model.safetensors", tensors: [("ids", .i64, [2])])
        let twelve = UnsafeMutableRawBufferPointer.allocate(byteCount: 12, alignment: 8)
        defer { twelve.deallocate() }
        assertCheckpointError(mentioning: ["ids"]) { () throws(CheckpointError) in
            try writer.write("ids", elementOffset: 0, bytes: UnsafeRawBufferPointer(twelve))
        }
    }

    func testConfigNamesFollowMergekit() {
        XCTAssertEqual(DType(configName: "float64"), .f64)
        XCTAssertEqual(DType(configName: "torch.bfloat16"), .bf16)
        XCTAssertEqual(DType(configName: "int64"), .i64)
        XCTAssertNil(DType(configName: "float8_e4m3fn"))
        XCTAssertEqual(DType.promoted(.f64, .bf16), .f64)
        XCTAssertEqual(DType.promoted(.f16, .bf16), .f32)
        XCTAssertEqual(DType.allCases.filter { !$0.isFloatingPoint }, [.i64, .i32, .i16, .i8, .u8, .bool])
    }
}
