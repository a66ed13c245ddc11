import IR

/// Conversions of single nodes to typed values; each failure is located at the node.
extension YAMLNode {
    /// The text of a scalar used as a mapping key.
    func key() throws(ConfigError) -> String {
        guard let scalar, !scalar.isNull else {
            throw .wrongType(location, expected: "a key", found: kindDescription)
        }
        return scalar.text
    }

    /// The text of any non-null scalar (numbers and booleans keep their spelling).
    func string(_ expected: String) throws(ConfigError) -> Located<String> {
        guard let scalar, !scalar.isNull else {
            throw .wrongType(location, expected: expected, found: kindDescription)
        }
        return Located(scalar.text, at: location)
    }

    /// A plain numeric scalar.
    func number(_ expected: String) throws(ConfigError) -> Located<Double> {
        guard let scalar, !scalar.isNull, case .number(let x) = scalar.value else {
            throw .wrongType(location, expected: expected, found: kindDescription)
        }
        return Located(x, at: location)
    }

    /// A non-null scalar typed as number, boolean or string.
    func scalarValue() throws(ConfigError) -> ScalarValue {
        guard let scalar, !scalar.isNull else {
            throw .wrongType(location, expected: "a scalar", found: kindDescription)
        }
        return scalar.value
    }

    /// The items of a sequence.
    func list(_ expected: String) throws(ConfigError) -> [YAMLNode] {
        guard case .sequence(let items) = kind else {
            throw .wrongType(location, expected: expected, found: kindDescription)
        }
        return items
    }

    /// A model path or Hugging Face id (kept verbatim, including `model+lora`).
    func modelReference() throws(ConfigError) -> ModelReference {
        let path = try string("a model path")
        guard !path.value.isEmpty else { throw .invalidValue(location, "a model path must not be empty") }
        return ModelReference(path: path.value, location: location)
    }

    /// A `dtype` / `out_dtype` name: a float dtype mergekit accepts (`DType.init(configName:)`). `int64`, which
    /// mergekit's `dtype_from_name` knows but its merge methods reject, is refused here with that reason; a short
    /// alias mergekit does not know (`bf16`, …) is reported to `diagnostics` (`ConfigDiagnostics.dtypeAlias`).
    func dtype(_ diagnostics: ConfigDiagnostics) throws(ConfigError) -> Located<DType> {
        let name = try string("a dtype name")
        guard let dtype = DType(configName: name.value) else {
            throw .invalidValue(location, "unknown dtype '\(name.value)' (expected float32, float16, bfloat16 or float64)")
        }
        guard dtype.isFloatingPoint else {
            throw .invalidValue(location, "dtype '\(name.value)' is not a floating-point type: merges compute in floats "
                                + "(integer and bool tensors are copied unchanged whatever dtype says)")
        }
        var mergekitName = name.value
        if mergekitName.hasPrefix("torch.") { mergekitName.removeFirst("torch.".count) }
        if mergekitName != dtype.torchName {
            try diagnostics.dtypeAlias(name.value, canonical: dtype.torchName, at: location)
        }
        return Located(dtype, at: location)
    }
}
