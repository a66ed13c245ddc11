import XCTest
import IR
import Parser
@testable import Planner

/// Lowering of the randomized task-vector methods (dare_*, della*) and of ram / ramplus_tl.
final class RandomizedLoweringTests: PlannerTestCase {
    override func setUp() {
        super.setUp()
        fx.add("A", FakeModel(layers: 1))
        fx.add("B", FakeModel(layers: 1))
        fx.add("C", FakeModel(layers: 1))
    }

    private func config(_ method: String, density: String = "0.5", extra: String = "", global: String = "") -> String {
        """
        merge_method: \(method)
        base_model: $A
        models:
          - model: $B
            parameters: {weight: 0.5, density: \(density)\(extra)}
          - model: $C
            parameters: {weight: 0.25, density: \(density)\(extra)}
        \(global)
        """
    }

    private func compile(_ yaml: String, seed: UInt64) throws -> Plan {
        try Compiler.compile(fx.parse(yaml), catalog: fx.catalog, costs: testCosts, options: PlannerOptions(randomSeed: seed))
    }

    /// The prune ops feeding the merge of output `name`, in input order.
    private func pruneOps(_ plan: Plan, _ name: String) throws -> [Op] {
        let add = try plan.node(of: name)
        XCTAssertEqual(add.op, .add)
        var mixOperands = plan.graph[add.operands[1]].operands
        if case .disjointMerge = plan.graph[add.operands[1]].op { mixOperands.removeFirst() }
        return mixOperands.map { plan.graph[$0].op }
    }

    func testDareTiesLowersToRandomPruneWithSeedAndPerInputKeys() throws {
        let plan = try compile(config("dare_ties"), seed: 42)
        let ops = try pruneOps(plan, "lm_head.weight")
        guard case .randomPrune(let d0, let r0, let s0, let k0) = ops[0],
              case .randomPrune(let d1, let r1, let s1, let k1) = ops[1] else { return XCTFail("\(ops)") }
        XCTAssertEqual([d0, d1], [0.5, 0.5])
        XCTAssertEqual([r0, r1], [true, true], "dare_ties rescales by default")
        XCTAssertEqual([s0, s1], [42, 42])
        XCTAssertNotEqual(k0, k1, "each input has its own stream")
        let other = try pruneOps(plan, "model.norm.weight")
        guard case .randomPrune(_, _, _, let k2) = other[0] else { return XCTFail("\(other)") }
        XCTAssertNotEqual(k0, k2, "each tensor has its own stream")
        guard case .tiesMerge(_, _, let normalize, _) = plan.graph[try plan.node(of: "lm_head.weight").operands[1]].op else {
            return XCTFail("dare_ties elects signs")
        }
        XCTAssertFalse(normalize, "dare_ties does not normalize by default")
        XCTAssertTrue(plan.dump().contains("random_prune(density=0.5, rescale, seed=42, key=0x"), plan.dump())
    }

    func testStreamKeysDoNotDependOnTheSeed() throws {
        let a = try pruneOps(compile(config("dare_linear"), seed: 1), "lm_head.weight")
        let b = try pruneOps(compile(config("dare_linear"), seed: 2), "lm_head.weight")
        guard case .randomPrune(_, _, 1, let ka) = a[0], case .randomPrune(_, _, 2, let kb) = b[0] else {
            return XCTFail("\(a) \(b)")
        }
        XCTAssertEqual(ka, kb)
        XCTAssertEqual(RandomStreamKey.hash("<final>/lm_head.weight/0"), ka)
    }

    func testDareLinearIsWeightedSumWithoutConsensus() throws {
        let plan = try compile(config("dare_linear", global: "parameters: {rescale: false}"), seed: 0)
        let add = try plan.node(of: "lm_head.weight")
        XCTAssertEqual(plan.graph[add.operands[1]].op, .weightedSum([0.5, 0.25]))
        for op in try pruneOps(plan, "lm_head.weight") {
            guard case .randomPrune(0.5, false, 0, _) = op else { return XCTFail("\(op)") }
        }
    }

