// libFuzzer entry for the pickle target (a bare data.pkl, or a whole torch.save zip archive → the state dict's
// tensors): scripts/fuzz.sh pickle SECONDS. The work is CheckpointFuzzTargets.pickle (Sources/Checkpoint), which
// the seed-corpus test runs too.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPickle(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    _ = CheckpointFuzzTargets.pickle(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
