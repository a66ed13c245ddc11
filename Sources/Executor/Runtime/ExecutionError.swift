/// A failure while running a plan; names the file, directory or tensor involved.
public enum ExecutionError: Error, CustomStringConvertible {
    case safetensors(SafetensorsError)
    case io(path: String, String)
    case outputExists(path: String)

    public var description: String {
        switch self {
        case .safetensors(let e): return e.description
        case .io(let path, let message): return "\(path): \(message)"
        case .outputExists(let path):
            return "\(path): output directory exists and is not empty (use --overwrite to replace it)"
        }
    }
}
