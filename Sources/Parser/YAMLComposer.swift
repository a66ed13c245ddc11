import CYAML

/// Builds node trees from libyaml events: resolves aliases and `<<` merge keys; a key written twice in one mapping
/// keeps its last value at its first position, as PyYAML (mergekit's reader) does, with a warning (an error with
/// `--strict`, or when there are no diagnostics to warn through).
struct YAMLComposer {
    /// The most nodes a document may expand to through aliases (guards against "billion laughs" input).
    static let maxExpandedNodes = 1_000_000
    /// The deepest nesting of lists and mappings a document may have, aliases expanded: deeper trees are refused at
    /// the collection that crosses the limit, before libyaml's per-token work on open flow levels grows (it is
    /// proportional to the depth) and before recursive code on the tree could exhaust the stack.
    static let maxDepth = 1000

    let file: String
    /// Where a duplicate key is reported (nil: it is an error).
    let diagnostics: ConfigDiagnostics?
    /// Completed document roots, in order.
    private(set) var documents: [YAMLNode] = []
    private var anchors: [String: YAMLNode] = [:]
    private var open: [Collection] = []

    /// A sequence or mapping whose end event has not arrived yet.
    private struct Collection {
        var isMapping: Bool
        var anchor: String?
        var location: SourceLocation
        /// Items, or alternating keys and values.
        var children: [YAMLNode] = []
    }

    init(file: String, diagnostics: ConfigDiagnostics? = nil) {
        self.file = file
        self.diagnostics = diagnostics
    }

    mutating func consume(_ event: yaml_event_t) throws(ConfigError) {
        let location = SourceLocation(mark: event.start_mark, file: file)
        switch event.type {
        case YAML_DOCUMENT_START_EVENT:
            anchors = [:]
        case YAML_ALIAS_EVENT:
            let name = Self.string(event.data.alias.anchor) ?? ""
            guard let node = anchors[name] else { throw .syntax(location, "found undefined alias '\(name)'") }
            try add(node, anchor: nil)
        case YAML_SCALAR_EVENT:
            let data = event.data.scalar
            let text = data.value.map {
                String(decoding: UnsafeBufferPointer(start: $0, count: data.length), as: UTF8.self)
            } ?? ""
            let isPlain = data.style == YAML_PLAIN_SCALAR_STYLE && Self.string(data.tag) != "tag:yaml.org,2002:str"
            let node = YAMLNode(kind: .scalar(YAMLScalar(text: text, isPlain: isPlain)), location: location, size: 1)
            try add(node, anchor: Self.string(data.anchor))
        case YAML_SEQUENCE_START_EVENT:
            try checkDepth(location)
            open.append(Collection(isMapping: false, anchor: Self.string(event.data.sequence_start.anchor),
                                   location: location))
        case YAML_MAPPING_START_EVENT:
            try checkDepth(location)
            open.append(Collection(isMapping: true, anchor: Self.string(event.data.mapping_start.anchor),
                                   location: location))
        case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
            guard let done = open.popLast() else { return }
            let size = done.children.reduce(1) { $0 + $1.size }
            guard size <= Self.maxExpandedNodes else {
                throw .invalidValue(done.location, "aliases expand this node to more than \(Self.maxExpandedNodes) nodes")
            }
            let depth = done.children.reduce(1) { max($0, $1.depth + 1) }
            guard depth <= Self.maxDepth else {
                throw .syntax(done.location, "aliases nest this node more than \(Self.maxDepth) levels deep")
            }
            let kind: YAMLNode.Kind = done.isMapping ? .mapping(try pairs(done.children)) : .sequence(done.children)
            try add(YAMLNode(kind: kind, location: done.location, size: size, depth: depth), anchor: done.anchor)
        default:
            break
        }
    }

    /// Refuses a collection opened `maxDepth` levels deep.
    private func checkDepth(_ location: SourceLocation) throws(ConfigError) {
        guard open.count < Self.maxDepth else {
            throw .syntax(location, "lists and mappings are nested more than \(Self.maxDepth) levels deep")
        }
    }

    /// Attaches a finished node to the open collection, or makes it a document root.
    private mutating func add(_ node: YAMLNode, anchor: String?) throws(ConfigError) {
        if let anchor { anchors[anchor] = node }
        if open.isEmpty {
            documents.append(node)
        } else {
            open[open.count - 1].children.append(node)
        }
    }

    /// Pairs alternating keys and values, expanding `<<` merges in place; explicit keys win over merged ones, and a
    /// key written twice keeps its last value at its first position.
    /// - Throws: `ConfigError.duplicateKey` for a key written twice, in strict mode or without diagnostics.
    private func pairs(_ children: [YAMLNode]) throws(ConfigError) -> [YAMLPair] {
        var written = stride(from: 0, to: children.count - 1, by: 2).map {
            YAMLPair(key: children[$0], value: children[$0 + 1])
        }
        var firstSeen: [String: SourceLocation] = [:]
        var firstIndex: [String: Int] = [:]
        var repeated = Set<Int>()
        for (i, pair) in written.enumerated() where !Self.isMergeKey(pair.key) {
            guard let key = pair.key.scalar?.text else { continue }
            if let first = firstSeen[key] {
                guard let diagnostics else { throw .duplicateKey(pair.key.location, key: key, first: first) }
                try diagnostics.duplicateKey(key, at: pair.key.location, first: first)
                written[firstIndex[key]!] = YAMLPair(key: written[firstIndex[key]!].key, value: pair.value)
                repeated.insert(i)
            } else {
                firstSeen[key] = pair.key.location
                firstIndex[key] = i
            }
        }
        written = written.indices.filter { !repeated.contains($0) }.map { written[$0] }
        var result: [YAMLPair] = []
        var merged = Set<String>()
        for pair in written {
            guard Self.isMergeKey(pair.key) else {
                result.append(pair)
                continue
            }
            for inherited in try Self.mergeSources(pair.value) {
                guard let key = inherited.key.scalar?.text else {
                    result.append(inherited)
                    continue
                }
                if firstSeen[key] == nil, merged.insert(key).inserted { result.append(inherited) }
            }
        }
        return result
    }

    private static func isMergeKey(_ node: YAMLNode) -> Bool {
        guard let scalar = node.scalar else { return false }
        return scalar.isPlain && scalar.text == "<<"
    }

    /// The pairs a `<<` value contributes: one mapping, or a list of mappings (earlier ones win).
    private static func mergeSources(_ value: YAMLNode) throws(ConfigError) -> [YAMLPair] {
        let sources: [YAMLNode]
        if case .sequence(let items) = value.kind { sources = items } else { sources = [value] }
        var pairs: [YAMLPair] = []
        for source in sources {
            guard case .mapping(let inherited) = source.kind else {
                throw .wrongType(source.location, expected: "a mapping to merge with '<<'", found: source.kindDescription)
            }
            pairs += inherited
        }
        return pairs
    }

    private static func string(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
        pointer.map { String(cString: $0) }
    }
}
