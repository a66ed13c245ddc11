/// The pairs of one schema mapping, each key checked against the keys allowed at that place.
struct Fields {
    let mapping: YAMLNode
    /// The pairs in file order.
    let pairs: [YAMLPair]

    /// Fails with `wrongType` (expected `expected`) unless `node` is a mapping, and `unknownKey` on a key not in `allowed`.
    init(_ node: YAMLNode, expected: String, allowed: [String]) throws(ConfigError) {
        guard case .mapping(let pairs) = node.kind else {
            throw .wrongType(node.location, expected: expected, found: node.kindDescription)
        }
        for pair in pairs {
            let key = try pair.key.key()
            guard allowed.contains(key) else { throw .unknownKey(pair.key.location, key: key, allowed: allowed) }
        }
        self.mapping = node
        self.pairs = pairs
    }

    /// The pair for `key`, if written (its value may be null).
    func pair(_ key: String) -> YAMLPair? {
        pairs.first { $0.key.scalar?.text == key }
    }

    /// The value of `key`, or nil when it is absent or null.
    func optional(_ key: String) -> YAMLNode? {
        guard let value = pair(key)?.value, !value.isNull else { return nil }
        return value
    }

    /// The value of `key` (possibly null); fails with `missingKey` at the mapping when absent.
    func required(_ key: String) throws(ConfigError) -> YAMLNode {
        guard let value = pair(key)?.value else { throw .missingKey(mapping.location, key: key) }
        return value
    }
}
