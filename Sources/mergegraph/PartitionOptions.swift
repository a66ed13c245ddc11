import ArgumentParser
import Foundation

/// `--partition I/N` and `--partition-count N`: which share of the output shards this run computes when one merge
/// is split across workers (a Slurm job array, a Kubernetes Indexed Job), from the command line or the environment.
struct PartitionOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "Compute only partition I of N of the output shards (1 ≤ I ≤ N), e.g. 2/8; `auto` takes I and N from the environment (SLURM_ARRAY_TASK_ID with SLURM_ARRAY_TASK_COUNT or SLURM_ARRAY_TASK_MIN/MAX, or JOB_COMPLETION_INDEX with --partition-count). Then run `mergegraph finalize`.",
        valueName: "I/N|auto"))
    var partition: String?

    @Option(name: .customLong("partition-count"),
            help: "Workers in all (N), with the index from the environment (Kubernetes' JOB_COMPLETION_INDEX, counted from 0, or Slurm's array task id).")
    var partitionCount: Int?

    /// This run's partition (1-based index, count), nil for an ordinary run.
    /// - Throws: `ValidationError` naming the option or variable that is missing or out of range.
    func resolve(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> (index: Int, count: Int)? {
        guard partition != nil || partitionCount != nil else { return nil }
        if let partition, partition != "auto" {
            let parts = partition.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]) else {
                throw ValidationError("--partition: '\(partition)' is not I/N (e.g. 2/8) or auto")
            }
            return try Self.checked(i, n, source: "--partition \(partition)")
        }
        if let id = environment["JOB_COMPLETION_INDEX"].flatMap({ Int($0) }) {
            guard let n = partitionCount else {
                throw ValidationError("JOB_COMPLETION_INDEX=\(id) is set: give the number of workers with --partition-count N (the Job's completions)")
            }
            return try Self.checked(id + 1, n, source: "JOB_COMPLETION_INDEX=\(id) and --partition-count \(n)")
        }
        if let id = environment["SLURM_ARRAY_TASK_ID"].flatMap({ Int($0) }) {
            let low = environment["SLURM_ARRAY_TASK_MIN"].flatMap { Int($0) } ?? 0
            let n = partitionCount ?? environment["SLURM_ARRAY_TASK_COUNT"].flatMap { Int($0) }
                ?? environment["SLURM_ARRAY_TASK_MAX"].flatMap { Int($0) }.map { $0 - low + 1 }
            guard let n else {
                throw ValidationError("SLURM_ARRAY_TASK_ID=\(id) is set but neither SLURM_ARRAY_TASK_COUNT nor SLURM_ARRAY_TASK_MAX: give --partition-count N")
            }
            return try Self.checked(id - low + 1, n, source: "SLURM_ARRAY_TASK_ID=\(id) (array from \(low), \(n) tasks)")
        }
        throw ValidationError("--partition auto: none of SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX is set; give --partition I/N")
    }

    private static func checked(_ i: Int, _ n: Int, source: String) throws -> (index: Int, count: Int) {
        guard n >= 1, (1...n).contains(i) else {
            throw ValidationError("\(source): partition \(i) of \(n) is out of range (1 ≤ I ≤ N)")
        }
        return (i, n)
    }
}
