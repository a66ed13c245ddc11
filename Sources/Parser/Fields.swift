/// The pairs of one schema mapping, each key checked against the keys allowed at that place.
struct Fields {
    let mapping: YAMLNode
    /// The pairs in file order.
    let pairs: [YAMLPair]

    /// Fails with `wrongType` (expected `expected`) unless `node` is a mapping. A key not in `allowed` is reported to
    /// `diagnostics` (a warning, or `unknownKey` when strict) and left out of `pairs`, as mergekit ignores it.
    init(_ node: YAMLNode, expected: String, allowed: [String], diagnostics: ConfigDiagnostics) throws(ConfigError) {
        guard case .mapping(let pairs) = node.kind else {
            throw .wrongType(node.location, expected: expected, found: node.kindDescription)
        }
        var known: [YAMLPair] = []
        var ignored: [(key: String, location: SourceLocation)] = []
        for pair in pairs {
            let key = try pair.key.key()
            if allowed.contains(key) {
                known.append(pair)
            } else {
                try diagnostics.ignoredKey(key, at: pair.key.location, allowed: allowed, place: expected)
                ignored.append((key, pair.key.location))
            }
        }
        self.mapping = node
        self.pairs = known
        self.ignored = ignored
        self.allowed = allowed
    }

    /// Keys of the mapping that are not allowed here (reported, then left out).
    private let ignored: [(key: String, location: SourceLocation)]
    private let allowed: [String]

    /// The pair for `key`, if written (its value may be null).
    func pair(_ key: String) -> YAMLPair? {
        pairs.first { $0.key.scalar?.text == key }
    }

    /// The value of `key`, or nil when it is absent or null.
    func optional(_ key: String) -> YAMLNode? {
        guard let value = pair(key)?.value, !value.isNull else { return nil }
        return value
    }

    /// The value of `key` (possibly null). When absent, fails with `unknownKey` at an ignored key that is a likely
    /// misspelling of it (`merge_mehtod`), else with `missingKey` at the mapping.
    func required(_ key: String) throws(ConfigError) -> YAMLNode {
        if let value = pair(key)?.value { return value }
        if let typo = ignored.first(where: { KeySuggestion.closest(to: $0.key, among: allowed) == key }) {
            throw .unknownKey(typo.location, key: typo.key, allowed: allowed)
        }
        throw .missingKey(mapping.location, key: key)
    }
}
