/// The `config` fuzz target (`scripts/fuzz.sh config SECONDS`, entry point `scripts/fuzz/config.swift`): arbitrary
/// bytes through every check this module makes on a config file, as `mergegraph run`, `plan` and `bakllama` read
/// one: UTF-8 validation (`FileText`), libyaml and the composer (`YAMLReader`, `YAMLComposer`: nesting and alias
/// limits, duplicate keys, `<<` merges), decoding into the AST (`ConfigParser`, lenient and `--strict`, and
/// `BakllamaConfig`), and the rendering of every error message. `ConfigFuzzCorpusTests` runs each seed of
/// `scripts/fuzz/corpus/config` through it.
enum ConfigFuzzTarget {
    /// The file name inputs are parsed under (it appears in locations and messages).
    static let fileName = "fuzz.yml"

    /// What one input gave.
    struct Outcome {
        /// The mergekit config (lenient parse), when the input is one.
        var config: ConfigFile?
        /// The bakllama config, when the input is one.
        var bakllama: BakllamaConfig?
        /// Every error's and warning's text, in the order the parses ran.
        var messages: [String]
    }

    /// Parses `bytes` as a config file every way the tool does; never throws, every error is a value.
    static func run(_ bytes: [UInt8]) -> Outcome {
        let text: String
        do throws(ConfigError) {
            text = try FileText.text(bytes, path: fileName)
        } catch {
            return Outcome(messages: [error.description])
        }
        var messages: [String] = []
        var config: ConfigFile?
        for strict in [false, true] {
            do throws(ConfigError) {
                let parsed = try ConfigParser.parse(text: text, file: fileName, strict: strict)
                if !strict { config = parsed }
                messages += parsed.warnings
            } catch {
                messages.append(error.description)
            }
        }
        var bakllama: BakllamaConfig?
        do throws(ConfigError) {
            bakllama = try BakllamaConfig.parse(text: text, file: fileName)
            messages += bakllama?.warnings ?? []
        } catch {
            messages.append(error.description)
        }
        return Outcome(config: config, bakllama: bakllama, messages: messages)
    }
}
