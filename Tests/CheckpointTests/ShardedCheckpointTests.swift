import Checkpoint
import Foundation
import IR
import XCTest

final class ShardedCheckpointTests: XCTestCase {
    private let shards: [(file: String, tensors: [(name: String, dtype: DType, shape: [Int], values: [Float])])] = [
        ("model-00001-of-00003.safetensors", [
            ("embed.weight", .bf16, [8, 4], sampleFloats(count: 32, seed: 21)),
            ("layers.0.norm", .f32, [4], sampleFloats(count: 4, seed: 22)),
        ]),
        ("model-00002-of-00003.safetensors", [
            ("layers.0.proj", .f16, [4, 4], sampleFloats(count: 16, seed: 23)),
            ("layers.0.bias", .f32, [], [0.25]),
        ]),
        ("model-00003-of-00003.safetensors", [
            ("lm_head.weight", .bf16, [8, 4], sampleFloats(count: 32, seed: 24)),
        ]),
    ]

    private func writeShards(in directory: String, index: Bool) throws {
        var weightMap: [String: String] = [:]
        var totalSize = 0
        for shard in shards {
            try writeCheckpoint(path: directory + "/" + shard.file, tensors: shard.tensors)
            for tensor in shard.tensors {
                weightMap[tensor.name] = shard.file
                totalSize += tensor.values.count * tensor.dtype.byteSize
            }
        }
        if index {
            try SafetensorsWriter.writeIndex(directory: directory, weightMap: weightMap, totalSize: totalSize)
        }
    }

    private func assertReadsBackEveryShardTensor(_ model: SafetensorsModel) throws {
        XCTAssertEqual(model.fileCount, 3)
        XCTAssertEqual(model.tensorNames, shards.flatMap { $0.tensors.map(\.name) }.sorted())
        for (fileIndex, shard) in shards.enumerated() {
            XCTAssertTrue(model.filePaths[fileIndex].hasSuffix("/" + shard.file))
            for tensor in shard.tensors {
                let stored = try XCTUnwrap(model.tensor(tensor.name))
                XCTAssertEqual(stored.fileIndex, fileIndex)
                XCTAssertEqual(stored.shape, tensor.shape)
                XCTAssertEqual(stored.dtype, tensor.dtype)
                let expected = tensor.values.map { DTypeConversion.round($0, to: tensor.dtype) }
                XCTAssertEqual(bits(try model.floats(tensor.name)), bits(expected), tensor.name)
            }
        }
    }

    func testShardsWithAnIndexReadBackBitExact() throws {
        let directory = try makeTemporaryDirectory()
        try writeShards(in: directory, index: true)
        try assertReadsBackEveryShardTensor(SafetensorsModel(directory: directory))
    }

    func testShardsWithoutAnIndexAreAllOpenedInNameOrder() throws {
        let directory = try makeTemporaryDirectory()
        try writeShards(in: directory, index: false)
        try assertReadsBackEveryShardTensor(SafetensorsModel(directory: directory))
    }

    func testIndexIsSortedTwoSpaceIndentedJSON() throws {
        let directory = try makeTemporaryDirectory()
        try SafetensorsWriter.writeIndex(directory: directory, weightMap: ["b": "two.safetensors", "a": "one.safetensors"], totalSize: 96)
        let text = try String(contentsOfFile: directory + "/model.safetensors.index.json", encoding: .utf8)
        XCTAssertEqual(text, """
            {
              "metadata": {
                "total_size": 96
              },
              "weight_map": {
                "a": "one.safetensors",
                "b": "two.safetensors"
              }
            }

            """)
    }

    func testModelSafetensorsIsPreferredOverOtherFilesWithoutAnIndex() throws {
        let directory = try makeTemporaryDirectory()
        try writeCheckpoint(path: directory + "/model.safetensors", tensors: [("a", .f32, [1], [1])])
        try writeCheckpoint(path: directory + "/extra.safetensors", tensors: [("a", .f32, [1], [2])])
        let model = try SafetensorsModel(directory: directory)
        XCTAssertEqual(model.fileCount, 1)
        XCTAssertEqual(try model.floats("a"), [1])
    }
}
