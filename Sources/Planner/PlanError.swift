import Parser

/// An error found while compiling a config: always names the config position, model or tensor at fault.
public enum PlanError: Error, CustomStringConvertible {
    /// A merge method or config feature mergegraph does not implement yet.
    case notImplemented(SourceLocation, String)
    /// A config value that is wrong for this merge (bad parameter, missing base model, …).
    case invalidConfig(SourceLocation, String)
    /// A model reference that cannot be read.
    case model(SourceLocation, path: String, String)
    /// A tensor missing from one input model.
    case missingTensor(tensor: String, model: String, SourceLocation)
    /// Inputs of one merge whose shapes differ.
    case shapeMismatch(SourceLocation, tensor: String, inputs: [(model: String, tensor: String, shape: [Int])])
    /// A stage graph problem in a multi-document config.
    case stage(SourceLocation?, String)

    public var description: String {
        switch self {
        case .notImplemented(let loc, let what): return "\(loc): not implemented: \(what)"
        case .invalidConfig(let loc, let message): return "\(loc): \(message)"
        case .model(let loc, let path, let message): return "\(loc): model '\(path)': \(message)"
        case .missingTensor(let tensor, let model, let loc):
            return "\(loc): tensor '\(tensor)' is missing from model '\(model)'"
        case .shapeMismatch(let loc, let tensor, let inputs):
            let list = inputs.map {
                "'\($0.tensor)' of model '\($0.model)' is [\($0.shape.map(String.init).joined(separator: ", "))]"
            }
            return "\(loc): shape mismatch for output tensor '\(tensor)': " + list.joined(separator: ", ")
        case .stage(let loc, let message): return loc.map { "\($0): \(message)" } ?? message
        }
    }
}
