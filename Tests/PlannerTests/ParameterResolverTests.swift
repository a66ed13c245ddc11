import XCTest
import IR
import Parser
@testable import Planner

/// Precedence, filters, gradients and scalar conversions of `ParameterResolver`.
final class ParameterResolverTests: XCTestCase {
    private let q = "model.layers.0.self_attn.q_proj.weight"
    private let up = "model.layers.0.mlp.up_proj.weight"

    private func map(_ entries: (String, ParameterValue, SourceLocation)...) -> ParameterMap {
        ParameterMap(entries.map { ParameterEntry(name: $0.0, value: $0.1, location: $0.2) })
    }

    private func number(_ r: ResolvedValue?, file: StaticString = #filePath, line: UInt = #line) throws -> Double {
        let value = try XCTUnwrap(r, "no value", file: file, line: line)
        return try ParameterResolver.number(value.scalar, location: value.location, name: "x")
    }

    private func resolveNumber(_ resolver: ParameterResolver, _ name: String = "weight", tensor: String? = nil,
                               file: StaticString = #filePath, line: UInt = #line) throws -> Double {
        try number(resolver.resolve(name, tensor: tensor ?? q, kind: .float), file: file, line: line)
    }

    // MARK: precedence

    func testSourceBeatsSliceBeatsGlobal() throws {
        let source = map(("weight", .scalar(.number(1)), loc(10, 1)))
        let slice = map(("weight", .scalar(.number(2)), loc(20, 1)))
        let global = map(("weight", .scalar(.number(3)), loc(30, 1)))
        let all = ParameterResolver(scopes: [source, slice, global], t: 0)
        XCTAssertEqual(try resolveNumber(all), 1)
        XCTAssertEqual(try all.resolve("weight", tensor: q, kind: .float)?.location, loc(10, 1))
        XCTAssertEqual(try resolveNumber(ParameterResolver(scopes: [ParameterMap(), slice, global], t: 0)), 2)
        XCTAssertEqual(try resolveNumber(ParameterResolver(scopes: [ParameterMap(), ParameterMap(), global], t: 0)), 3)
        XCTAssertEqual(try resolveNumber(ParameterResolver(scopes: [source, ParameterMap(), global], t: 0)), 1)
        XCTAssertEqual(try resolveNumber(ParameterResolver(scopes: [ParameterMap(), slice, ParameterMap()], t: 0)), 2)
    }

    func testUnsetParameterIsNil() throws {
        let resolver = ParameterResolver(scopes: [map(("weight", .scalar(.number(1)), loc(1, 1)))], t: 0)
        XCTAssertNil(try resolver.resolve("density", tensor: q, kind: .float))
        XCTAssertNil(try ParameterResolver(scopes: [], t: 0).resolve("weight", tensor: q, kind: .float))
    }

    // MARK: filters

    func testFirstMatchingFilterWins() throws {
        let conditions: ParameterValue = .conditional([
            ConditionalValue(filter: "self_attn", value: .scalar(.number(0.1)), location: loc(2, 5)),
            ConditionalValue(filter: "q_proj", value: .scalar(.number(0.2)), location: loc(4, 5)),
            ConditionalValue(filter: nil, value: .scalar(.number(0.3)), location: loc(6, 5)),
        ])
        let resolver = ParameterResolver(scopes: [map(("t", conditions, loc(1, 4)))], t: 0)
        let attn = try XCTUnwrap(try resolver.resolve("t", tensor: q, kind: .float))
        XCTAssertEqual(attn.scalar, .number(0.1))
        XCTAssertEqual(attn.location, loc(2, 5), "the location is the matching condition's")
        XCTAssertEqual(try resolveNumber(resolver, "t", tensor: "model.layers.0.self_attn.k_proj.weight"), 0.1)
        XCTAssertEqual(try resolveNumber(resolver, "t", tensor: up), 0.3)
        XCTAssertEqual(try resolver.resolve("t", tensor: up, kind: .float)?.location, loc(6, 5))
    }

    func testStarFilterMatchesEverything() throws {
        let conditions: ParameterValue = .conditional([
            ConditionalValue(filter: "*", value: .scalar(.number(0.7)), location: loc(2, 5)),
            ConditionalValue(filter: "mlp", value: .scalar(.number(0.2)), location: loc(4, 5)),
        ])
        let resolver = ParameterResolver(scopes: [map(("t", conditions, loc(1, 4)))], t: 0)
        XCTAssertEqual(try resolveNumber(resolver, "t", tensor: up), 0.7)
    }

