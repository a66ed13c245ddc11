// libFuzzer entry for the safetensors target (file bytes → validated header): scripts/fuzz.sh safetensors SECONDS.
// The work is CheckpointFuzzTargets.safetensors (Sources/Checkpoint), which the seed-corpus test runs too.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafetensors(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    _ = CheckpointFuzzTargets.safetensors(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
