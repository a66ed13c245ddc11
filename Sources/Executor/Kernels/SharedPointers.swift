/// Raw pointers made shareable with parallel workers; each worker touches a disjoint range.
struct SharedPointers: @unchecked Sendable {
    var inputs: [UnsafePointer<Float>]
    var output: UnsafeMutablePointer<Float>
}