    func testFilterWithoutMatchFallsThroughToLowerScope() throws {
        let source = map(("weight", .conditional([
            ConditionalValue(filter: "mlp", value: .scalar(.number(0.2)), location: loc(3, 9)),
        ]), loc(2, 7)))
        let slice = map(("weight", .conditional([
            ConditionalValue(filter: "lm_head", value: .scalar(.number(0.4)), location: loc(5, 9)),
        ]), loc(4, 7)))
        let global = map(("weight", .scalar(.number(0.9)), loc(7, 11)))
        let resolver = ParameterResolver(scopes: [source, slice, global], t: 0)
        XCTAssertEqual(try resolveNumber(resolver, tensor: up), 0.2)
        XCTAssertEqual(try resolveNumber(resolver, tensor: "lm_head.weight"), 0.4)
        let attn = try XCTUnwrap(try resolver.resolve("weight", tensor: q, kind: .float))
        XCTAssertEqual(attn.scalar, .number(0.9))
        XCTAssertEqual(attn.location, loc(7, 11))
        // With nothing below, an unmatched filter means "not set".
        XCTAssertNil(try ParameterResolver(scopes: [source], t: 0).resolve("weight", tensor: q, kind: .float))
    }

    func testFilteredGradient() throws {
        let value: ParameterValue = .conditional([
            ConditionalValue(filter: "mlp", value: .gradient([.number(1), .number(0)]), location: loc(2, 5)),
            ConditionalValue(filter: nil, value: .scalar(.number(0.5)), location: loc(4, 5)),
        ])
        let resolver = ParameterResolver(scopes: [map(("t", value, loc(1, 4)))], t: 0.25)
        XCTAssertEqual(try resolveNumber(resolver, "t", tensor: up), 0.75, accuracy: 1e-12)
        XCTAssertEqual(try resolveNumber(resolver, "t", tensor: q), 0.5)
    }

    // MARK: gradients

    private func gradient(_ values: [Double], at t: Double) throws -> Double {
        let resolver = ParameterResolver(scopes: [map(("t", .gradient(values.map { .number($0) }), loc(1, 4)))], t: t)
        return try resolveNumber(resolver, "t")
    }

    func testThreePointGradient() throws {
        XCTAssertEqual(try gradient([0, 0.5, 1], at: 0), 0)
        XCTAssertEqual(try gradient([0, 0.5, 1], at: 1.0 / 3.0), 1.0 / 3.0, accuracy: 1e-12)
        XCTAssertEqual(try gradient([0, 0.5, 1], at: 0.5), 0.5, accuracy: 1e-12)
        XCTAssertEqual(try gradient([0, 0.5, 1], at: 1), 1)
        XCTAssertEqual(try gradient([0, 0.2, 1], at: 0.25), 0.1, accuracy: 1e-12)
        XCTAssertEqual(try gradient([0, 0.2, 1], at: 0.75), 0.6, accuracy: 1e-12)
    }

    func testFivePointGradient() throws {
        let values = [0, 0.1, 0.5, 0.9, 1.0]
        XCTAssertEqual(try gradient(values, at: 0), 0)
        // scaled = 4/3: between 0.1 and 0.5, one third of the way.
        XCTAssertEqual(try gradient(values, at: 1.0 / 3.0), 0.1 + (0.5 - 0.1) / 3, accuracy: 1e-12)
        XCTAssertEqual(try gradient(values, at: 0.5), 0.5, accuracy: 1e-12)
        // scaled = 8/3: between 0.5 and 0.9, two thirds of the way.
        XCTAssertEqual(try gradient(values, at: 2.0 / 3.0), 0.5 + (0.9 - 0.5) * 2 / 3, accuracy: 1e-12)
        XCTAssertEqual(try gradient(values, at: 0.75), 0.9, accuracy: 1e-12)
        XCTAssertEqual(try gradient(values, at: 1), 1)
    }

    func testSingleValueGradientIsConstant() throws {
        XCTAssertEqual(try gradient([0.3], at: 0), 0.3)
        XCTAssertEqual(try gradient([0.3], at: 1), 0.3)
        XCTAssertEqual(try gradient([0.3], at: 0.4), 0.3)
    }

    func testEmptyGradientIsUnset() throws {
        let resolver = ParameterResolver(scopes: [map(("t", .gradient([]), loc(1, 4))),
                                                  map(("t", .scalar(.number(0.25)), loc(9, 4)))], t: 0.5)
        XCTAssertEqual(try resolveNumber(resolver, "t"), 0.25)
    }

    func testGradientKeepsItsLocation() throws {
        let resolver = ParameterResolver(scopes: [map(("t", .gradient([.number(0), .number(1)]), loc(3, 6)))], t: 0.5)
        XCTAssertEqual(try resolver.resolve("t", tensor: q, kind: .float)?.location, loc(3, 6))
    }

