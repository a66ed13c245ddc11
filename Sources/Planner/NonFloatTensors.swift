import IR
import Parser

/// Integer and BOOL tensors (position ids, attention masks, counters) are never merged: whatever the merge method,
/// the output is input 0's tensor copied byte for byte, as mergekit 0.1.5 does (`copy_non_floating_buffer` in
/// `merge_methods/buffers.py`, called by every method's task before it merges: when any input is not floating point,
/// all inputs must have the same dtype and equal values, and the first input in model order is cloned; otherwise
/// it raises "Non-floating buffer … differs between inputs"). The dtype check is made here, at compile time; the
/// value check by the `copy_equal` kernel at run time. `dtype` and `out_dtype` do not apply to these tensors.
enum NonFloatTensors {
    /// The dtype an output tensor is copied in when any of its inputs (`dtypes`, in input order, of the tensors
    /// `inputs` names as `(model, tensor)`) is an integer or BOOL tensor; nil when all are floats (the tensor merges).
    /// - Throws: `PlanError.invalidConfig` at `location` (the slice or `models:`) naming the output tensor and every
    ///   input's dtype when they are not all one non-float dtype (mergekit raises there too).
    static func copiedDType(output: String, dtypes: [DType], inputs: [(model: String, tensor: String)],
                            at location: SourceLocation) throws(PlanError) -> DType? {
        guard let first = dtypes.first, dtypes.contains(where: { !$0.isFloatingPoint }) else { return nil }
        guard dtypes.allSatisfy({ $0 == first }) else {
            let list = zip(inputs, dtypes).map { "'\($0.tensor)' of model '\($0.model)' is \($1.torchName)" }
            throw .invalidConfig(location, "tensor '\(output)' is an integer or bool tensor in some inputs, and such "
                                 + "tensors are copied, never merged, only when every input has the same dtype: "
                                 + list.joined(separator: ", "))
        }
        return first
    }

    /// The value of an output that `recipe` copies (its `computeType` is a non-float dtype): the first input's
    /// tensor, checked at run time against the other inputs' (`copy_equal`) when they are other values. Loads are
    /// added through each input's provider, so a stage's copied tensor feeds the next stage unchanged.
    /// - Throws: the providers' errors (a tensor missing from a stage).
    static func lower(_ recipe: TensorRecipe, stage: String, in builder: GraphBuilder) throws(PlanError) -> ValueID {
        var values: [ValueID] = []
        for input in recipe.inputs {
            let value = try input.provider.value(of: input.tensor, stage: stage, in: builder)
            if !values.contains(value) { values.append(value) }
        }
        if values.count == 1 { return values[0] }
        let note = "\(recipe.computeType.dtype.torchName) tensor: copied from "
            + "'\(recipe.inputs[0].provider.displayName)', which every input must equal (mergekit copy_non_floating_buffer)"
        return builder.graph.add(.copyEqual, values, type: builder.graph[values[0]].type, stage: stage, note: note)
    }
}
