@testable import Checkpoint
import Foundation
import IR
import XCTest

/// The PyTorch `.bin` fixtures (`scripts/make_pytorch_fixtures.py`, written by torch 2.15's `torch.save`).
let pytorchFixturesDirectory = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures/pytorch").path

/// Every tensor of one safetensors file: dtype, shape and raw bytes.
func safetensorsContents(_ path: String) throws -> [String: (dtype: DType, shape: [Int], bytes: [UInt8])] {
    let data = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    var result: [String: (DType, [Int], [UInt8])] = [:]
    for t in try SafetensorsModel.readHeader(path: path) {
        result[t.name] = (t.dtype, t.shape, Array(data[t.byteRange]))
    }
    return result
}

extension CheckpointReader {
    /// The stored bytes of tensor `name`.
    func rawBytes(_ name: String) throws -> [UInt8] {
        let t = try XCTUnwrap(tensor(name))
        var bytes = [UInt8](repeating: 0, count: t.byteCount)
        try bytes.withUnsafeMutableBytes { buffer in
            if t.byteCount > 0 { try readBytes(fileIndex: t.fileIndex, offset: t.fileOffset, count: t.byteCount, into: buffer.baseAddress!) }
        }
        return bytes
    }
}

final class PyTorchCheckpointTests: XCTestCase {
    private let fixtures = pytorchFixturesDirectory

    /// Copies fixture `relative` into a fresh directory as `pytorch_model.bin`.
    private func directoryHolding(_ relative: String) throws -> String {
        let directory = try makeTemporaryDirectory()
        try FileManager.default.copyItem(atPath: fixtures + "/" + relative, toPath: directory + "/pytorch_model.bin")
        return directory
    }

