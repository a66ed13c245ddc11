import IR

/// A value on the stack of `RestrictedUnpickler`: the few Python objects a `torch.save`d state dict is made of.
/// Nothing here runs code; torch's callables are recognized by name and interpreted (`TorchGlobal`).
indirect enum PickleValue {
    /// `None`.
    case none
    /// `True` / `False`.
    case bool(Bool)
    /// An integer that fits in 64 bits (larger ones are refused).
    case int(Int)
    /// A float (`BINFLOAT`).
    case float(Double)
    /// A `str` (or a Python 2 byte string read as UTF-8).
    case string(String)
    /// A `bytes` object.
    case bytes([UInt8])
    /// A tuple.
    case tuple(PickleTuple)
    /// A list (a reference, as `APPEND`s mutate it in place).
    case list(PickleList)
    /// A dict or `collections.OrderedDict` (a reference, as `SETITEM`s mutate it in place), keys in insertion order.
    case dict(PickleDict)
    /// One of the globals the unpickler allows.
    case global(TorchGlobal)
    /// A storage named by a persistent id (`BINPERSID`).
    case storage(TorchStorageRef)
    /// A tensor rebuilt by `_rebuild_tensor_v2`/`_v3`/`_rebuild_parameter`.
    case tensor(TorchTensorRecord)

    /// A short description for error messages (`tuple of 3`, `str 'x'`, …).
    var kind: String {
        switch self {
        case .none: return "None"
        case .bool: return "bool"
        case .int(let i): return "int \(i)"
        case .float: return "float"
        case .string(let s): return "str '\(s)'"
        case .bytes: return "bytes"
        case .tuple(let t): return "tuple of \(t.items.count)"
        case .list: return "list"
        case .dict: return "dict"
        case .global(let g): return "global \(g.qualifiedName)"
        case .storage: return "storage"
        case .tensor: return "tensor"
        }
    }

    /// Tuples, lists and dicts nested in one another, this one included (0 for any other value, 1 for an empty
    /// tuple); known without walking the value (tuples and containers keep theirs).
    var depth: Int {
        switch self {
        case .tuple(let t): return t.depth
        case .list(let list): return list.depth
        case .dict(let dict): return dict.depth
        default: return 0
        }
    }
}

/// A Python tuple: its items and its nesting depth (`PickleValue.depth`), computed once when it is built.
struct PickleTuple {
    /// The items, in order.
    let items: [PickleValue]
    /// 1 + the deepest item's depth.
    let depth: Int

    /// The tuple of `items`.
    init(_ items: [PickleValue]) {
        self.items = items
        self.depth = 1 + items.reduce(0) { max($0, $1.depth) }
    }
}

/// A Python list being built by the unpickler.
final class PickleList {
    /// The items, in order.
    var items: [PickleValue] = []
    /// 1 + the deepest item's depth (`PickleValue.depth`).
    var depth = 1
    /// Set once the list left the stack or was fetched from the memo: from then on it may be referenced from
    /// elsewhere, and `RestrictedUnpickler` refuses to change it (see there).
    var sealed = false
}

/// A Python dict being built by the unpickler; keys keep their insertion order.
final class PickleDict {
    /// The key–value pairs, in insertion order.
    var entries: [(key: PickleValue, value: PickleValue)] = []
    /// 1 + the deepest key's or value's depth (`PickleValue.depth`).
    var depth = 1
    /// As `PickleList.sealed`.
    var sealed = false
}

/// The globals `torch.save` emits for a state dict, the only ones `RestrictedUnpickler` accepts.
enum TorchGlobal: Equatable {
    /// `collections.OrderedDict` (called with no arguments).
    case orderedDict
    /// `torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])`.
    case rebuildTensorV2
    /// `torch._utils._rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype[, metadata])`:
    /// dtypes without a typed storage class (the float8 formats), stored in a `torch.storage.UntypedStorage`.
    case rebuildTensorV3
    /// `torch._utils._rebuild_parameter(data, requires_grad, backward_hooks)`: an `nn.Parameter`, read as its tensor.
    case rebuildParameter
    /// A storage class: `torch.FloatStorage` etc. with its element type, or `torch.storage.UntypedStorage` (nil: bytes).
    case storageType(name: String, dtype: DType?)
    /// A dtype object (`torch.float8_e4m3fn`, …), the last argument of `_rebuild_tensor_v3`.
    case dtype(name: String, DType)

