import Foundation
import IR

/// NuSLERP (mergekit 0.1.5 `nuslerp`): spherical interpolation of each vector along an axis, with vectors
/// normalized by `max(‖v‖, 1e-7)` and linear interpolation where `1 − cos² ≤ 1e-16`.
public enum NuslerpKernel {
    /// How a tensor of `shape` splits into vectors: `count` vectors of `length` elements `stride` apart;
    /// vector `v` starts at `start(v)`.
    struct Layout: Sendable {
        var count: Int
        var length: Int
        var stride: Int
        var axis: SlerpAxis

        init(shape: [Int], elements: Int, axis: SlerpAxis) {
            self.axis = axis
            switch axis {
            case .flattened:
                (count, length, stride) = (1, elements, 1)
            case .lastDim:
                let l = max(shape.last ?? elements, 1)
                (count, length, stride) = (elements / l, l, 1)
            case .firstDim:
                let l = max(shape.first ?? elements, 1)
                (count, length, stride) = (elements / l, l, elements / l)
            }
        }

        func start(_ v: Int) -> Int { axis == .firstDim ? v : v * length }
        func vector(of i: Int) -> Int { axis == .firstDim ? i % count : i / max(length, 1) }
    }

    /// The two coefficients for vectors with squared norms `aa`, `bb` and dot product `ab`.
    static func coefficients(t: Double, aa: Double, bb: Double, ab: Double) -> (Double, Double) {
        let na = max(aa.squareRoot(), 1e-7)
        let nb = max(bb.squareRoot(), 1e-7)
        let cos = min(1, max(-1, ab / (na * nb)))
        if 1 - cos * cos <= 1e-16 { return (1 - t, t) }
        let theta = acos(cos)
        let s = sin(theta)
        return (sin((1 - t) * theta) / s, sin(t * theta) / s)
    }

    public static func nuslerp(t: Double, _ a: TensorBuffer, _ b: TensorBuffer, shape: [Int], axis: SlerpAxis,
                               dtype: DType, parallel: Parallel) -> TensorBuffer {
        let layout = Layout(shape: shape, elements: a.count, axis: axis)
        let p = SharedPointers(inputs: [UnsafePointer(a.pointer), UnsafePointer(b.pointer)], output: a.pointer)
        let c = PartialSums(count: 2 * layout.count)
        if layout.count == 1 {
            let s = parallel.sums(count: layout.length, width: 3) { range, acc in
                for i in range {
                    let x = Double(p.inputs[0][i]), y = Double(p.inputs[1][i])
                    acc[0] += x * x
                    acc[1] += y * y
                    acc[2] += x * y
                }
            }
            let (ca, cb) = coefficients(t: t, aa: s[0], bb: s[1], ab: s[2])
            c.set(0, ca)
            c.set(1, cb)
        } else {
            parallel.forEachBlock(count: layout.count) { vectors in
                for v in vectors {
                    var aa = 0.0, bb = 0.0, ab = 0.0
                    var i = layout.start(v)
                    for _ in 0..<layout.length {
                        let x = Double(p.inputs[0][i]), y = Double(p.inputs[1][i])
                        aa += x * x
                        bb += y * y
                        ab += x * y
                        i += layout.stride
                    }
                    let (ca, cb) = coefficients(t: t, aa: aa, bb: bb, ab: ab)
                    c.set(2 * v, ca)
                    c.set(2 * v + 1, cb)
                }
            }
        }
        return ElementwiseKernels.map([a, b], dtype: dtype, parallel: parallel) { p, i in
            let v = layout.vector(of: i)
            return Float(c.value(2 * v) * Double(p.inputs[0][i]) + c.value(2 * v + 1) * Double(p.inputs[1][i]))
        }
    }
}
