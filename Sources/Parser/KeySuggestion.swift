/// "Did you mean" suggestions for misspelt keys, by Levenshtein distance.
public enum KeySuggestion {
    /// The allowed key nearest to `key`, if it is close enough to be a plausible typo.
    public static func closest(to key: String, among allowed: [String]) -> String? {
        let limit = max(2, key.count / 3)
        let scored = allowed.map { (candidate: $0, distance: distance(key, $0)) }
        guard let best = scored.min(by: { $0.distance < $1.distance }), best.distance <= limit else { return nil }
        return best.candidate
    }

    /// The number of single-character insertions, deletions and substitutions turning `a` into `b`.
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var previous = Array(0...b.count)
        for (i, ca) in a.enumerated() {
            var current = [i + 1]
            for (j, cb) in b.enumerated() {
                current.append(min(previous[j] + (ca == cb ? 0 : 1), previous[j + 1] + 1, current[j] + 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}
