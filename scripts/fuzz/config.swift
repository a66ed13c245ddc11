// libFuzzer entry for the config target (YAML text → the fully checked config): scripts/fuzz.sh config SECONDS.
// The work is ConfigFuzzTarget.run (Sources/Parser), which the seed-corpus test runs too.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    _ = ConfigFuzzTarget.run(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
