import IR

/// A rewrite of the IR between lowering and scheduling (MLIR's passes are the model): it takes a verified graph
/// and returns an equivalent one, which the pipeline verifies again.
public protocol GraphPass: Sendable {
    /// The pass's name in `--dump-ir` headers and verifier messages.
    var name: String { get }
    /// The rewritten graph.
    func run(_ graph: Graph) -> Graph
}
