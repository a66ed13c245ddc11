// libFuzzer entry for the JSON parser (config.json, indexes, safetensors headers): scripts/fuzz.sh json SECONDS.
// The work is CheckpointFuzzTargets.json (Sources/Checkpoint), which the seed-corpus test runs too.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSON(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    _ = CheckpointFuzzTargets.json(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
