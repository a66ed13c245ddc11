// libFuzzer entry for the config parser (YAML through libyaml, composition, decoding): scripts/fuzz.sh yaml SECONDS.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzYAML(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    _ = try? ConfigParser.parse(text: text, file: "fuzz.yml")
    return 0
}
