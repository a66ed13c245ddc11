import IR
import Parser

/// One source of an output slice after `models:` has been normalized into a slice.
struct SliceSource {
    var ref: ModelReference
    var provider: TensorProvider
    var start: Int
    var end: Int
    var parameters: ParameterMap
    var location: SourceLocation
}

/// An output slice after normalization: its sources, base (index into `sources`) and parameters.
struct NormalizedSlice {
    var sources: [SliceSource]
    var baseIndex: Int?
    /// The slice's own `base_model`, when it sets one (whatever the method does with a base).
    var sliceBase: ModelReference? = nil
    var parameters: ParameterMap
    var location: SourceLocation
    var layerCount: Int { sources[0].end - sources[0].start }
}

/// One input of a per-tensor merge, with its resolved per-input parameters (typed and range-checked).
struct RecipeInput {
    var provider: TensorProvider
    var tensor: String
    /// The method's `.input` parameters, and its `.nonBase` ones unless this input is the base.
    var parameters: ResolvedParameters
    var location: SourceLocation
    /// With `--unsafe-truncate-embeddings`: only the first `rows` rows of the tensor are read.
    var rows: Int? = nil
    /// With a tokenizer setting, for a vocabulary-axis tensor: its rows rearranged into the output vocabulary.
    var gather: VocabularyGather? = nil
}

/// Everything needed to lower one output tensor of a stage.
struct TensorRecipe {
    var output: String
    var inputs: [RecipeInput]
    var baseIndex: Int?
    /// The method's `.shared` parameters (typed and range-checked).
    var shared: ResolvedParameters
    /// The type the inputs are cast to and the merge computes in (`dtype`, else the inputs' promoted type).
    var computeType: TensorType
    /// Where the tensor sits in its slice, for `--dump-ir` notes ("layer 2 of 4, t=0.667").
    var position: String?
    /// When set, the output is a copy of this input's tensor (a buffer that is not a parameter), never merged.
    var copyFrom: Int? = nil
}
