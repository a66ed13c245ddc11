/// The merge methods mergegraph implements: mergekit 0.1.5's, each declared by one type in
/// `Sources/Planner/Methods`. Any other `merge_method` fails to compile with "unknown merge method 'NAME'" and a "did you mean".
public enum MethodRegistry {
    /// Every method, in the order `mergegraph methods` and the README list them. The element-choosing and
    /// spherical families list themselves beside their declarations (`selective`, `spherical`).
    static let methods: [any MergeMethod] = [Linear()] + GeneralizedTaskArithmetic.all
        + [RAM(), RAMPlusTL(), Slerp(), ModelStock(), Passthrough()] + selective + spherical

    /// The declarations of every method, in registry order.
    public static var specs: [MethodSpec] { methods.map(\.spec) }

    /// The method called `name` (mergekit's `merge_method`), if implemented.
    static func method(named name: String) -> (any MergeMethod)? {
        methods.first { $0.spec.name == name }
    }

    /// The declaration of the method called `name`, if implemented.
    public static func spec(named name: String) -> MethodSpec? {
        method(named: name)?.spec
    }
}