    func testEveryDtypeScalarsViewsAndSharedStoragesMatchTheSafetensorsTwin() throws {
        let model = try PyTorchModel(directory: try directoryHolding("dtypes/pytorch_model.bin"))
        let expected = try safetensorsContents(fixtures + "/dtypes/expected.safetensors")
        XCTAssertEqual(Set(model.tensorNames), Set(expected.keys))
        XCTAssertEqual(Array(model.tensorNames.prefix(4)), ["f64", "f32", "f16", "bf16"], "the state dict's order")
        XCTAssertEqual(Set(model.tensorNames.compactMap { model.tensor($0)?.dtype }), Set(DType.allCases))
        for name in model.tensorNames {
            let t = try XCTUnwrap(model.tensor(name))
            let twin = try XCTUnwrap(expected[name])
            XCTAssertEqual(t.dtype, twin.dtype, name)
            XCTAssertEqual(t.shape, twin.shape, name)
            XCTAssertEqual(try model.rawBytes(name), twin.bytes, name)
        }
        XCTAssertEqual(model.tensor("scalar_i64")?.shape, [])
        XCTAssertEqual(try model.rawBytes("scalar_i64"), withUnsafeBytes(of: Int64(-9_000_000_000_000).littleEndian) { Array($0) })
        // view_rows (offset 8 elements) and view_flat (offset 4) share one storage.
        let rows = try XCTUnwrap(model.tensor("view_rows")), flat = try XCTUnwrap(model.tensor("view_flat"))
        XCTAssertEqual(rows.fileOffset - flat.fileOffset, 4 * 4)
        // Floats decode exactly: f64 rounds to nearest f32 as torch's .to(float32).
        let f64 = try safetensorsContents(fixtures + "/dtypes/expected.safetensors")["f64"]!.bytes
        let doubles = stride(from: 0, to: f64.count, by: 8).map { i in
            Double(bitPattern: f64[i..<(i + 8)].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
        }
        XCTAssertEqual(bits(try model.floats("f64")), bits(doubles.map { Float($0) }))
    }

    /// Flips the lowest bit of byte `offset` of the file at `path`.
    private func flipBit(at offset: Int, in path: String) throws {
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[offset] ^= 0x01
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    /// The name of the zip entry of the archive at `path` whose data holds byte `offset`.
    private func entry(holding offset: Int, in path: String) throws -> String {
        let archive = try TorchZipArchive(file: InputFile(path: path))
        return try XCTUnwrap(archive.entries.values.first { $0.dataOffset <= offset && offset < $0.dataOffset + $0.byteCount }?.name)
    }

    /// Reads `pieces` (element ranges of `tensor`) on several threads at once; returns the errors the reads threw.
    private func read(_ pieces: [Range<Int>], of tensor: StoredTensor, from model: PyTorchModel) -> [CheckpointError] {
        let size = tensor.dtype.byteSize
        let errors = NSLock()
        nonisolated(unsafe) var thrown: [CheckpointError] = []
        DispatchQueue.concurrentPerform(iterations: pieces.count) { i in
            let piece = pieces[i]
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(piece.count * size, 1), alignment: 16)
            defer { buffer.deallocate() }
            do throws(CheckpointError) {
                try model.readBytes(fileIndex: tensor.fileIndex, offset: tensor.fileOffset + piece.lowerBound * size,
                                    count: piece.count * size, into: buffer)
            } catch {
                errors.withLock { thrown.append(error) }
            }
        }
        return thrown
    }

    /// Element ranges covering `0..<count` in pieces of 1 to 7 elements, some read twice, some overlapping their
    /// neighbours, in a shuffled order (from `seed`).
    private func shuffledPieces(of count: Int, seed: UInt64) -> [Range<Int>] {
        var state = seed
        func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(bound))
        }
        var pieces: [Range<Int>] = []
        var start = 0
        while start < count {
            let end = min(count, start + 1 + next(7))
            pieces.append(start..<end)
            if next(4) == 0 { pieces.append(start..<end) }
            if next(4) == 0 { pieces.append(max(0, start - 2)..<min(count, end + 2)) }
            start = end
        }
        for i in pieces.indices.reversed() { pieces.swapAt(i, next(i + 1)) }
        return pieces
    }

    /// The CRC-32 of a tensor storage entry is checked on the bytes a merge reads, once they have all been read, in
    /// whatever order, pieces and threads; bytes of the storage that no tensor views are read for it then.
    func testStorageEntriesAreCRCCheckedOnceTheirBytesHaveAllBeenRead() throws {
        // Intact: every tensor read in shuffled, repeated, overlapping pieces on several threads, twice.
        let intact = try PyTorchModel(directory: try directoryHolding("dtypes/pytorch_model.bin"))
        for round in 0..<2 {
            for (n, name) in intact.tensorNames.enumerated() {
                let t = try XCTUnwrap(intact.tensor(name))
                XCTAssertEqual(read(shuffledPieces(of: t.elementCount, seed: UInt64(n * 2 + round)), of: t, from: intact)
                                   .map(\.description), [], name)
            }
        }
        let large = try PyTorchModel(directory: conformanceModelsDirectory + "/llama-ft-c-bin")
        for (n, name) in large.tensorNames.enumerated() {
            let t = try XCTUnwrap(large.tensor(name))
            XCTAssertEqual(read(shuffledPieces(of: t.elementCount, seed: UInt64(n)), of: t, from: large).map(\.description), [], name)
        }

        // One bit flipped in tensor f32's bytes: reading it is an error naming the file and the entry when the read
        // that completes the entry comes, and again after; the other tensors read as before.
        let directory = try directoryHolding("dtypes/pytorch_model.bin")
        let path = directory + "/pytorch_model.bin"
        let f32 = try XCTUnwrap(intact.tensor("f32"))
        try flipBit(at: f32.fileOffset + 4, in: path)
        let entryName = try entry(holding: f32.fileOffset, in: path)
        XCTAssertTrue(entryName.hasPrefix("pytorch_model/data/"), entryName)
        let damaged = try PyTorchModel(directory: directory)
        for name in damaged.tensorNames where name != "f32" { XCTAssertNoThrow(try damaged.rawBytes(name), name) }
        for e in (1..<f32.elementCount).reversed() { XCTAssertEqual(read([e..<(e + 1)], of: f32, from: damaged).count, 0) }
        for _ in 0..<2 {
            let errors = read([0..<1], of: f32, from: damaged)
            XCTAssertEqual(errors.count, 1)
            for mention in [path, "entry \(entryName) (the storage of tensor f32) fails its CRC-32 check"] {
                XCTAssertTrue(errors.first?.description.contains(mention) == true, "\(errors) does not mention \(mention)")
            }
        }
        // Read at once from several threads, the damaged entry fails at least one read.
        let again = try PyTorchModel(directory: directory)
        XCTAssertFalse(read(shuffledPieces(of: f32.elementCount, seed: 7), of: f32, from: again).isEmpty)

        // A bit flipped where no tensor looks: view_rows (elements 8..<20) and view_flat (4..<10) share a storage
        // of 24 floats; its first element is no tensor's. The error comes once both views have been read.
        let viewed = try directoryHolding("dtypes/pytorch_model.bin")
        let flat = try XCTUnwrap(intact.tensor("view_flat"))
        try flipBit(at: flat.fileOffset - 4 * 4, in: viewed + "/pytorch_model.bin")
        let views = try PyTorchModel(directory: viewed)
        XCTAssertNoThrow(try views.rawBytes("view_rows"))
        assertCheckpointError(mentioning: [viewed + "/pytorch_model.bin", "(the storage of tensor view_rows) fails its CRC-32 check"]) {
            () throws(CheckpointError) in
            let t = views.tensor("view_flat")!
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: t.byteCount, alignment: 16)
            defer { buffer.deallocate() }
            try views.readBytes(fileIndex: t.fileIndex, offset: t.fileOffset, count: t.byteCount, into: buffer)
        }
    }

    func testShardedBinWithIndexMatchesTheTwin() throws {
        let reader = try CheckpointFormat.open(directory: fixtures + "/sharded")
        XCTAssertTrue(reader is PyTorchModel)
        XCTAssertEqual(reader.filePaths.count, 2)
        let expected = try safetensorsContents(fixtures + "/sharded-expected.safetensors")
        XCTAssertEqual(Set(reader.tensorNames), Set(expected.keys))
        for (name, twin) in expected {
            XCTAssertEqual(reader.tensor(name)?.dtype, twin.dtype, name)
            XCTAssertEqual(try reader.rawBytes(name), twin.bytes, name)
        }
        XCTAssertEqual(reader.tensor("model.position_ids")?.dtype, .i64)
    }

    func testIndexThatDisagreesWithTheShardsIsNamed() throws {
        let directory = try makeTemporaryDirectory()
        for name in try FileManager.default.contentsOfDirectory(atPath: fixtures + "/sharded") {
            try FileManager.default.copyItem(atPath: fixtures + "/sharded/" + name, toPath: directory + "/" + name)
        }
        let indexPath = directory + "/pytorch_model.bin.index.json"
        let text = try String(contentsOfFile: indexPath, encoding: .utf8)
            .replacingOccurrences(of: "\"lm_head.weight\": \"pytorch_model-00002-of-00002.bin\"",
                                  with: "\"lm_head.weight\": \"pytorch_model-00001-of-00002.bin\"")
        try text.write(toFile: indexPath, atomically: true, encoding: .utf8)
        assertCheckpointError(mentioning: [indexPath, "lm_head.weight"]) { () throws(CheckpointError) in
            _ = try PyTorchModel(directory: directory)
        }
    }

    func testRejectedFilesAreNamedWithTheReason() throws {
        let cases: [(String, (CheckpointError) -> Bool, String)] = [
            ("rejects/unknown_global.bin", { if case .unsupportedPickle = $0 { return true }; return false }, "system"),
            ("rejects/truncated.bin", { if case .invalidArchive = $0 { return true }; return false }, "zip archive"),
            ("rejects/legacy.bin", { if case .legacyPyTorchFormat = $0 { return true }; return false }, "legacy (non-zip)"),
            ("rejects/noncontiguous.bin", { if case .nonContiguousTensor(_, "t", [3, 2], [1, 3]) = $0 { return true }; return false },
             "non-contiguous"),
        ]
        for (fixture, isExpected, mention) in cases {
            let directory = try directoryHolding(fixture)
            do {
                _ = try CheckpointFormat.open(directory: directory)
                XCTFail("\(fixture) was accepted")
            } catch {
                XCTAssertTrue(isExpected(error), "\(fixture): \(error)")
                XCTAssertTrue(error.description.contains(directory + "/pytorch_model.bin"), error.description)
                XCTAssertTrue(error.description.contains(mention), error.description)
            }
        }
    }

    /// The unpickler on the fixture's `data.pkl`, cut at every length and with bytes changed at random: it returns a
    /// value or a `PickleRejection`, never traps, and only the whole pickle gives the state dict.
    func testUnpicklerSurvivesTruncationAndCorruption() throws {
        let archive = try TorchZipArchive(file: InputFile(path: fixtures + "/dtypes/pytorch_model.bin"))
        let name = try XCTUnwrap(archive.entries.keys.first { $0.hasSuffix("/data.pkl") })
        let pickle = try archive.contents(of: name)
        var whole = RestrictedUnpickler(pickle)
        guard case .dict(let dict) = try whole.load() else { return XCTFail("not a dict") }
        XCTAssertEqual(dict.entries.count, 18)
        for length in 0..<pickle.count {
            var cut = RestrictedUnpickler(Array(pickle.prefix(length)))
            XCTAssertThrowsError(try cut.load(), "cut at \(length)")
        }
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for _ in 0..<2000 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            var corrupted = pickle
            corrupted[Int(state >> 33) % pickle.count] = UInt8(truncatingIfNeeded: state >> 17)
            var unpickler = RestrictedUnpickler(corrupted)
            _ = try? unpickler.load()
        }
    }

    func testUnknownGlobalsAndOpcodesAreRefusedByName() {
        // GLOBAL 'os system', then STOP: refused at the GLOBAL, before anything could call it.
        var global = RestrictedUnpickler([0x80, 0x02] + Array("cos\nsystem\n.".utf8))
        XCTAssertThrowsError(try global.load()) { error in
            XCTAssertEqual((error as? PickleRejection)?.unsupported, true)
            XCTAssertTrue((error as? PickleRejection)?.detail.contains("os.system") == true)
        }
        // NEWOBJ (0x81) is not written by torch.save for state dicts.
        var opcode = RestrictedUnpickler([0x80, 0x02, 0x29, 0x29, 0x81, 0x2E])
        XCTAssertThrowsError(try opcode.load()) { error in
            XCTAssertTrue((error as? PickleRejection)?.detail.contains("NEWOBJ") == true, "\(error)")
        }
    }

    /// The refusal `load()` gives for `bytes`, or nil when it accepts them.
    private func rejection(_ bytes: [UInt8]) -> PickleRejection? {
        var unpickler = RestrictedUnpickler(bytes)
        do throws(PickleRejection) {
            _ = try unpickler.load()
            return nil
        } catch {
            return error
        }
    }

    /// Found by review of `scripts/fuzz.sh pickle`'s target (corpus `regress-self-*`, `regress-mutual-append`): a list
    /// or dict put into itself, directly or through another, made a reference cycle that was never freed (a leak for
    /// LeakSanitizer, memory lost per file for the tool). A container can no longer change once it is referenced from
    /// anywhere but the stack.
    func testContainersThatWouldContainThemselvesAreRefused() {
        let cycles: [(String, [UInt8])] = [
            ("a list appended to itself", [0x80, 0x02, 0x5D, 0x71, 0x00, 0x68, 0x00, 0x61, 0x2E]),
            ("a dict set into itself", [0x80, 0x02, 0x7D, 0x71, 0x00, 0x4B, 0x01, 0x68, 0x00, 0x73, 0x2E]),
            ("two lists appended to each other",
             [0x80, 0x02, 0x5D, 0x71, 0x00, 0x5D, 0x71, 0x01, 0x68, 0x00, 0x61, 0x30, 0x68, 0x01, 0x61, 0x2E]),
        ]
        for (what, bytes) in cycles {
            let error = rejection(bytes)
            XCTAssertEqual(error?.unsupported, true, what)
            XCTAssertTrue(error?.detail.contains("shared or self-referencing container") == true, "\(what): \(String(describing: error))")
            guard case .rejected(let message) = CheckpointFuzzTargets.pickle(bytes) else { return XCTFail(what) }
            XCTAssertTrue(message.contains("fuzz/data.pkl"), message)
        }
    }

    /// Found by `scripts/fuzz.sh pickle` (corpus `regress-frame-use-after-free.pkl`, the minimized input): reading
    /// `FRAME`'s 8-byte length into an array that was then discarded wrote to freed memory in optimized builds (Swift
    /// 6.3.1 released the unused array before copying into it; AddressSanitizer and valgrind both see it). The length
    /// is now skipped without an array. The write only happens under -O, so this test checks what a debug build can:
    /// the input is refused for what it is, and a protocol-4 pickle's frames are read through.
    func testFrameLengthsAreSkipped() throws {
        let error = rejection([0x95, 0x95, 0x00, 0xFF, 0xFF, 0x00, 0xFF, 0xFF, 0x00])
        XCTAssertTrue(error?.detail.contains("ends without STOP") == true, String(describing: error))
        // pickle.dumps({'a': (1, 2.5, 'x', b'y', None, True)}, protocol=4): FRAME, MEMOIZE, SHORT_BINBYTES.
        var unpickler = RestrictedUnpickler([
            0x80, 0x04, 0x95, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x7D, 0x94, 0x8C, 0x01, 0x61, 0x94, 0x28,
            0x4B, 0x01, 0x47, 0x40, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x8C, 0x01, 0x78, 0x94, 0x43, 0x01, 0x79,
            0x94, 0x4E, 0x88, 0x74, 0x94, 0x73, 0x2E,
        ])
        guard case .dict(let dict) = try unpickler.load(), dict.entries.count == 1, case .string("a") = dict.entries[0].key,
              case .tuple(let tuple) = dict.entries[0].value else { return XCTFail("not {'a': tuple}") }
        XCTAssertEqual(tuple.items.map(\.kind), ["int 1", "float", "str 'x'", "bytes", "None", "bool"])
    }

    /// A list referenced twice (`{'a': l, 'b': l}`, the second through the memo) is no cycle: it is accepted, both
    /// entries are the same list, and it is freed with the value.
    func testSharedContainersAreAcceptedAndFreed() throws {
        weak var shared: PickleList?
        do {
            var unpickler = RestrictedUnpickler([0x80, 0x02, 0x7D, 0x71, 0x00, 0x28, 0x58, 0x01, 0x00, 0x00, 0x00, 0x61,
                                                 0x5D, 0x71, 0x01, 0x58, 0x01, 0x00, 0x00, 0x00, 0x62, 0x68, 0x01, 0x75, 0x2E])
            guard case .dict(let dict) = try unpickler.load(), dict.entries.count == 2,
                  case .list(let a) = dict.entries[0].value, case .list(let b) = dict.entries[1].value else {
                return XCTFail("not {'a': list, 'b': list}")
            }
            XCTAssertTrue(a === b)
            shared = a
        }
        XCTAssertNil(shared, "the list outlived the unpickler and its value")
    }

    /// Found by review of `scripts/fuzz.sh pickle`'s target (corpus `regress-nested-*`): a `data.pkl` of a million
    /// nested tuples (2 MB) overflowed the stack when the value was released (SIGSEGV), as deep lists and dicts
    /// would. Tuples, lists and dicts nest at most `RestrictedUnpickler.maxDepth` levels; deeper is refused, at once.
    func testNestingPastTheLimitIsRefusedNotACrash() {
        let limit = RestrictedUnpickler.maxDepth
        let header: [UInt8] = [0x80, 0x02]
        func tuples(_ depth: Int) -> [UInt8] { header + [0x29] + Array(repeating: 0x85, count: depth - 1) + [0x2E] }
        func lists(_ depth: Int) -> [UInt8] {
            header + Array(repeating: 0x5D, count: depth) + Array(repeating: 0x61, count: depth - 1) + [0x2E]
        }
        func dicts(_ depth: Int) -> [UInt8] {
            header + [0x7D] + Array([[UInt8]](repeating: [0x4B, 0x00, 0x7D], count: depth - 1).joined())
                + Array(repeating: 0x73, count: depth - 1) + [0x2E]
        }
        // Lists and dicts are all pushed before they are nested: 10,000 of them (not a million) keep this process's
        // peak RSS low, which the child of PeakResidentMemoryTests inherits through posix_spawn's exec (Linux records
        // the vfork parent's peak in the child's ru_maxrss).
        for (what, make, deep) in [("tuples", tuples, 1_000_000), ("lists", lists, 10_000), ("dicts", dicts, 10_000)] {
            XCTAssertNil(rejection(make(limit)), "\(what) \(limit) deep")
            for depth in [limit + 1, deep] {
                let error = rejection(make(depth))
                XCTAssertTrue(error?.detail.contains("nested more than \(limit) levels deep") == true,
                              "\(what) \(depth) deep: \(String(describing: error))")
            }
        }
        guard case .rejected(let message) = CheckpointFuzzTargets.pickle(tuples(1_000_000)) else { return XCTFail() }
        XCTAssertTrue(message.contains("nested more than"), message)
    }
}