    /// The Python name, `module.name`.
    var qualifiedName: String {
        switch self {
        case .orderedDict: return "collections.OrderedDict"
        case .rebuildTensorV2: return "torch._utils._rebuild_tensor_v2"
        case .rebuildTensorV3: return "torch._utils._rebuild_tensor_v3"
        case .rebuildParameter: return "torch._utils._rebuild_parameter"
        case .storageType(let name, _): return name
        case .dtype(let name, _): return name
        }
    }

    /// The typed storage classes of `torch` and their element types.
    static let storageTypes: [String: DType] = [
        "DoubleStorage": .f64, "FloatStorage": .f32, "HalfStorage": .f16, "BFloat16Storage": .bf16,
        "LongStorage": .i64, "IntStorage": .i32, "ShortStorage": .i16, "CharStorage": .i8, "ByteStorage": .u8,
        "BoolStorage": .bool,
    ]

    /// The global `module.name`, or nil when it is not one torch emits for a state dict.
    init?(module: String, name: String) {
        switch (module, name) {
        case ("collections", "OrderedDict"): self = .orderedDict
        case ("torch._utils", "_rebuild_tensor_v2"): self = .rebuildTensorV2
        case ("torch._utils", "_rebuild_tensor_v3"): self = .rebuildTensorV3
        case ("torch._utils", "_rebuild_parameter"): self = .rebuildParameter
        case ("torch.storage", "UntypedStorage"), ("torch", "UntypedStorage"):
            self = .storageType(name: "\(module).\(name)", dtype: nil)
        case ("torch", _):
            if let dtype = Self.storageTypes[name] {
                self = .storageType(name: "torch.\(name)", dtype: dtype)
            } else if let dtype = DType.allCases.first(where: { $0.torchName == name }) {
                self = .dtype(name: "torch.\(name)", dtype)
            } else {
                return nil
            }
        default: return nil
        }
    }
}

/// A storage as a persistent id names it: `('storage', StorageType, key, location, numel)`; its bytes are the
/// archive entry `data/KEY`.
struct TorchStorageRef: Equatable {
    /// The key: the entry name under `data/`.
    var key: String
    /// The element type of a typed storage; nil for an `UntypedStorage` (whose tensors carry their dtype).
    var dtype: DType?
    /// The storage's size in bytes (numel × element size; numel is bytes for an untyped storage).
    var byteCount: Int
}

/// A tensor as `torch.save` describes it: a view (`storageOffset` elements in, `shape`, `stride` in elements) of a storage.
struct TorchTensorRecord: Equatable {
    /// The storage viewed.
    var storage: TorchStorageRef
    /// The element type (the storage's, or `_rebuild_tensor_v3`'s dtype argument).
    var dtype: DType
    /// Elements from the start of the storage to the first element.
    var storageOffset: Int
    /// Dimensions, outermost first (`[]` for a 0-d scalar).
    var shape: [Int]
    /// Elements between neighbours along each dimension.
    var stride: [Int]
}

/// Why the unpickler refused a pickle (the caller adds the file name).
struct PickleRejection: Error, Equatable {
    /// What was refused and where (opcode and byte offset, global name, call).
    var detail: String
    /// Whether it is the opcode or global allow-list that refused (as opposed to a malformed stream).
    var unsupported: Bool
}

