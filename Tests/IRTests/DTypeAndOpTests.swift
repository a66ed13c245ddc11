import XCTest
@testable import IR

/// `DType` names, sizes and promotion; `Op` mnemonics, arities and attributes; `formatAttribute`.
final class DTypeAndOpTests: XCTestCase {
    func testConfigNames() {
        XCTAssertEqual(DType(configName: "float32"), .f32)
        XCTAssertEqual(DType(configName: "bfloat16"), .bf16)
        XCTAssertEqual(DType(configName: "float16"), .f16)
        XCTAssertEqual(DType(configName: "fp16"), .f16)
        XCTAssertEqual(DType(configName: "bf16"), .bf16)
        XCTAssertEqual(DType(configName: "half"), .f16)
        XCTAssertEqual(DType(configName: "BFloat16"), .bf16, "names are case-insensitive")
        XCTAssertNil(DType(configName: "int8"))
        XCTAssertEqual(DType(configName: "float64"), .f64)
        XCTAssertEqual(DType(configName: "torch.float64"), .f64, "mergekit strips a torch. prefix")
        XCTAssertEqual(DType(configName: "int64"), .i64, "parsed, then refused by the parser as not floating point")
        XCTAssertNil(DType(configName: ""))
        XCTAssertNil(DType(configName: "bfloat"))
    }

    func testSafetensorsNames() {
        XCTAssertEqual(DType(safetensorsName: "F32"), .f32)
        XCTAssertEqual(DType(safetensorsName: "BF16"), .bf16)
        XCTAssertEqual(DType(safetensorsName: "F16"), .f16)
        XCTAssertNil(DType(safetensorsName: "f32"), "safetensors names are upper case")
        XCTAssertEqual(DType(safetensorsName: "I64"), .i64)
        XCTAssertEqual(DType(safetensorsName: "F8_E4M3"), .f8e4m3)
        XCTAssertEqual(DType(safetensorsName: "BOOL"), .bool)
        XCTAssertNil(DType(safetensorsName: "U16"), "torch cannot save it")
    }

    func testByteSizeAndNames() {
        XCTAssertEqual(DType.f32.byteSize, 4)
        XCTAssertEqual(DType.f16.byteSize, 2)
        XCTAssertEqual(DType.bf16.byteSize, 2)
        XCTAssertEqual(DType.allCases.map(\.byteSize), [4, 2, 2, 8, 1, 1, 8, 4, 2, 1, 1, 1])
        XCTAssertEqual(DType.allCases.map(\.shortName),
                       ["f32", "f16", "bf16", "f64", "f8_e4m3", "f8_e5m2", "i64", "i32", "i16", "i8", "u8", "bool"])
        XCTAssertEqual(DType.allCases.map(\.torchName),
                       ["float32", "float16", "bfloat16", "float64", "float8_e4m3fn", "float8_e5m2", "int64", "int32",
                        "int16", "int8", "uint8", "bool"])
        for d in [DType.f32, .f16, .bf16, .f64] { XCTAssertEqual(DType(configName: d.torchName), d) }
    }

    func testPromotion() {
        for d in DType.allCases { XCTAssertEqual(DType.promoted(d, d), d) }
        XCTAssertEqual(DType.promoted(.f16, .bf16), .f32)
        XCTAssertEqual(DType.promoted(.bf16, .f16), .f32)
        XCTAssertEqual(DType.promoted(.f32, .bf16), .f32)
        XCTAssertEqual(DType.promoted(.f16, .f32), .f32)
    }

    func testFormatAttribute() {
        XCTAssertEqual(formatAttribute(0.5), "0.5")
        XCTAssertEqual(formatAttribute(1), "1")
        XCTAssertEqual(formatAttribute(0), "0")
        XCTAssertEqual(formatAttribute(-2), "-2")
        XCTAssertEqual(formatAttribute(0.1), "0.1")
        XCTAssertEqual(formatAttribute(0.6), "0.6")
        XCTAssertEqual(formatAttribute(1e20), "1e+20")
        let third = formatAttribute(1.0 / 3.0)
        XCTAssertEqual(Double(third), 1.0 / 3.0, "'\(third)' does not round-trip")
        XCTAssertNotEqual(third, "0.333333")
        let twoThirds = 2.0 / 3.0
        XCTAssertEqual(Double(formatAttribute(twoThirds)), twoThirds)
        let sum = 0.1 + 0.2
        XCTAssertEqual(Double(formatAttribute(sum)), sum)
    }

    func testMnemonicsAndArity() {
        let ops: [(Op, String, Int?)] = [
            (.load(model: 0, tensor: "x"), "load", 0),
            (.cast(.bf16), "cast", 1),
            (.scale(2), "scale", 1),
            (.sub, "sub", 2),
            (.add, "add", 2),
            (.weightedSum([1]), "weighted_sum", nil),
            (.slerp(t: 0.5), "slerp", 2),
            (.modelStock(filterWise: false), "model_stock", nil),
        ]
        for (op, mnemonic, arity) in ops {
            XCTAssertEqual(op.mnemonic, mnemonic)
            XCTAssertEqual(op.arity, arity, mnemonic)
        }
    }

    func testAttributes() {
        XCTAssertEqual(Op.load(model: 0, tensor: "x").attributes, "")
        XCTAssertEqual(Op.sub.attributes, "")
        XCTAssertEqual(Op.cast(.bf16).attributes, "(bf16)")
        XCTAssertEqual(Op.scale(1.5).attributes, "(1.5)")
        XCTAssertEqual(Op.weightedSum([0.75, 0.25]).attributes, "(0.75, 0.25)")
        XCTAssertEqual(Op.weightedSum([1, -1]).attributes, "(1, -1)")
        XCTAssertEqual(Op.slerp(t: 0.5).attributes, "(t=0.5)")
        XCTAssertEqual(Op.slerp(t: 1).attributes, "(t=1)")
        XCTAssertEqual(Op.modelStock(filterWise: true).attributes, "(filter_wise)")
        XCTAssertEqual(Op.modelStock(filterWise: false).attributes, "")
    }
}
