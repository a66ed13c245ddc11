import IR

/// What the planner needs to know about one tensor of a checkpoint: its name and stored type.
public struct TensorInfo: Hashable, Sendable {
    /// The tensor's name in the checkpoint.
    public var name: String
    /// Its stored dtype and shape.
    public var type: TensorType

    /// A tensor called `name` of `type`.
    public init(name: String, type: TensorType) {
        self.name = name
        self.type = type
    }
}
