@testable import IR
import XCTest

/// Mnemonics, arities and `--dump-ir` attributes of the randomized pruning and RAM ops.
final class RandomOpTests: XCTestCase {
    func testAttributesShowDensityEpsilonSeedAndKey() {
        let dare = Op.randomPrune(density: 0.3, rescale: true, seed: 42, key: 0xAB)
        XCTAssertEqual(dare.mnemonic + dare.attributes, "random_prune(density=0.3, rescale, seed=42, key=0x00000000000000ab)")
        let della = Op.dellaPrune(density: 0.5, epsilon: 0.15, rescale: false, seed: 0, key: .max)
        XCTAssertEqual(della.mnemonic + della.attributes,
                       "della_prune(density=0.5, epsilon=0.15, seed=0, key=0xffffffffffffffff)")
        XCTAssertEqual(Op.ramMerge(epsilon: 1e-5).mnemonic + Op.ramMerge(epsilon: 1e-5).attributes, "ram_merge(epsilon=1e-05)")
        let plus = Op.ramPlusMerge(r: 0.1, alpha: 0.2, epsilon: 1e-5)
        XCTAssertEqual(plus.mnemonic + plus.attributes, "ramplus_merge(r=0.1, alpha=0.2, epsilon=1e-05)")
    }

    func testArities() {
        XCTAssertEqual(Op.randomPrune(density: 0.3, rescale: true, seed: 0, key: 0).arity, 1)
        XCTAssertEqual(Op.dellaPrune(density: 0.3, epsilon: 0.1, rescale: true, seed: 0, key: 0).arity, 1)
        XCTAssertNil(Op.ramMerge(epsilon: 0).arity)
        XCTAssertNil(Op.ramPlusMerge(r: 0, alpha: 0, epsilon: 0).arity)
    }
}
