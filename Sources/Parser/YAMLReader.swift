import CYAML

/// Runs libyaml over config text and composes one node tree per document.
enum YAMLReader {
    /// The root node of every document in `text`, in order; duplicate keys are reported through `diagnostics`
    /// (an error without them).
    static func documents(in text: String, file: String,
                          diagnostics: ConfigDiagnostics? = nil) throws(ConfigError) -> [YAMLNode] {
        let bytes = Array(text.utf8)
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else {
            throw .io(path: file, message: "cannot initialise the YAML parser")
        }
        defer { yaml_parser_delete(&parser) }
        return try bytes.withUnsafeBufferPointer { buffer throws(ConfigError) -> [YAMLNode] in
            guard let base = buffer.baseAddress else { return [] }
            yaml_parser_set_input_string(&parser, base, buffer.count)
            var composer = YAMLComposer(file: file, diagnostics: diagnostics)
            while true {
                var event = yaml_event_t()
                guard yaml_parser_parse(&parser, &event) == 1 else {
                    throw syntaxError(parser, bytes: buffer, file: file)
                }
                defer { yaml_event_delete(&event) }
                if event.type == YAML_STREAM_END_EVENT { return composer.documents }
                try composer.consume(event)
            }
        }
    }

    /// libyaml's problem and context, at the problem's position.
    private static func syntaxError(_ parser: yaml_parser_t, bytes: UnsafeBufferPointer<UInt8>,
                                    file: String) -> ConfigError {
        var message = parser.problem.map { String(cString: $0) } ?? "invalid YAML"
        if let context = parser.context {
            let at = SourceLocation(mark: parser.context_mark, file: file)
            message += " (\(String(cString: context)) at line \(at.line), column \(at.column))"
        }
        if parser.error == YAML_READER_ERROR {
            return .syntax(location(ofByte: parser.problem_offset, in: bytes, file: file), message)
        }
        return .syntax(SourceLocation(mark: parser.problem_mark, file: file), message)
    }

    /// The line and column (in characters) of a byte offset; reader errors carry only the offset.
    private static func location(ofByte offset: Int, in bytes: UnsafeBufferPointer<UInt8>,
                                 file: String) -> SourceLocation {
        var line = 1, column = 1
        for byte in bytes.prefix(offset) {
            if byte == UInt8(ascii: "\n") {
                line += 1
                column = 1
            } else if byte & 0xC0 != 0x80 {
                column += 1
            }
        }
        return SourceLocation(file: file, line: line, column: column)
    }
}

extension SourceLocation {
    /// Converts a libyaml mark (0-based) to a 1-based location.
    init(mark: yaml_mark_t, file: String) {
        self.init(file: file, line: Int(mark.line) + 1, column: Int(mark.column) + 1)
    }
}
