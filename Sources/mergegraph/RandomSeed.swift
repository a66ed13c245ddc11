import ArgumentParser

/// The value of `--random-seed`: a 64-bit seed given as any integer from −2⁶³ to 2⁶⁴ − 1, a negative one standing
/// for 2⁶⁴ plus it, as `torch.manual_seed` (which mergekit's `--random-seed` reaches) takes it. So `-1` and
/// `18446744073709551615` are the same seed, and the seed `plan` prints can be given back.
struct RandomSeed: ExpressibleByArgument, Sendable {
    /// The seed's 64 bits.
    var value: UInt64

    init(value: UInt64) { self.value = value }

    /// nil (argument-parser's "invalid value" error, exit 64) for anything but an integer in that range.
    init?(argument: String) {
        if let unsigned = UInt64(argument) {
            value = unsigned
        } else if let signed = Int64(argument) {
            value = UInt64(bitPattern: signed)
        } else {
            return nil
        }
    }

    var defaultValueDescription: String { "\(value)" }
}
