/// The static type of an IR value: element type and shape.
public struct TensorType: Hashable, Sendable, CustomStringConvertible {
    public var dtype: DType
    public var shape: [Int]

    public init(dtype: DType, shape: [Int]) {
        self.dtype = dtype
        self.shape = shape
    }

    /// Number of elements.
    public var elementCount: Int { shape.reduce(1, *) }

    /// Bytes when stored in `dtype`.
    public var byteCount: Int { elementCount * dtype.byteSize }

    /// Rows when viewed as a matrix `[shape[0], rest]` (1 for scalars).
    public var rowCount: Int { shape.first ?? 1 }

    public var description: String {
        "\(dtype.shortName)[\(shape.map(String.init).joined(separator: ","))]"
    }
}
