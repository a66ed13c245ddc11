import Checkpoint
import IR
import XCTest

/// Reads the conformance checkpoints that `transformers` wrote.
final class FixtureCheckpointTests: XCTestCase {
    private func open(_ name: String) throws -> SafetensorsModel {
        try SafetensorsModel(directory: conformanceModelsDirectory + "/" + name)
    }

    func testBF16CheckpointHeader() throws {
        let model = try open("llama-ft-a-bf16")
        XCTAssertEqual(model.fileCount, 1)
        XCTAssertEqual(model.fileMetadata.first?["format"], "pt")
        let embed = try XCTUnwrap(model.tensor("model.embed_tokens.weight"))
        XCTAssertEqual(embed.dtype, .bf16)
        XCTAssertEqual(embed.shape, [128, 32])
        XCTAssertEqual(embed.byteCount, 128 * 32 * 2)
        let norm = try XCTUnwrap(model.tensor("model.layers.0.input_layernorm.weight"))
        XCTAssertEqual(norm.shape, [32])
        XCTAssertEqual(try XCTUnwrap(model.tensor("model.layers.0.mlp.down_proj.weight")).shape, [32, 64])
        XCTAssertTrue(model.tensorNames.contains("lm_head.weight"))
        XCTAssertEqual(model.tensorNames, model.tensorNames.sorted())
    }

    func testShardedCheckpointMatchesTheSingleFileOne() throws {
        let sharded = try open("llama-ft-b-sharded")
        let single = try open("llama-ft-b")
        XCTAssertEqual(sharded.fileCount, 12)
        XCTAssertEqual(single.fileCount, 1)
        XCTAssertEqual(sharded.tensorNames, single.tensorNames)
        XCTAssertEqual(sharded.tensor("model.embed_tokens.weight")?.dtype, .f32)
        XCTAssertEqual(sharded.tensor("model.embed_tokens.weight")?.shape, [128, 32])
        for name in single.tensorNames {
            XCTAssertEqual(sharded.tensor(name)?.shape, single.tensor(name)?.shape, name)
            XCTAssertEqual(bits(try sharded.floats(name)), bits(try single.floats(name)), name)
        }
    }

    /// `transformers` cast these checkpoints with torch, so our rounding must reproduce theirs bit for bit.
    func testHalfPrecisionCheckpointsAreTorchRoundingsOfTheirF32Sources() throws {
        for (source, converted, dtype) in [("llama-ft-a", "llama-ft-a-bf16", DType.bf16), ("llama-ft-c", "llama-ft-c-fp16", .f16)] {
            let f32 = try open(source)
            let half = try open(converted)
            XCTAssertEqual(f32.tensorNames, half.tensorNames)
            for name in f32.tensorNames {
                XCTAssertEqual(half.tensor(name)?.dtype, dtype)
                let rounded = try f32.floats(name).map { DTypeConversion.round($0, to: dtype) }
                XCTAssertEqual(bits(try half.floats(name)), bits(rounded), "\(converted) \(name)")
            }
        }
    }
}