    func testDensityOneSkipsPruning() throws {
        for method in ["dare_ties", "dare_linear", "della", "della_linear"] {
            let plan = try compile(config(method, density: "1"), seed: 0)
            for op in try pruneOps(plan, "lm_head.weight") { XCTAssertEqual(op, .sub, method) }
        }
    }

    func testDellaCarriesEpsilonAndNormalizes() throws {
        let plan = try compile(config("della", extra: ", epsilon: 0.1"), seed: 3)
        for op in try pruneOps(plan, "lm_head.weight") {
            guard case .dellaPrune(0.5, 0.1, true, 3, _) = op else { return XCTFail("\(op)") }
        }
        guard case .tiesMerge(_, _, true, _) = plan.graph[try plan.node(of: "lm_head.weight").operands[1]].op else {
            return XCTFail("della normalizes by default")
        }
        XCTAssertTrue(plan.dump().contains("della_prune(density=0.5, epsilon=0.1, rescale, seed=3, key=0x"))
        let linear = try compile(config("della_linear"), seed: 0)
        for op in try pruneOps(linear, "lm_head.weight") {
            guard case .dellaPrune(0.5, 0.15, true, 0, _) = op else { return XCTFail("default epsilon 0.15: \(op)") }
        }
    }

    /// mergekit raises when density ± epsilon leaves (0, 1); mergegraph reports the position of epsilon (when set)
    /// or density.
    func testDellaEpsilonOutOfRangeIsAnError() {
        fx.assertError(config("della", density: "0.9", extra: ", epsilon: 0.1"), prefix: "t.yml:5:54: ",
                       contains: ["della needs density ± epsilon within (0, 1)", "density 0.9 and epsilon 0.1"])
        fx.assertError(config("della_linear", density: "0.1"), prefix: "t.yml:5:40: ",
                       contains: ["density 0.1 and epsilon 0.15"])
    }

    func testRamLowersOverTaskVectors() throws {
        let plan = try compile(config("ram", global: "parameters: {epsilon: 0.001}"), seed: 0)
        let add = try plan.node(of: "lm_head.weight")
        let merge = plan.graph[add.operands[1]]
        XCTAssertEqual(merge.op, .ramMerge(epsilon: 0.001))
        XCTAssertEqual(merge.operands.map { plan.graph[$0].op }, [.sub, .sub])
        let plus = try compile(config("ramplus_tl"), seed: 0)
        XCTAssertEqual(plus.graph[try plus.node(of: "lm_head.weight").operands[1]].op,
                       .ramPlusMerge(r: 0.1, alpha: 0.2, epsilon: 1e-5))
        XCTAssertTrue(plus.dump().contains("ramplus_merge(r=0.1, alpha=0.2, epsilon=1e-05)"), plus.dump())
    }

    /// On a bf16 merge mergekit's RAM+ sum is f32 (its λ is an f32 tensor) and so is the base's addition: both
    /// nodes are f32, over bf16 task vectors, and one cast rounds to the declared dtype.
    func testRamPlusOnHalfPrecisionMergesAddsTheBaseInF32() throws {
        let plan = try compile(config("ramplus_tl", global: "dtype: bfloat16"), seed: 0)
        let cast = try plan.node(of: "lm_head.weight")
        XCTAssertEqual(cast.op, .cast(.bf16))
        let add = plan.graph[cast.operands[0]]
        XCTAssertEqual(add.op, .add)
        XCTAssertEqual(add.type.dtype, .f32)
        let merge = plan.graph[add.operands[1]]
        XCTAssertEqual(merge.op, .ramPlusMerge(r: 0.1, alpha: 0.2, epsilon: 1e-5))
        XCTAssertEqual(merge.type.dtype, .f32)
        XCTAssertEqual(merge.operands.map { plan.graph[$0].type.dtype }, [.bf16, .bf16])
        let f32 = try compile(config("ramplus_tl", global: "dtype: float32"), seed: 0)
        XCTAssertEqual(f32.graph[try f32.node(of: "lm_head.weight").operands[1]].op,
                       .ramPlusMerge(r: 0.1, alpha: 0.2, epsilon: 1e-5), "f32 merges keep the plain form")
    }
}