    func testBoolGradientPicksByIndex() throws {
        let values: [ScalarValue] = [.bool(true), .bool(false), .bool(true)]
        func pick(_ t: Double) throws -> ScalarValue? {
            try ParameterResolver(scopes: [map(("normalize", .gradient(values), loc(1, 1)))], t: t)
                .resolve("normalize", tensor: q, kind: .bool)?.scalar
        }
        XCTAssertEqual(try pick(0), .bool(true))
        XCTAssertEqual(try pick(0.49), .bool(true))
        XCTAssertEqual(try pick(0.5), .bool(false))
        XCTAssertEqual(try pick(0.99), .bool(false))
        XCTAssertEqual(try pick(1), .bool(true))
    }

    func testGradientOfNonNumbersThrowsAtItsLocation() {
        let resolver = ParameterResolver(scopes: [map(("t", .gradient([.number(0), .string("high")]), loc(5, 6)))], t: 0.5)
        XCTAssertThrowsError(try resolver.resolve("t", tensor: q, kind: .float)) { error in
            let message = String(describing: error)
            XCTAssertTrue(message.hasPrefix("t.yml:5:6: "), message)
            XCTAssertTrue(message.contains("must be a number"), message)
            XCTAssertTrue(message.contains("\"high\""), message)
        }
    }

    func testGradientOfNumericStrings() throws {
        let resolver = ParameterResolver(scopes: [map(("t", .gradient([.string("0"), .string("1")]), loc(5, 6)))], t: 0.25)
        XCTAssertEqual(try resolveNumber(resolver, "t"), 0.25, accuracy: 1e-12)
    }

    // MARK: scalar conversions

    func testNumbersFromStrings() throws {
        XCTAssertEqual(try ParameterResolver.number(.number(0.5), location: nil, name: "w"), 0.5)
        XCTAssertEqual(try ParameterResolver.number(.string("0.25"), location: nil, name: "w"), 0.25)
        XCTAssertEqual(try ParameterResolver.number(.string(" 2 "), location: nil, name: "w"), 2)
        XCTAssertEqual(try ParameterResolver.number(.string("1e-3"), location: nil, name: "w"), 0.001)
        XCTAssertEqual(try ParameterResolver.number(.string("-1"), location: nil, name: "w"), -1)
    }

    func testWrongNumberTypesThrowWithLocation() {
        XCTAssertThrowsError(try ParameterResolver.number(.bool(true), location: loc(4, 15), name: "weight")) {
            XCTAssertEqual(String(describing: $0), "t.yml:4:15: weight must be a number, found true")
        }
        XCTAssertThrowsError(try ParameterResolver.number(.string("abc"), location: loc(7, 3), name: "t")) {
            XCTAssertEqual(String(describing: $0), "t.yml:7:3: t must be a number, found \"abc\"")
        }
        XCTAssertThrowsError(try ParameterResolver.number(.string(""), location: loc(1, 1), name: "t"))
    }

    func testBools() throws {
        XCTAssertEqual(try ParameterResolver.bool(.bool(false), location: nil, name: "n"), false)
        XCTAssertEqual(try ParameterResolver.bool(.number(1), location: nil, name: "n"), true)
        XCTAssertEqual(try ParameterResolver.bool(.number(0), location: nil, name: "n"), false)
        XCTAssertEqual(try ParameterResolver.bool(.string("TRUE"), location: nil, name: "n"), true)
        XCTAssertEqual(try ParameterResolver.bool(.string("no"), location: nil, name: "n"), false)
        XCTAssertEqual(try ParameterResolver.bool(.string("1"), location: nil, name: "n"), true)
    }

    func testWrongBoolTypesThrowWithLocation() {
        XCTAssertThrowsError(try ParameterResolver.bool(.number(2), location: loc(3, 14), name: "normalize")) {
            XCTAssertEqual(String(describing: $0), "t.yml:3:14: normalize must be true or false, found 2")
        }
        XCTAssertThrowsError(try ParameterResolver.bool(.string("maybe"), location: loc(3, 14), name: "normalize")) {
            XCTAssertEqual(String(describing: $0), "t.yml:3:14: normalize must be true or false, found \"maybe\"")
        }
    }

    func testResolvedSettingIsNotTypeChecked() throws {
        // `resolve` returns what was written; `value(of:tensor:)` converts and checks it (see the tests below).
        let resolver = ParameterResolver(scopes: [map(("weight", .scalar(.string("heavy")), loc(2, 3)))], t: 0)
        let value = try XCTUnwrap(try resolver.resolve("weight", tensor: q, kind: .float))
        XCTAssertEqual(value.scalar, .string("heavy"))
        XCTAssertEqual(value.location, loc(2, 3))
    }
}
