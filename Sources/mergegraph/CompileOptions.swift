import ArgumentParser
import Checkpoint
import Foundation
import Executor
import Hub
import IR
import Parser
import Planner

/// Options shared by `run` and `plan`: the config and how it is compiled.
struct CompileOptions: ParsableArguments {
    @Argument(help: "A mergekit YAML config (multi-document configs are merge chains).")
    var config: String

    @Option(name: .customLong("out-shard-size"), parsing: .unconditional, help: "Largest output shard in bytes, mergekit style (K, M, B = thousand, million, billion).")
    var outShardSize: String = "5B"

    @Option(help: "Output this named stage of a multi-document config.")
    var stage: String?

    @Flag(name: .customLong("all-stages"), help: "Write every named stage to OUT_DIR/NAME (the final stage to OUT_DIR) from one graph.")
    var allStages = false

    @Option(name: .customLong("random-seed"), parsing: .unconditional,
            help: "Seed for the randomized merge methods dare_ties, dare_linear, della and della_linear (default: 0): an integer from -2^63 to 2^64-1, a negative seed s standing for 2^64 + s as torch.manual_seed takes it. The same seed gives the same output for any --threads.")
    var randomSeed: RandomSeed = RandomSeed(value: 0)

    @Option(name: .customLong("max-memory"), parsing: .unconditional,
            help: "Memory budget for chunk buffers, kernel state, input staging and output writers, e.g. 512MiB, 2GiB, 1.5G or plain bytes (K/M/G/T and KiB/MiB/GiB/TiB are powers of 1024, KB/MB/GB/TB of 1000). Default: half of physical memory. The process adds a fixed overhead (see README).")
    var maxMemory: String?

    @Flag(name: .customLong("unsafe-truncate-embeddings"),
          help: "UNSAFE (mergekit's option): when vocabularies differ, keep every model's first rows of the embeddings and output heads, as many as the smallest has. Assumes identical token ids.")
    var unsafeTruncateEmbeddings = false

    @Option(name: .customLong("transformers-cache"), parsing: .unconditional,
            help: "mergekit's option: the Hugging Face cache directory for models given as Hub repo ids (default: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub).")
    var transformersCache: String?

    @Option(name: .customLong("lora-merge-dtype"), parsing: .unconditional,
            help: "mergekit's option: the dtype a MODEL+LORA model is loaded in and its adapter applied in (float32, float16, bfloat16; default: the model's config.json dtype).")
    var loraMergeDType: String?

    @Flag(help: "Treat keys mergekit ignores (unknown keys, with a warning by default) as errors.")
    var strict = false

    @Option(name: [.customLong("threads"), .customLong("num-threads"), .customShort("j")], parsing: .unconditional,
            help: "Worker threads (default: all cores; mergekit's -j/--num-threads): tensors that fit their share of the memory budget (--max-memory over the threads) are merged that many at a time, one thread each; the others one at a time on all threads.")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1 (got \(threads))") }
        if let stage, allStages {
            throw ValidationError("--stage \(stage) and --all-stages cannot be used together: --all-stages writes every named stage")
        }
        if let maxMemory {
            do { _ = try ByteCount.memory(maxMemory) } catch {
                throw ValidationError(ByteCount.message(option: "--max-memory", text: maxMemory, problem: error,
                                                        example: "512MiB, 2GiB, 1.5G or 1000000"))
            }
        }
        if let name = loraMergeDType, DType(configName: name)?.isFloatingPoint != true {
            throw ValidationError("--lora-merge-dtype: unknown dtype '\(name)' (expected float32, float16, bfloat16 or float64)")
        }
        do { _ = try ByteCount.kmb(outShardSize) } catch {
            throw ValidationError(ByteCount.message(option: "--out-shard-size", text: outShardSize, problem: error,
                                                    example: "5B, 500M or 1000000"))
        }
    }

    /// The memory budget in bytes: `--max-memory`, else half of physical memory.
    var budgetBytes: Int {
        maxMemory.flatMap(ByteCount.parseMemory) ?? Int(ProcessInfo.processInfo.physicalMemory / 2)
    }

    /// A catalog of local directories and Hugging Face Hub repo ids (settings from the environment and
    /// `--transformers-cache`), reporting download progress to `progress`.
    func catalog(progress: ProgressReporter? = nil) -> LocalCheckpointCatalog {
        let settings = HubSettings.fromEnvironment(cacheDirectory: transformersCache)
        var report: (@Sendable (DownloadProgress) -> Void)?
        if let progress { report = { (p: DownloadProgress) in progress.update(p) } }
        let hub = HuggingFaceHub(settings: settings, onProgress: report, onWarning: { (text: String) in Console.error(text) })
        return LocalCheckpointCatalog(resolver: hub)
    }

    /// "N file(s), SIZE from ENDPOINT": what a run of `plan` still downloads from the Hub; nil when nothing.
    static func downloadSummary(_ plan: Plan, catalog: LocalCheckpointCatalog) -> String? {
        let pending = catalog.pendingFiles(for: plan.inputDirectories)
        guard !pending.isEmpty else { return nil }
        let bytes = pending.reduce(0) { $0 + ($1.bytes ?? 0) }
        let repos = Set(pending.map(\.reference)).count
        let endpoint = (catalog.resolver as? HuggingFaceHub)?.settings.endpoint ?? "the Hub"
        return "\(pending.count) file(s), \(formatByteCount(bytes)) of \(repos) repo(s) from \(endpoint)"
    }

    /// Parses the config and compiles it, printing warnings to standard error.
    func compile(catalog: LocalCheckpointCatalog) throws -> Plan {
        try compile(ConfigParser.parse(file: config, strict: strict), catalog: catalog)
    }

    /// Compiles an already parsed config (one `legacy` or `bakllama` made from their arguments) with these options.
    func compile(_ file: ConfigFile, catalog: LocalCheckpointCatalog) throws -> Plan {
        guard let shardBytes = ByteCount.parseKMB(outShardSize) else {
            throw ValidationError("--out-shard-size: '\(outShardSize)' is not a size like 5B, 500M or 1000000")
        }
        var options = PlannerOptions(outShardSize: shardBytes, stage: stage, allStages: allStages,
                                     randomSeed: randomSeed.value,
                                     limits: Scheduler.Limits(budgetBytes: budgetBytes, threads: threads, lanes: threads))
        options.unsafeTruncateEmbeddings = unsafeTruncateEmbeddings
        options.loraMergeDType = loraMergeDType.flatMap(DType.init(configName:))
        // The config's own warnings (keys mergekit ignores) first, so that they are seen when compiling then fails.
        for warning in file.warnings { Console.error(warning) }
        let plan = try Compiler.compile(file, catalog: catalog, costs: StreamingCostModel(), options: options)
        let shown = Set(file.warnings)
        for warning in plan.warnings where !shown.contains(warning) { Console.error(warning) }
        return plan
    }
}
