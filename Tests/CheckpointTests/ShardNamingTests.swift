import Checkpoint
import XCTest

/// Output shard names as Hugging Face and mergekit write them.
final class ShardNamingTests: XCTestCase {
    func testNames() {
        XCTAssertEqual(ShardNaming.fileName(shard: 1, of: 1), "model.safetensors")
        XCTAssertEqual(ShardNaming.fileName(shard: 1, of: 2), "model-00001-of-00002.safetensors")
        XCTAssertEqual(ShardNaming.fileName(shard: 12, of: 12), "model-00012-of-00012.safetensors")
        XCTAssertEqual(ShardNaming.fileName(shard: 7, of: 123456), "model-00007-of-123456.safetensors")
        XCTAssertEqual(ShardNaming.indexFileName, "model.safetensors.index.json")
    }
}
