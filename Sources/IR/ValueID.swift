/// The SSA name of an IR value (`%N`): the index of the node that defines it.
public struct ValueID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let index: Int

    public init(_ index: Int) { self.index = index }

    public static func < (a: ValueID, b: ValueID) -> Bool { a.index < b.index }

    public var description: String { "%\(index)" }
}
