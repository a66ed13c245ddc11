// libFuzzer entry for the JSON parser (config.json, indexes, safetensors headers): scripts/fuzz.sh json SECONDS.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSON(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    if let value = try? JSONParser.parse(Array(UnsafeBufferPointer(start: data, count: size))) {
        _ = value.serialized()
    }
    return 0
}
