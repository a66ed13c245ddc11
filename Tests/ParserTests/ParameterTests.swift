import XCTest
@testable import Parser

/// Parameter blocks (grammar: param-block, setting, condition, scalar classes; rules R7–R9, R11, R16, R17).
final class ParameterTests: XCTestCase {
    /// Parses `block` (already indented by two spaces) as the top-level `parameters:` of a linear merge.
    private func parameters(_ block: String) throws -> ParameterMap {
        try parseOne("merge_method: linear\nmodels:\n  - model: a\nparameters:\n" + block).parameters
    }

    private func value(_ yaml: String) throws -> ParameterValue? {
        try parameters("  p: \(yaml)\n")["p"]?.value
    }

    func testNumbers() throws {
        XCTAssertEqual(try value("1.0e-5"), .scalar(.number(1.0e-5)))
        XCTAssertEqual(try value("1e-5"), .scalar(.number(1e-5)))
        XCTAssertEqual(try value("2E+3"), .scalar(.number(2000)))
        XCTAssertEqual(try value(".5"), .scalar(.number(0.5)))
        XCTAssertEqual(try value("5."), .scalar(.number(5)))
        XCTAssertEqual(try value("-3"), .scalar(.number(-3)))
        XCTAssertEqual(try value("+7"), .scalar(.number(7)))
        XCTAssertEqual(try value("10"), .scalar(.number(10)))
        XCTAssertEqual(try value("-.inf"), .scalar(.number(-.infinity)))
    }

    func testNotNumbers() throws {
        XCTAssertEqual(try value("1e"), .scalar(.string("1e")))
        XCTAssertEqual(try value("."), .scalar(.string(".")))
        XCTAssertEqual(try value("0x10"), .scalar(.string("0x10")))
        XCTAssertEqual(try value("1_000"), .scalar(.string("1_000")))
        XCTAssertEqual(try value("nan"), .scalar(.string("nan")))
    }

    func testQuotedNumberIsAString() throws {
        XCTAssertEqual(try value("\"0.5\""), .scalar(.string("0.5")))
        XCTAssertEqual(try value("'0.5'"), .scalar(.string("0.5")))
        XCTAssertEqual(try value("!!str 0.5"), .scalar(.string("0.5")))
    }

    func testBooleans() throws {
        for word in ["true", "True", "TRUE", "yes", "Yes", "on", "ON"] {
            XCTAssertEqual(try value(word), .scalar(.bool(true)), word)
        }
        for word in ["false", "False", "FALSE", "no", "NO", "off", "Off"] {
            XCTAssertEqual(try value(word), .scalar(.bool(false)), word)
        }
        XCTAssertEqual(try value("\"yes\""), .scalar(.string("yes")))
        XCTAssertEqual(try value("y"), .scalar(.string("y")))
    }

    func testNullParametersAreSkipped() throws {
        let map = try parameters("  a: null\n  b: ~\n  c:\n  d: 1\n  e: \"null\"\n")
        XCTAssertEqual(map.entries.map(\.name), ["d", "e"])
        XCTAssertEqual(map["e"]?.value, .scalar(.string("null")))
    }

    func testEntriesKeepFileOrderAndValueLocations() throws {
        let map = try parameters("  normalize: false\n  int8_mask: true\n  t: 0.3\n")
        XCTAssertEqual(map.entries.map(\.name), ["normalize", "int8_mask", "t"])
        XCTAssertEqual(map["t"]?.location, loc(7, 6))
        XCTAssertEqual(map["normalize"]?.location, loc(5, 14))
    }

    func testGradient() throws {
        let map = try parameters("  t: [0, 0.5, 1]\n")
        XCTAssertEqual(map["t"]?.value, .gradient([.number(0), .number(0.5), .number(1)]))
        XCTAssertEqual(map["t"]?.location, loc(5, 6))
    }

    func testConditionalList() throws {
        let map = try parameters("""
              t:
                - filter: self_attn
                  value: [0, 0.5, 1]
                - value: 0.5

            """)
        XCTAssertEqual(map["t"]?.value, .conditional([
            ConditionalValue(filter: "self_attn", value: .gradient([.number(0), .number(0.5), .number(1)]),
                             location: loc(6, 7)),
            ConditionalValue(filter: nil, value: .scalar(.number(0.5)), location: loc(8, 7)),
        ]))
        XCTAssertEqual(map["t"]?.location, loc(6, 5))
        if case .conditional(let conditions)? = map["t"]?.value {
            XCTAssertEqual(conditions.map(\.location), [loc(6, 7), loc(8, 7)])
        }
    }

    func testSingleConditionalMapping() throws {
        let map = try parameters("  density:\n    filter: mlp\n    value: 0.7\n")
        XCTAssertEqual(map["density"]?.value, .conditional([
            ConditionalValue(filter: "mlp", value: .scalar(.number(0.7)), location: loc(6, 5)),
        ]))
    }

    func testConditionalFilterMayBeNull() throws {
        let map = try parameters("  t: {filter: null, value: yes}\n")
        XCTAssertEqual(map["t"]?.value, .conditional([
            ConditionalValue(filter: nil, value: .scalar(.bool(true)), location: loc(5, 6)),
        ]))
    }

    func testConditionalMissingValue() {
        assertConfigError("merge_method: linear\nmodels:\n  - model: a\nparameters:\n  t:\n    - filter: mlp\n",
                          "t.yml:6:7:", "missing required key 'value'")
    }

    func testConditionalUnknownKey() {
        assertConfigError("merge_method: linear\nmodels:\n  - model: a\nparameters:\n  t: {filter: mlp, valeu: 1}\n",
                          "t.yml:5:20:", "unknown key 'valeu' (did you mean 'value'?)")
    }

    func testConditionalValueMustBeScalarOrList() {
        assertConfigError("merge_method: linear\nmodels:\n  - model: a\nparameters:\n  t: {value: {x: 1}}\n",
                          "t.yml:5:14:", "expected a scalar or a list of scalars, found a mapping")
    }

    func testMixedListIsAWrongType() {
        assertConfigError("merge_method: linear\nmodels:\n  - model: a\nparameters:\n  t:\n    - value: 1\n    - 0.5\n",
                          "t.yml:7:7:", "expected a conditional entry (a mapping with 'value'), found a number")
        assertConfigError("merge_method: linear\nmodels:\n  - model: a\nparameters:\n  t:\n    - 0.5\n    - value: 1\n",
                          "t.yml:7:7:", "expected a scalar, found a mapping")
    }

    func testGradientItemsMustBeScalars() {
        assertConfigError("merge_method: linear\nmodels:\n  - model: a\nparameters:\n  t: [0, [1], 2]\n",
                          "t.yml:5:10:", "expected a scalar, found a list")
        assertConfigError("merge_method: linear\nmodels:\n  - model: a\nparameters:\n  t: [0, null]\n",
                          "t.yml:5:10:", "expected a scalar, found null")
    }

    func testEmptyGradient() {
        assertConfigError("merge_method: linear\nmodels:\n  - model: a\nparameters:\n  t: []\n",
                          "t.yml:5:6:", "a gradient must list at least one value")
    }

    func testParametersMustBeAMapping() {
        assertConfigError("merge_method: linear\nmodels:\n  - model: a\nparameters: [1, 2]\n",
                          "t.yml:4:13:", "expected a mapping of parameter names to values, found a list")
    }

    func testParameterNameMustBeAScalar() {
        assertConfigError("merge_method: linear\nmodels:\n  - model: a\nparameters:\n  [a, b]: 1\n",
                          "t.yml:5:3:", "expected a key, found a list")
    }
}
