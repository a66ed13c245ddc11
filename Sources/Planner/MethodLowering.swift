import IR
import Parser

/// One merge method of mergekit 0.1.5: its declaration (`spec`: name, summary, reference, typed parameters,
/// base policy, input counts) and its lowering of one output tensor to IR ops. Each method is one type in
/// `Sources/Planner/Methods`; `MethodRegistry.methods` lists them.
protocol MergeMethod: Sendable {
    /// What the method is and accepts; resolution reads `spec.parameters`, docs print it.
    var spec: MethodSpec { get }

    /// Adds the ops that merge `inputs` (one value per recipe input, already cast to `context.type`, in input
    /// order; `context.baseIndex` says which is the base) and returns the merged value, of type `context.type`.
    /// Throws `invalidConfig` for a combination of values no single parameter's range can rule out
    /// (e.g. linear weights summing to zero).
    func lower(_ inputs: [ValueID], _ context: LoweringContext) throws(PlanError) -> ValueID
}

/// What a method's lowering sees for one output tensor: its typed parameters, the base's position, and the
/// graph to add nodes to. Reading a parameter cannot fail: resolution has already given every declared
/// parameter its value (or thrown), so `context[key]` returns the typed value.
final class LoweringContext {
    let spec: MethodSpec
    let recipe: TensorRecipe
    let builder: GraphBuilder
    /// The stage label put on every node.
    let stage: String
    /// Where `merge_method` is written, for errors about the method as a whole.
    let location: SourceLocation
    /// `--random-seed`, put on the randomized pruning ops.
    let randomSeed: UInt64
    /// Parameters the lowering read without declaring them (a programming error `Stage` reports).
    private(set) var undeclaredReads: [String] = []

    init(spec: MethodSpec, recipe: TensorRecipe, builder: GraphBuilder, stage: String, location: SourceLocation,
         randomSeed: UInt64) {
        self.spec = spec
        self.recipe = recipe
        self.builder = builder
        self.stage = stage
        self.location = location
        self.randomSeed = randomSeed
    }

    /// The type the merge computes in (`dtype`, else the inputs' promoted type).
    var type: TensorType { recipe.computeType }
    /// The index of the base among the inputs (nil: no base).
    var baseIndex: Int? { recipe.baseIndex }
    /// The output tensor's name.
    var output: String { recipe.output }

    /// A shared parameter's value for this tensor.
    subscript<V>(_ key: Parameter<V>) -> V {
        read(key, from: recipe.shared, scope: .shared)
    }

    /// A per-input parameter's value for input `i`.
    subscript<V>(_ key: Parameter<V>, input i: Int) -> V {
        read(key, from: recipe.inputs[i].parameters, scope: i == baseIndex ? .input : nil)
    }

    /// A per-input parameter's values for `indices`, in that order.
    func values<V>(_ key: Parameter<V>, of indices: [Int]) -> [V] {
        indices.map { self[key, input: $0] }
    }

    /// Where the value of `key` for input `i` (or the shared one) was written; nil when it is the default.
    func location<V>(of key: Parameter<V>, input i: Int? = nil) -> SourceLocation? {
        (i.map { recipe.inputs[$0].parameters } ?? recipe.shared)[key.name]?.location
    }

    private func read<V>(_ key: Parameter<V>, from values: ResolvedParameters, scope: ParameterScope?) -> V {
        let declared = spec.parameters.contains(key.spec)
            && (key.spec.scope == .shared) == (scope == .shared)
            && (scope == nil || key.spec.scope != .nonBase)
        if declared, let value = V.typed(values[key.name]?.value) { return value }
        undeclaredReads.append(key.name)
        return V.undeclaredRead
    }

    /// Adds a node of this stage.
    @discardableResult
    func add(_ op: Op, _ operands: [ValueID], note: String? = nil) -> ValueID {
        builder.graph.add(op, operands, type: type, stage: stage, note: note)
    }

    /// Adds a node of the tensor's shape but of `dtype` (an intermediate that mergekit keeps in another dtype).
    func add(_ op: Op, _ operands: [ValueID], dtype: DType, note: String? = nil) -> ValueID {
        builder.graph.add(op, operands, type: TensorType(dtype: dtype, shape: type.shape), stage: stage, note: note)
    }

    /// A `--dump-ir` note: "METHOD TEXT", then the tensor's position in its slice.
    func note(_ text: String) -> String {
        [spec.name + " " + text, recipe.position].compactMap { $0 }.joined(separator: "; ")
    }

    /// The indices of the inputs other than the base, in input order.
    var others: [Int] { recipe.inputs.indices.filter { $0 != baseIndex } }

    /// Task vectors `input − base` for `others`, or the inputs themselves without a base.
    func offsets(_ inputs: [ValueID], _ others: [Int]) -> [ValueID] {
        guard let base = baseIndex else { return others.map { inputs[$0] } }
        return others.map { add(.sub, [inputs[$0], inputs[base]]) }
    }

    /// Adds the base back to a merged task vector (no-op without a base).
    func restore(_ merged: ValueID, _ inputs: [ValueID]) -> ValueID {
        guard let base = baseIndex else { return merged }
        return add(.add, [inputs[base], merged])
    }

    /// The random stream of input `i` of this tensor: a hash of "stage/output tensor/input index".
    func streamKey(input i: Int) -> UInt64 {
        RandomStreamKey.hash("\(stage)/\(recipe.output)/\(i)")
    }

    /// `[0.6, 0.4]` as notes print weight lists.
    func list(_ values: [Double]) -> String { "[" + values.map(formatAttribute).joined(separator: ", ") + "]" }

    /// Divides `weights` by their sum; throws `invalidConfig` at the first weight's position when they sum to zero.
    func normalized(_ weights: [Double], key: Parameter<Double>, of indices: [Int]) throws(PlanError) -> [Double] {
        let sum = weights.reduce(0, +)
        guard sum != 0 else {
            throw .invalidConfig(location(of: key, input: indices[0]) ?? location,
                                 "weights of tensor '\(output)' sum to zero, so they cannot be normalized")
        }
        return weights.map { $0 / sum }
    }
}

/// Stable 64-bit stream keys for the random ops (FNV-1a over UTF-8, then SplitMix64's finalizer); unlike
/// Swift's `Hasher`, the same text gives the same key in every process.
enum RandomStreamKey {
    static func hash(_ text: String) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in text.utf8 {
            h ^= UInt64(byte)
            h &*= 0x0000_0100_0000_01B3
        }
        h ^= h >> 30
        h &*= 0xBF58_476D_1CE4_E5B9
        h ^= h >> 27
        h &*= 0x94D0_49BB_1331_11EB
        return h ^ (h >> 31)
    }
}
