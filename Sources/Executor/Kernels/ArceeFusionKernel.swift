import Foundation
import IR

/// Arcee Fusion (mergekit 0.1.5 `arcee_fusion`): each element's importance is `|b − a|` times the KL
/// divergence between the softmaxes (over the last dimension, plus 1e-8) of its row in `b` and in `a`;
/// `b` is taken where importance ≥ median + 1.5·(q3 − q1) of all importances, `a` (the base) elsewhere.
///
/// Elements near the threshold decide between two models, so the importances are computed in float32 in
/// PyTorch's order (see `TorchFloat32`); a KL divergence of ~1e-4 computed in f64 instead differs by up to
/// ~1e-3 relative and flips a few elements per model. (Not reproduced: PyTorch on AVX-512 hardware, and
/// PyTorch splitting one sum over threads, which it does only for a 1-D tensor of more than 32,768 values.)
///
/// Quantiles are exact: the sorted importances indexed at `⌊q·(n − 1)⌋`. mergekit does the same for up to
/// 1,000,000 elements but above that sorts a random sample of 1,000,000 drawn with replacement, so its
/// threshold for larger tensors is an estimate that varies run to run; ours is the exact value it estimates.
public enum ArceeFusionKernel {
    public static func merge(base a: TensorBuffer, other b: TensorBuffer, rowLength: Int, dtype: DType,
                             parallel: Parallel) -> TensorBuffer {
        let n = a.count
        let length = max(rowLength, 1)
        let rows = n / length
        let importance = TensorBuffer(count: n)
        let p = SharedPointers(inputs: [UnsafePointer(a.pointer), UnsafePointer(b.pointer)],
                               output: importance.pointer)
        parallel.forEachBlock(count: rows) { range in
            var scratch = Scratch(length: length)
            for r in range {
                let start = r * length
                let kl = scratch.divergence(p.inputs[1] + start, p.inputs[0] + start, count: length)
                for i in start..<(start + length) { p.output[i] = abs(p.inputs[1][i] - p.inputs[0][i]) * kl }
            }
        }
        let threshold = upperWhisker(importance)
        let mask = SharedPointers(inputs: [UnsafePointer(importance.pointer)], output: importance.pointer)
        let out = ElementwiseKernels.map([a, b], dtype: dtype, parallel: parallel) { p, i in
            let x = p.inputs[0][i]
            return mask.inputs[0][i] >= threshold ? x + (p.inputs[1][i] - x) : x
        }
        withExtendedLifetime((a, b, importance)) {}
        return out
    }

    /// `median + 1.5·(q3 − q1)` of the values, computed in f32 as mergekit does.
    static func upperWhisker(_ values: TensorBuffer) -> Float {
        guard values.count > 0 else { return 0 }
        let sorted = values.array.sorted { $0 < $1 || (!$0.isNaN && $1.isNaN) }
        func quantile(_ q: Float) -> Float { sorted[Int(q * Float(sorted.count - 1))] }
        return quantile(0.5) + 1.5 * (quantile(0.75) - quantile(0.25))
    }
}

/// Per-row buffers for the float32 softmaxes and KL terms.
private struct Scratch {
    var p: [Float]
    var q: [Float]
    var terms: [Float]

    init(length: Int) {
        p = [Float](repeating: 0, count: length)
        q = p
        terms = p
    }

    /// `torch.sum(p·log(p/q))` with `p = softmax(x) + 1e-8`, `q = softmax(y) + 1e-8`, all float32.
    mutating func divergence(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, count: Int) -> Float {
        Scratch.softmax(x, count: count, into: &p)
        Scratch.softmax(y, count: count, into: &q)
        for i in 0..<count {
            let pi = p[i] + 1e-8
            let qi = q[i] + 1e-8
            terms[i] = pi * logf(pi / qi)
        }
        return terms.withUnsafeBufferPointer { TorchFloat32.rowSum(UnsafeBufferPointer(rebasing: $0[0..<count])) }
    }

    /// ATen's `_vec_softmax_lastdim`: max, `exp(x − max)`, sum, then multiply by `1 / sum`.
    static func softmax(_ x: UnsafePointer<Float>, count: Int, into out: inout [Float]) {
        let top = TorchFloat32.reduceAll(UnsafeBufferPointer(start: x, count: count), TorchFloat32.maximum)
        for i in 0..<count { out[i] = TorchFloat32.exp(x[i] - top) }
        let sum = out.withUnsafeBufferPointer { TorchFloat32.reduceAll(UnsafeBufferPointer(rebasing: $0[0..<count]), +) }
        let inverse = 1 / sum
        for i in 0..<count { out[i] *= inverse }
    }
}