/// A pickle reader that understands only what `torch.save` writes for a state dict, and never executes anything:
/// protocol 2 opcodes (plus the protocol 3–4 framing, bytes, 8-byte unicode and memo opcodes), the globals of
/// `TorchGlobal`, and persistent ids of storages. `REDUCE` applies one of torch's rebuild functions by name;
/// any other global or opcode is rejected with its name before anything is built from it. Follows the layout of
/// `torch.serialization._save` / `_load` (PyTorch 2.x).
///
/// Whatever the bytes, the values it builds are finite trees (sharing allowed) that release without deep recursion:
/// - a list or dict can be changed (`APPEND(S)`, `SETITEM(S)`) only while it has never left the stack nor been
///   fetched from the memo (`sealed`), which is how `pickle` writes every container, filled right after it is
///   created; so no value can ever contain itself (a reference cycle that would never be freed). A pickle that
///   changes a container after that (a self-referencing one) is refused;
/// - tuples, lists and dicts nest at most `maxDepth` levels (a state dict needs about 5), so that neither releasing
///   a value nor anything else recursive can exhaust the stack.
struct RestrictedUnpickler {
    /// The deepest nesting of tuples, lists and dicts accepted.
    static let maxDepth = 1000

    /// The pickle.
    private let bytes: [UInt8]
    /// The next byte to read.
    private var position = 0
    /// The pickle machine's stack.
    private var stack: [PickleValue] = []
    /// Stack heights at each open `MARK`.
    private var marks: [Int] = []
    /// The memo (`BINPUT`/`BINGET`).
    private var memo: [Int: PickleValue] = [:]

    /// An unpickler over `bytes` (a whole `data.pkl`).
    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// The names of the opcodes it accepts, for messages.
    static let opcodeNames: [UInt8: String] = [
        0x80: "PROTO", 0x95: "FRAME", 0x2E: "STOP", 0x28: "MARK", 0x7D: "EMPTY_DICT", 0x5D: "EMPTY_LIST",
        0x29: "EMPTY_TUPLE", 0x71: "BINPUT", 0x72: "LONG_BINPUT", 0x94: "MEMOIZE", 0x68: "BINGET", 0x6A: "LONG_BINGET",
        0x63: "GLOBAL", 0x93: "STACK_GLOBAL", 0x51: "BINPERSID", 0x4A: "BININT", 0x4B: "BININT1", 0x4D: "BININT2",
        0x8A: "LONG1", 0x58: "BINUNICODE", 0x8C: "SHORT_BINUNICODE", 0x8D: "BINUNICODE8", 0x54: "BINSTRING",
        0x55: "SHORT_BINSTRING", 0x42: "BINBYTES", 0x43: "SHORT_BINBYTES", 0x74: "TUPLE", 0x85: "TUPLE1",
        0x86: "TUPLE2", 0x87: "TUPLE3", 0x73: "SETITEM", 0x75: "SETITEMS", 0x61: "APPEND", 0x65: "APPENDS",
        0x52: "REDUCE", 0x62: "BUILD", 0x4E: "NONE", 0x88: "NEWTRUE", 0x89: "NEWFALSE", 0x47: "BINFLOAT", 0x30: "POP",
    ]

    /// Names of well-known opcodes it refuses (for messages): the ones that build arbitrary objects or run code.
    static let refusedOpcodeNames: [UInt8: String] = [
        0x69: "INST", 0x6F: "OBJ", 0x81: "NEWOBJ", 0x92: "NEWOBJ_EX", 0x50: "PERSID", 0x82: "EXT1", 0x83: "EXT2",
        0x84: "EXT4", 0x97: "BYTEARRAY8", 0x98: "NEXT_BUFFER", 0x99: "READONLY_BUFFER", 0x49: "INT", 0x4C: "LONG",
        0x53: "STRING", 0x56: "UNICODE", 0x46: "FLOAT", 0x67: "GET", 0x70: "PUT", 0x64: "DICT", 0x6C: "LIST",
        0x8F: "EMPTY_SET", 0x90: "ADDITEMS", 0x91: "FROZENSET", 0x31: "POP_MARK", 0x32: "DUP", 0x8B: "LONG4",
    ]

