import Checkpoint
import Foundation
import IR

/// A Swift port of `conformance/compare.py`: same tensor names, shapes and dtypes; f32 and f64 within
/// 1e-6 + 1e-4·|e|; f16/bf16 within one ulp; other dtypes equal; every `config.json` key of the reference equal.
enum CheckpointComparison {
    static func problems(actual: String, expected: String) throws -> [String] {
        let a = try tensors(in: actual)
        let e = try tensors(in: expected)
        var problems: [String] = []
        for name in Set(a.keys).union(e.keys).sorted() {
            guard let (at, av) = a[name] else { problems.append("missing tensor \(name)"); continue }
            guard let (et, ev) = e[name] else { problems.append("unexpected tensor \(name)"); continue }
            guard at == et else { problems.append("\(name): got \(at), expected \(et)"); continue }
            let bad = zip(av, ev).filter { x, y in !close(Double(x), Double(y), dtype: et.dtype) }.count
            if bad > 0 { problems.append("\(name): \(bad)/\(ev.count) values off") }
        }
        problems += try configProblems(actual: actual, expected: expected)
        return problems
    }

    static func close(_ a: Double, _ e: Double, dtype: DType) -> Bool {
        if a.isNaN || e.isNaN { return a.isNaN && e.isNaN }
        switch dtype {
        case .f32, .f64: return abs(a - e) <= 1e-6 + 1e-4 * abs(e)
        case .bf16, .f16:
            let mantissa = dtype == .bf16 ? 7.0 : 10.0
            let magnitude = max(abs(e), dtype == .f16 ? 6.1e-5 : 1e-30)
            return abs(a - e) <= Foundation.exp2(Foundation.floor(Foundation.log2(magnitude)) - mantissa) * 1.0001
        case .f8e4m3, .f8e5m2, .i64, .i32, .i16, .i8, .u8, .bool: return a == e
        }
    }

    /// Every tensor of a checkpoint directory as (type, values).
    static func tensors(in directory: String) throws -> [String: (TensorType, [Float])] {
        let model = try SafetensorsModel(directory: directory)
        var result: [String: (TensorType, [Float])] = [:]
        for name in model.tensorNames {
            guard let t = model.tensor(name) else { continue }
            var values = [Float](repeating: 0, count: t.elementCount)
            try values.withUnsafeMutableBufferPointer { buffer in
                guard let base = buffer.baseAddress, t.elementCount > 0 else { return }
                try model.readFloats(t, elementOffset: 0, count: t.elementCount, into: base)
            }
            result[name] = (TensorType(dtype: t.dtype, shape: t.shape), values)
        }
        return result
    }

    static func configProblems(actual: String, expected: String) throws -> [String] {
        let ePath = (expected as NSString).appendingPathComponent("config.json")
        guard let eData = FileManager.default.contents(atPath: ePath) else { return [] }
        guard let aData = FileManager.default.contents(atPath: (actual as NSString).appendingPathComponent("config.json")) else {
            return ["missing config.json"]
        }
        let e = try JSONParser.parse([UInt8](eData))
        let a = try JSONParser.parse([UInt8](aData))
        return e.keys.filter { !["transformers_version", "dtype", "torch_dtype"].contains($0) }.compactMap { key in
            numericallyEqual(a[key], e[key]) ? nil : "config.json[\(key)]: got \(a[key]?.serialized() ?? "nothing")"
        }
    }

    static func numericallyEqual(_ a: JSONValue?, _ b: JSONValue?) -> Bool {
        if case .number(let x)? = a, case .number(let y)? = b { return Double(x) == Double(y) }
        return a == b
    }
}

extension CheckpointReader {
    /// Decodes elements `[elementOffset, elementOffset + count)` of `t` into `dst` through a temporary staging buffer.
    func readFloats(_ t: StoredTensor, elementOffset: Int, count: Int,
                    into dst: UnsafeMutablePointer<Float>) throws(CheckpointError) {
        let staging = UnsafeMutableRawPointer.allocate(byteCount: max(1, count * t.dtype.byteSize), alignment: 16)
        defer { staging.deallocate() }
        try readFloats(t, elementOffset: elementOffset, count: count, staging: staging, into: dst)
    }
}
