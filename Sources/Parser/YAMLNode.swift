/// A YAML node as composed from libyaml events, with the position where it starts.
struct YAMLNode: Sendable {
    /// The shape of a node.
    enum Kind: Sendable {
        case scalar(YAMLScalar)
        case sequence([YAMLNode])
        case mapping([YAMLPair])
    }

    var kind: Kind
    var location: SourceLocation
    /// Number of nodes in this subtree once aliases are expanded (bounds the work of decoding).
    var size: Int
    /// Levels of collections from this node down to its deepest scalar once aliases are expanded (1 for a scalar);
    /// bounded by `YAMLComposer.maxDepth`, so code that walks the tree recursively (its teardown included) stays
    /// within the stack.
    var depth: Int = 1

    /// The scalar, when this node is one.
    var scalar: YAMLScalar? {
        if case .scalar(let s) = kind { return s }
        return nil
    }

    /// True for `null`, `~`, and an empty plain scalar.
    var isNull: Bool { scalar?.isNull ?? false }

    /// How the node reads in a "found …" message.
    var kindDescription: String {
        switch kind {
        case .scalar(let s): return s.kindDescription
        case .sequence: return "a list"
        case .mapping: return "a mapping"
        }
    }
}

/// A scalar's text and whether it was written plain (unquoted, untagged), which decides how it is typed.
struct YAMLScalar: Sendable {
    var text: String
    var isPlain: Bool

    var isNull: Bool { isPlain && ScalarSyntax.isNull(text) }

    /// The typed value of a non-null scalar: plain numbers and booleans are typed, everything else is a string.
    var value: ScalarValue {
        if isPlain {
            if let x = ScalarSyntax.number(text) { return .number(x) }
            if let b = ScalarSyntax.bool(text) { return .bool(b) }
        }
        return .string(text)
    }

    var kindDescription: String {
        if isNull { return "null" }
        switch value {
        case .number: return "a number"
        case .bool: return "a boolean"
        case .string: return "a string"
        }
    }
}

/// One `key: value` pair of a mapping.
struct YAMLPair: Sendable {
    var key: YAMLNode
    var value: YAMLNode
}
