import Foundation

// libFuzzer entry for the safetensors header reader (layout rules included): scripts/fuzz.sh safetensors SECONDS.
// Each input is written to a scratch file and opened as a safetensors file.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafetensors(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let path = NSTemporaryDirectory() + "/mergegraph-fuzz-\(getpid()).safetensors"
    FileManager.default.createFile(atPath: path, contents: Data(bytes: data, count: size))
    if let file = try? InputFile(path: path) { _ = try? SafetensorsHeader(file: file, fileIndex: 0) }
    return 0
}
