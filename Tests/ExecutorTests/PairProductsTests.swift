@testable import Executor
import Foundation
import XCTest

/// `PairProducts.fold`'s lane sums: element `i` adds to lane `i mod 8` in index order, whatever the ranges folded.
final class PairProductsTests: XCTestCase {
    /// Three operands of 1,037 elements (not a multiple of 8), with an origin and without.
    let operands: [[Float]] = (0..<4).map { k in
        (0..<1037).map { i in
            let angle = Double(i * (k + 3)) * 0.37
            return Float(sin(angle) * Double(k + 1) * 1000)
        }
    }

    /// The lanes as the definition says: each lane's elements added one by one in index order, from 0.
    func reference(_ products: PairProducts, origin: Int?, range: Range<Int>) -> [Double] {
        var lanes = [Double](repeating: 0, count: products.laneCount)
        for i in range {
            let z = origin.map { Double(operands[$0][i]) } ?? 0
            for (q, (j, k)) in products.pairs.enumerated() {
                lanes[q * 8 + i % 8] += (Double(operands[j][i]) - z) * (Double(operands[k][i]) - z)
            }
        }
        return lanes
    }

    func fold(_ products: PairProducts, origin: Int?, pieces: [Range<Int>]) -> [Double] {
        var lanes = [Double](repeating: 0, count: products.laneCount)
        let buffers = operands.map { values in
            let buffer = UnsafeMutablePointer<Float>.allocate(capacity: values.count)
            buffer.initialize(from: values, count: values.count)
            return buffer
        }
        defer { buffers.forEach { $0.deallocate() } }
        let pointers = buffers.map { UnsafePointer($0) }
        lanes.withUnsafeMutableBufferPointer { acc in
            for piece in pieces {
                products.fold(pointers, origin: origin.map { pointers[$0] }, piece, into: acc.baseAddress!)
            }
        }
        return lanes
    }

    func testLanesFollowTheDefinitionForAnySplit() {
        let products = PairProducts.gram(3)
        let splits: [[Range<Int>]] = [[0..<1037], [0..<3, 3..<17, 17..<1030, 1030..<1037], [0..<512, 512..<1037],
                                      (0..<1037).map { $0..<($0 + 1) }]
        for origin in [nil, 3] as [Int?] {
            let expected = reference(products, origin: origin, range: 0..<1037)
            for pieces in splits {
                XCTAssertEqual(fold(products, origin: origin, pieces: pieces).map(\.bitPattern),
                               expected.map(\.bitPattern), "origin \(String(describing: origin)), \(pieces.count) pieces")
            }
        }
    }

    func testSumsAddLanesInOrder() {
        let lanes = (0..<16).map { Double($0) + 0.1 }
        var first = 0.0, second = 0.0
        for l in 0..<8 {
            first += lanes[l]
            second += lanes[8 + l]
        }
        XCTAssertEqual(PairProducts.sums(lanes: lanes), [first, second])
    }
}
