import Foundation

/// The fuzz targets of this module (`scripts/fuzz.sh safetensors|pickle|json SECONDS`, entry points in
/// `scripts/fuzz/`): arbitrary bytes through the readers of untrusted checkpoint files, exactly as a model directory's
/// files reach them. Every error is a value; a crash, a leak or a hang is a bug. `CheckpointFuzzCorpusTests` runs each
/// seed of `scripts/fuzz/corpus/TARGET` through them.
enum CheckpointFuzzTargets {
    /// What one input gave: the tensors read, or the error's message.
    enum Outcome {
        /// The input was accepted; its tensors in the order the reader reports them.
        case tensors([StoredTensor])
        /// The input was refused with this message.
        case rejected(String)
    }

    /// The signature of a zip file's first local header (`PK\3\4`), which tells a `.bin` archive from a bare pickle.
    static let zipSignature: [UInt8] = [0x50, 0x4B, 0x03, 0x04]

    /// `bytes` as a whole safetensors file (8-byte header length, JSON header, data region) through
    /// `SafetensorsHeader`: JSON syntax, dtypes, shapes, offsets, unique names and the tiling of the data region.
    /// The bytes are written to a scratch file in `scratchDirectory` (removed afterwards) and read with `pread`.
    static func safetensors(_ bytes: [UInt8], scratchDirectory: String = NSTemporaryDirectory()) -> Outcome {
        withScratchFile(bytes, in: scratchDirectory, suffix: "safetensors") { path throws(CheckpointError) in
            try SafetensorsHeader(file: InputFile(path: path), fileIndex: 0).tensors
        }
    }

    /// `bytes` through the `.bin` reader. A zip archive (it starts with `PK\3\4`) is read whole, as
    /// `PyTorchModel` reads `pytorch_model.bin` (zip structure, `byteorder`, `data.pkl`, storages), from a scratch
    /// file in `scratchDirectory`; anything else is taken as a bare `data.pkl`: `RestrictedUnpickler`, the state dict,
    /// and each tensor's shape, stride and range checked against storage entries as large as the pickle says.
    static func pickle(_ bytes: [UInt8], scratchDirectory: String = NSTemporaryDirectory()) -> Outcome {
        if bytes.starts(with: zipSignature) {
            return withScratchFile(bytes, in: scratchDirectory, suffix: "bin") { path throws(CheckpointError) in
                try PyTorchModel.readTensors(path: path)
            }
        }
        let path = "fuzz/data.pkl"
        do throws(CheckpointError) {
            let records = try PyTorchModel.stateDict(pickle: bytes, path: path)
            var entries: [String: TorchZipArchive.Entry] = [:]
            for (_, record) in records {
                let name = "archive/data/" + record.storage.key
                entries[name] = TorchZipArchive.Entry(name: name, dataOffset: 0, byteCount: record.storage.byteCount,
                                                      compressed: false, crc32: 0)
            }
            var tensors: [StoredTensor] = []
            for (name, record) in records {
                tensors.append(try PyTorchModel.stored(name, record, entries: entries, path: path, prefix: "archive/",
                                                       fileIndex: 0).tensor)
            }
            return .tensors(tensors)
        } catch {
            return .rejected(error.description)
        }
    }

    /// `bytes` through `JSONParser` (config.json, shard indexes, safetensors headers) and back through
    /// `JSONValue.serialized`; nil when the parser refuses them.
    static func json(_ bytes: [UInt8]) -> String? {
        guard let value = try? JSONParser.parse(bytes) else { return nil }
        return value.serialized()
    }

    /// Writes `bytes` to a scratch file (plainly, with `OutputFile`: no atomic replace, no sync), runs `read` on its
    /// path, and removes the file.
    private static func withScratchFile(_ bytes: [UInt8], in directory: String, suffix: String,
                                        _ read: (String) throws(CheckpointError) -> [StoredTensor]) -> Outcome {
        let path = directory + "/mergegraph-fuzz-\(getpid()).\(suffix)"
        defer { unlink(path) }
        do throws(CheckpointError) {
            let file = try OutputFile(creating: path)
            try file.write(bytes, at: 0)
            try file.finish()
        } catch {
            return .rejected("cannot write the scratch file: \(error.description)")
        }
        do throws(CheckpointError) {
            return .tensors(try read(path))
        } catch {
            return .rejected(error.description)
        }
    }
}
