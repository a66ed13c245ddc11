import ArgumentParser

/// `mergekit-yaml`'s options (mergekit 0.1.5 `MergeOptions`) that change nothing in how mergegraph merges, accepted
/// with mergekit's spelling so that a mergekit command line runs unchanged: each given one is noted once on
/// standard error with what mergegraph does instead. Options with an effect here (`--out-shard-size`,
/// `--copy-tokenizer`, `--write-model-card`, `--random-seed`, `-j/--num-threads`, `--unsafe-truncate-embeddings`, `-v`, `--quiet`) are
/// ordinary options of `run`.
struct MergekitOptions: ParsableArguments {
    @Flag(name: .customLong("allow-crimes"), inversion: .prefixedNo,
          help: "mergekit: allow mixing architectures. mergegraph checks tensor names and shapes, not architectures.")
    var allowCrimes = false

    @Flag(name: .customLong("lazy-unpickle"), inversion: .prefixedNo,
          help: "mergekit: lazy unpickler. mergegraph always reads .bin and safetensors tensors lazily.")
    var lazyUnpickle = false

    @Flag(name: .customLong("low-cpu-memory"), inversion: .prefixedNo,
          help: "mergekit: keep results on the accelerator. mergegraph bounds memory with --max-memory.")
    var lowCPUMemory = false


    @Flag(name: .customLong("trust-remote-code"), inversion: .prefixedNo,
          help: "mergekit: run code from model repos. mergegraph never executes code from a model.")
    var trustRemoteCode = false

    @Flag(name: .customLong("clone-tensors"), inversion: .prefixedNo,
          help: "mergekit: clone tensors before saving. mergegraph writes every tensor from its own buffers.")
    var cloneTensors = false

    @Flag(name: .customLong("safe-serialization"), inversion: .prefixedNo,
          help: "mergekit: save as safetensors. mergegraph always writes safetensors.")
    var safeSerialization = true

    @Flag(name: .customLong("async-write"), inversion: .prefixedNo,
          help: "mergekit: write shards asynchronously. mergegraph always writes in the background.")
    var asyncWrite = false

    @Option(name: .customLong("write-threads"), help: "mergekit: threads for asynchronous writes. No effect here.")
    var writeThreads: Int?

    @Option(name: .customLong("lora-merge-cache"),
            help: "mergekit: where merged LoRA models are stored. mergegraph applies adapters in the graph and stores nothing.")
    var loraMergeCache: String?

    @Flag(name: .customLong("cuda"), inversion: .prefixedNo, help: "mergekit: compute on the GPU. mergegraph runs on the CPU.")
    var cuda = false

    @Option(name: .customLong("device"), help: "mergekit: compute device. mergegraph runs on the CPU.")
    var device: String?

    @Flag(name: .customLong("read-to-gpu"), inversion: .prefixedNo, help: "mergekit: read weights to the GPU. CPU here.")
    var readToGPU = false

    @Flag(name: .customLong("multi-gpu"), inversion: .prefixedNo, help: "mergekit: several GPUs. CPU here.")
    var multiGPU = false

    @Flag(name: .customLong("gpu-rich"), help: "mergekit: --cuda --low-cpu-memory --read-to-gpu --multi-gpu. CPU here.")
    var gpuRich = false

    /// One line per given option that changes nothing here, saying what mergegraph does instead.
    var notes: [String] {
        var notes: [String] = []
        func note(_ given: Bool, _ text: String) { if given { notes.append("note: " + text) } }
        note(allowCrimes, "--allow-crimes: mergegraph checks tensor names and shapes, not architectures; nothing to allow")
        note(lazyUnpickle, "--lazy-unpickle: tensors are always read lazily")
        note(lowCPUMemory || cuda || device.map { $0 != "cpu" } ?? false || readToGPU || multiGPU || gpuRich,
             "GPU options (--cuda, --device, --read-to-gpu, --multi-gpu, --gpu-rich, --low-cpu-memory): mergegraph "
                + "runs on the CPU within --max-memory")
        note(trustRemoteCode, "--trust-remote-code: mergegraph never executes code from a model repository")
        note(cloneTensors, "--clone-tensors: not needed, every tensor is written from its own buffers")
        note(!safeSerialization, "--no-safe-serialization: mergegraph writes safetensors only")
        note(asyncWrite || writeThreads != nil, "--async-write/--write-threads: shards are always written in the background")
        note(loraMergeCache != nil, "--lora-merge-cache: not needed, LoRA adapters are applied in the graph; no merged copy is stored")
        return notes
    }
}