    /// Runs the pickle to its `STOP` and returns the value it leaves.
    /// - Throws: `PickleRejection` naming the opcode (and its offset) or global it does not allow, a call it does not
    ///   understand, or a malformed stream (truncated, stack underflow, bad memo reference).
    mutating func load() throws(PickleRejection) -> PickleValue {
        while true {
            let offset = position
            let opcode = try byte()
            switch opcode {
            case 0x80: _ = try byte()
            case 0x95: try skip(8)
            case 0x2E:
                guard let result = stack.popLast(), stack.isEmpty, marks.isEmpty else {
                    throw malformed("STOP with \(stack.count + (marks.isEmpty ? 0 : 1)) values on the stack, expected 1")
                }
                return result
            case 0x28: marks.append(stack.count)
            case 0x7D: stack.append(.dict(PickleDict()))
            case 0x5D: stack.append(.list(PickleList()))
            case 0x29: stack.append(try tuple([]))
            case 0x71: memo[Int(try byte())] = try top()
            case 0x72: memo[Int(try uint32())] = try top()
            case 0x94: memo[memo.count] = try top()
            case 0x68: stack.append(try memoized(Int(try byte())))
            case 0x6A: stack.append(try memoized(Int(try uint32())))
            case 0x63:
                let module = try line(), name = try line()
                stack.append(.global(try global(module, name)))
            case 0x93:
                guard case .string(let name) = try pop(), case .string(let module) = try pop() else {
                    throw malformed("STACK_GLOBAL needs two strings")
                }
                stack.append(.global(try global(module, name)))
            case 0x51: stack.append(.storage(try persistentStorage(try pop())))
            case 0x4A: stack.append(.int(Int(Int32(bitPattern: try uint32()))))
            case 0x4B: stack.append(.int(Int(try byte())))
            case 0x4D: stack.append(.int(Int(try byte()) | Int(try byte()) << 8))
            case 0x8A: stack.append(.int(try long(Int(try byte()))))
            case 0x58: stack.append(.string(try text(Int(try uint32()))))
            case 0x8C: stack.append(.string(try text(Int(try byte()))))
            case 0x8D: stack.append(.string(try text(try length8())))
            case 0x54: stack.append(.string(try text(Int(Int32(bitPattern: try uint32())))))
            case 0x55: stack.append(.string(try text(Int(try byte()))))
            case 0x42: stack.append(.bytes(try read(Int(try uint32()))))
            case 0x43: stack.append(.bytes(try read(Int(try byte()))))
            case 0x74: stack.append(try tuple(try popMark()))
            case 0x85: stack.append(try tuple(try pop(1)))
            case 0x86: stack.append(try tuple(try pop(2)))
            case 0x87: stack.append(try tuple(try pop(3)))
            case 0x73:
                let pair = try pop(2)
                try setItems(pair, at: offset)
            case 0x75: try setItems(try popMark(), at: offset)
            case 0x61:
                let item = try pop()
                guard case .list(let list) = try top() else { throw malformed("APPEND to a non-list") }
                try insert([item], into: list, at: offset)
            case 0x65:
                let items = try popMark()
                guard case .list(let list) = try top() else { throw malformed("APPENDS to a non-list") }
                try insert(items, into: list, at: offset)
            case 0x52:
                let arguments = try pop()
                let callable = try pop()
                stack.append(try reduce(callable, arguments))
            case 0x62:
                let state = try pop()
                switch (try top(), state) {
                case (.dict, _), (.tensor, .none), (.tensor, .dict), (.tensor, .tuple): break  // attributes: ignored
                case (let object, _): throw unsupported("BUILD of \(object.kind) with \(state.kind) at byte \(offset)")
                }
            case 0x4E: stack.append(.none)
            case 0x88: stack.append(.bool(true))
            case 0x89: stack.append(.bool(false))
            case 0x47:
                let raw = try read(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                stack.append(.float(Double(bitPattern: raw)))
            case 0x30: _ = try pop()
            default:
                let name = Self.refusedOpcodeNames[opcode].map { "\($0) (0x\(hex(opcode)))" } ?? "0x\(hex(opcode))"
                throw unsupported("opcode \(name) at byte \(offset) is not one torch.save writes for a state dict")
            }
        }
    }

    // MARK: the calls torch's rebuild functions make

    /// Applies one of torch's rebuild functions (or `OrderedDict()`) to `arguments` by name; anything else is refused.
    private func reduce(_ callable: PickleValue, _ arguments: PickleValue) throws(PickleRejection) -> PickleValue {
        guard case .global(let function) = callable, case .tuple(let tuple) = arguments else {
            throw unsupported("REDUCE of \(callable.kind) with \(arguments.kind)")
        }
        let args = tuple.items
        switch function {
        case .orderedDict:
            guard args.isEmpty else { throw unsupported("collections.OrderedDict called with \(args.count) arguments") }
            return .dict(PickleDict())
        case .rebuildTensorV2, .rebuildTensorV3:
            let v3 = function == .rebuildTensorV3
            guard args.count >= (v3 ? 7 : 6), args.count <= (v3 ? 8 : 7),
                  case .storage(let storage) = args[0], case .int(let offset) = args[1],
                  let shape = integers(args[2]), let stride = integers(args[3]) else {
                throw unsupported("\(function.qualifiedName) called with (\(args.map(\.kind).joined(separator: ", ")))")
            }
            var dtype = storage.dtype
            if v3 {
                guard case .global(.dtype(_, let explicit)) = args[6] else {
                    throw unsupported("\(function.qualifiedName) with dtype argument \(args[6].kind)")
                }
                if let typed = storage.dtype, typed != explicit {
                    throw malformed("a \(explicit.torchName) tensor in a storage of \(typed.torchName)")
                }
                dtype = explicit
            }
            guard let dtype else { throw malformed("\(function.qualifiedName): an untyped storage without a dtype") }
            return .tensor(TorchTensorRecord(storage: storage, dtype: dtype, storageOffset: offset, shape: shape, stride: stride))
        case .rebuildParameter:
            guard args.count == 3, case .tensor(let tensor) = args[0] else {
                throw unsupported("\(function.qualifiedName) called with (\(args.map(\.kind).joined(separator: ", ")))")
            }
            return .tensor(tensor)
        case .storageType, .dtype:
            throw unsupported("calling \(function.qualifiedName)")
        }
    }

    /// `('storage', StorageType, key, location, numel)` → the storage it names.
    private func persistentStorage(_ pid: PickleValue) throws(PickleRejection) -> TorchStorageRef {
        guard case .tuple(let tuple) = pid, case let items = tuple.items, items.count == 5, case .string("storage") = items[0],
              case .global(.storageType(_, let dtype)) = items[1], case .string(let key) = items[2],
              case .int(let numel) = items[4], numel >= 0 else {
            throw unsupported("persistent id \(pid.kind) is not ('storage', StorageType, key, location, numel)")
        }
        let (bytes, overflow) = numel.multipliedReportingOverflow(by: dtype?.byteSize ?? 1)
        guard !overflow else { throw malformed("storage \(key) has \(numel) elements, too many") }
        return TorchStorageRef(key: key, dtype: dtype, byteCount: bytes)
    }

    /// The allowed global `module.name`, or a rejection naming it.
    private func global(_ module: String, _ name: String) throws(PickleRejection) -> TorchGlobal {
        guard let global = TorchGlobal(module: module, name: name) else {
            throw unsupported("global \(module).\(name) is not one torch.save writes for a state dict (refused, never called)")
        }
        return global
    }

    /// Adds key–value pairs (alternating in `items`) to the dict on top of the stack (the opcode at byte `offset`).
    private mutating func setItems(_ items: [PickleValue], at offset: Int) throws(PickleRejection) {
        guard items.count % 2 == 0, case .dict(let dict) = try top() else { throw malformed("SETITEM(S) on a non-dict") }
        guard !dict.sealed else { throw sealedContainer("SETITEM(S)", "dict", offset) }
        dict.depth = try deeper(dict.depth, items)
        for i in stride(from: 0, to: items.count, by: 2) { dict.entries.append((items[i], items[i + 1])) }
    }

    /// Appends `items` to `list` (the opcode at byte `offset`).
    private func insert(_ items: [PickleValue], into list: PickleList, at offset: Int) throws(PickleRejection) {
        guard !list.sealed else { throw sealedContainer("APPEND(S)", "list", offset) }
        list.depth = try deeper(list.depth, items)
        list.items.append(contentsOf: items)
    }

    /// A container's depth once `items` are in it.
    /// - Throws: a rejection when that is more than `maxDepth`.
    private func deeper(_ depth: Int, _ items: [PickleValue]) throws(PickleRejection) -> Int {
        let result = items.reduce(depth) { max($0, $1.depth + 1) }
        guard result <= Self.maxDepth else { throw tooDeep() }
        return result
    }

    /// The tuple of `items`.
    /// - Throws: a rejection when it nests more than `maxDepth` levels.
    private func tuple(_ items: [PickleValue]) throws(PickleRejection) -> PickleValue {
        let tuple = PickleTuple(items)
        guard tuple.depth <= Self.maxDepth else { throw tooDeep() }
        return .tuple(tuple)
    }

    /// Marks `value` (a list or dict) as possibly referenced from elsewhere: it can no longer be changed.
    private func seal(_ value: PickleValue) {
        switch value {
        case .list(let list): list.sealed = true
        case .dict(let dict): dict.sealed = true
        default: break
        }
    }

    /// The integers of a tuple of integers (sizes and strides), nil for anything else.
    private func integers(_ value: PickleValue) -> [Int]? {
        guard case .tuple(let tuple) = value else { return nil }
        var result: [Int] = []
        for item in tuple.items {
            guard case .int(let i) = item else { return nil }
            result.append(i)
        }
        return result
    }

    // MARK: stack and stream

    /// The value on top of the stack (above the last mark).
    private func top() throws(PickleRejection) -> PickleValue {
        guard let value = stack.last, (marks.last ?? 0) <= stack.count - 1 else { throw malformed("empty stack") }
        return value
    }

    /// Removes and returns the top value (above the last mark); a list or dict taken off the stack is sealed.
    private mutating func pop() throws(PickleRejection) -> PickleValue {
        guard stack.count > (marks.last ?? 0), let value = stack.popLast() else { throw malformed("stack underflow") }
        seal(value)
        return value
    }

    /// Removes and returns the top `n` values, deepest first (lists and dicts among them sealed).
    private mutating func pop(_ n: Int) throws(PickleRejection) -> [PickleValue] {
        guard stack.count - n >= (marks.last ?? 0) else { throw malformed("stack underflow") }
        defer { stack.removeLast(n) }
        let values = Array(stack.suffix(n))
        values.forEach(seal)
        return values
    }

    /// Removes and returns the values above the last mark (lists and dicts among them sealed), and the mark.
    private mutating func popMark() throws(PickleRejection) -> [PickleValue] {
        guard let mark = marks.popLast() else { throw malformed("no MARK") }
        defer { stack.removeLast(stack.count - mark) }
        let values = Array(stack[mark...])
        values.forEach(seal)
        return values
    }

    /// The memo entry `index` (a list or dict in it is sealed: it is now on the stack besides wherever it was).
    private func memoized(_ index: Int) throws(PickleRejection) -> PickleValue {
        guard let value = memo[index] else { throw malformed("memo \(index) read before it is written") }
        seal(value)
        return value
    }

    /// The next byte of the stream.
    private mutating func byte() throws(PickleRejection) -> UInt8 {
        guard position < bytes.count else { throw malformed("the pickle ends without STOP") }
        defer { position += 1 }
        return bytes[position]
    }

    /// The next `count` bytes of the stream.
    private mutating func read(_ count: Int) throws(PickleRejection) -> [UInt8] {
        guard count >= 0, count <= bytes.count - position else { throw malformed("the pickle ends inside an argument") }
        defer { position += count }
        return Array(bytes[position..<(position + count)])
    }

    /// Moves past the next `count` bytes of the stream without copying them (`FRAME`'s length, which is not needed).
    /// Never `_ = try read(count)`: Swift 6.3.1's optimizer frees that unused array before it copies the bytes into
    /// it (a write to freed memory in -O builds, found by `scripts/fuzz.sh pickle`).
    private mutating func skip(_ count: Int) throws(PickleRejection) {
        guard count >= 0, count <= bytes.count - position else { throw malformed("the pickle ends inside an argument") }
        position += count
    }

    /// A little-endian 4-byte unsigned integer.
    private mutating func uint32() throws(PickleRejection) -> UInt32 {
        try read(4).reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
    }

    /// A little-endian 8-byte length.
    private mutating func length8() throws(PickleRejection) -> Int {
        let raw = try read(8).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        guard let length = Int(exactly: raw) else { throw malformed("length \(raw) too large") }
        return length
    }

    /// A little-endian two's-complement integer of `count` bytes (`LONG1`).
    private mutating func long(_ count: Int) throws(PickleRejection) -> Int {
        let digits = try read(count)
        guard count <= 8 else { throw unsupported("an integer of \(count) bytes") }
        if digits.isEmpty { return 0 }
        var value: UInt64 = 0
        for (i, d) in digits.enumerated() { value |= UInt64(d) << (8 * UInt64(i)) }
        if count < 8, digits[count - 1] & 0x80 != 0 { value |= ~UInt64(0) << (8 * UInt64(count)) }
        return Int(Int64(bitPattern: value))
    }

    /// `count` bytes as a UTF-8 string.
    private mutating func text(_ count: Int) throws(PickleRejection) -> String {
        let raw = try read(count)
        guard let string = String(validating: raw, as: UTF8.self) else { throw malformed("a string that is not UTF-8") }
        return string
    }

    /// The bytes up to the next newline, as a string (`GLOBAL`'s arguments).
    private mutating func line() throws(PickleRejection) -> String {
        guard let end = bytes[position...].firstIndex(of: 0x0A) else { throw malformed("GLOBAL without a newline") }
        let raw = Array(bytes[position..<end])
        position = end + 1
        guard let string = String(validating: raw, as: UTF8.self) else { throw malformed("a GLOBAL name that is not UTF-8") }
        return string
    }

    /// A rejection for a stream that is not a well-formed pickle.
    private func malformed(_ detail: String) -> PickleRejection {
        PickleRejection(detail: "malformed pickle at byte \(position): \(detail)", unsupported: false)
    }

    /// The rejection of a change to a sealed container: one that may be referenced from elsewhere, itself included.
    private func sealedContainer(_ opcode: String, _ kind: String, _ offset: Int) -> PickleRejection {
        unsupported("\(opcode) at byte \(offset) changes a \(kind) that was already taken off the stack or fetched "
                    + "from the memo (a shared or self-referencing container, which torch.save does not write for a "
                    + "state dict)")
    }

    /// The rejection of a value nested more than `maxDepth` levels deep.
    private func tooDeep() -> PickleRejection {
        unsupported("tuples, lists and dicts nested more than \(Self.maxDepth) levels deep at byte \(position) "
                    + "(a state dict needs a few)")
    }

    /// A rejection by the opcode, global or call allow-list.
    private func unsupported(_ detail: String) -> PickleRejection {
        PickleRejection(detail: detail, unsupported: true)
    }
}

/// Two hex digits.
private func hex(_ byte: UInt8) -> String {
    let digits = String(byte, radix: 16, uppercase: true)
    return digits.count == 1 ? "0" + digits : digits
}
