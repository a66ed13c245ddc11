import XCTest
@testable import Parser

/// Documents with `slices:` (grammar: slice-entry, source-entry, layer-range; rules R9, R11, R14, R15).
final class SlicesTests: XCTestCase {
    func testPassthroughFrankenmerge() throws {
        let doc = try parseOne("""
            slices:
              - sources:
                - model: models/llama-ft-a
                  layer_range: [0, 4]
              - sources:
                - model: models/llama-ft-b
                  layer_range: [2, 4]
            merge_method: passthrough
            dtype: float32
            """)
        guard case .slices(let slices) = doc.inputs else { return XCTFail("expected slices") }
        XCTAssertEqual(doc.inputsLocation, loc(1, 1))
        XCTAssertEqual(slices.count, 2)
        XCTAssertEqual(slices[0].location, loc(2, 5))
        let source = try XCTUnwrap(slices[0].sources.first)
        XCTAssertEqual(source.model.path, "models/llama-ft-a")
        XCTAssertEqual(source.location, loc(3, 7))
        XCTAssertEqual(source.layerRange, LayerRange(start: 0, end: 4, location: loc(4, 20)))
        XCTAssertEqual(slices[1].sources.first?.layerRange.count, 2)
        XCTAssertNil(slices[0].baseModel)
        XCTAssertNil(slices[0].residualWeight)
    }

    func testSliceOptionalKeys() throws {
        let doc = try parseOne("""
            merge_method: slerp
            slices:
              - sources:
                  - model: a
                    layer_range:
                      - 0
                      - 2
                    parameters: {t: 0.5}
                  - model: b
                    layer_range: [0, 2]
                base_model: a
                residual_weight: 0.25
                parameters:
                  t: [0, 1]
            """)
        guard case .slices(let slices) = doc.inputs, let slice = slices.first else { return XCTFail("expected slices") }
        XCTAssertEqual(slice.sources.count, 2)
        XCTAssertEqual(slice.sources[0].layerRange.location, loc(6, 11))
        XCTAssertEqual(slice.sources[0].parameters["t"]?.value, .scalar(.number(0.5)))
        XCTAssertEqual(slice.baseModel?.path, "a")
        XCTAssertEqual(slice.residualWeight, Located(0.25, at: loc(12, 22)))
        XCTAssertEqual(slice.parameters["t"]?.value, .gradient([.number(0), .number(1)]))
    }

    private func slice(layerRange: String) -> String {
        """
        merge_method: passthrough
        slices:
          - sources:
              - model: a
                layer_range: \(layerRange)
        """
    }

    func testEmptyLayerRangeIsAllowed() throws {
        let doc = try parseOne(slice(layerRange: "[3, 3]"))
        guard case .slices(let slices) = doc.inputs else { return XCTFail("expected slices") }
        XCTAssertEqual(slices.first?.sources.first?.layerRange.count, 0)
    }

    func testLayerRangeWithThreeItems() {
        assertConfigError(slice(layerRange: "[0, 2, 4]"), "t.yml:5:22:", "exactly two entries [start, end], found 3")
    }

    func testLayerRangeNegative() {
        assertConfigError(slice(layerRange: "[-1, 4]"), "t.yml:5:22:", "non-negative integers")
    }

    func testLayerRangeFraction() {
        assertConfigError(slice(layerRange: "[0.5, 4]"), "t.yml:5:22:", "non-negative integers")
    }

    func testLayerRangeStartAfterEnd() {
        assertConfigError(slice(layerRange: "[4, 2]"), "t.yml:5:22:", "start 4 is greater than its end 2")
    }

    func testLayerRangeNotAList() {
        assertConfigError(slice(layerRange: "0-4"), "t.yml:5:22:", "expected a layer range [start, end], found a string")
    }

    func testMissingLayerRange() {
        assertConfigError("""
            merge_method: passthrough
            slices:
              - sources:
                  - model: a
            """, "t.yml:4:9:", "missing required key 'layer_range'")
    }

    func testMissingSources() {
        assertConfigError("""
            merge_method: passthrough
            slices:
              - base_model: a
            """, "t.yml:3:5:", "missing required key 'sources'")
    }

    func testEmptySources() {
        assertConfigError("""
            merge_method: passthrough
            slices:
              - sources: []
            """, "t.yml:3:14:", "'sources' must list at least one source")
    }

    func testResidualWeightMustBeANumber() {
        assertConfigError("""
            merge_method: passthrough
            slices:
              - sources:
                  - {model: a, layer_range: [0, 1]}
                residual_weight: "0.5"
            """, "t.yml:5:22:", "expected a number, found a string")
    }

    func testUnknownSourceKey() {
        assertConfigError("""
            merge_method: passthrough
            slices:
              - sources:
                  - model: a
                    layer_ranges: [0, 1]
            """, "t.yml:5:9:", "unknown key 'layer_ranges' (did you mean 'layer_range'?)")
    }

    func testSliceItemMustBeAMapping() {
        assertConfigError("""
            merge_method: passthrough
            slices:
              - a
            """, "t.yml:3:5:", "expected a slice entry (a mapping with 'sources'), found a string")
    }
}
