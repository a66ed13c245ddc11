#!/bin/sh
# Fuzzes one reader of untrusted input with libFuzzer for SECONDS seconds:
#   scripts/fuzz.sh TARGET SECONDS [libFuzzer options]
# or runs the target on given inputs only (to replay a finding, or shrink it with -minimize_crash=1 -runs=N
# -exact_artifact_path=OUT):
#   scripts/fuzz.sh TARGET replay [libFuzzer options] FILE...
# TARGET:
#   config       YAML text -> the fully checked config (ConfigFuzzTarget.run: UTF-8, libyaml, composer limits,
#                AST decoding lenient and --strict, bakllama configs, every error message)
#   safetensors  file bytes -> the validated safetensors header (CheckpointFuzzTargets.safetensors)
#   pickle       a bare data.pkl, or a whole torch.save zip archive -> the state dict's tensors through the
#                restricted unpickler and the .bin reader's checks (CheckpointFuzzTargets.pickle)
#   json         the JSON parser and serializer (CheckpointFuzzTargets.json)
# The target's modules are compiled as one module with -sanitize=fuzzer,address into .build/fuzz/TARGET, with the
# entry point scripts/fuzz/TARGET.swift. The run starts from the seeds in scripts/fuzz/corpus/TARGET (kept in the repo, never
# written) and the scratch corpus .build/fuzz/TARGET-corpus (where new inputs go; it grows across runs); crashing,
# leaking and slow inputs land in .build/fuzz/TARGET-artifacts/. Exit status: 0 when SECONDS pass without a finding,
# else non-zero: 1 for what AddressSanitizer reports (memory errors, stack overflow, a leak found at exit), 77 for
# a crash or leak libFuzzer reports, 70 for a timeout, 71 for out of memory.
# Each input may take at most FUZZ_TIMEOUT seconds (default 10) and FUZZ_RSS_MB MB (default 1024).
set -eu
usage="usage: scripts/fuzz.sh config|safetensors|pickle|json SECONDS|replay [libFuzzer options] [FILE...]"
target=${1:?$usage}
seconds=${2:?$usage}
shift 2
root=$(cd "$(dirname "$0")/.." && pwd)
work="$root/.build/fuzz"
seeds="$root/scripts/fuzz/corpus/$target"
extra=""
case "$target" in
config)
    files="$root/Sources/IR/*.swift $root/Sources/Parser/*.swift"
    extra="-I $root/Sources/CYAML -lyaml"
    ;;
safetensors|pickle|json)
    files="$root/Sources/IR/*.swift $(find "$root/Sources/Checkpoint" -name '*.swift' | sort | tr '\n' ' ')"
    extra="-I $root/Sources/CZlib -lz"
    ;;
*) echo "unknown target '$target'; $usage" >&2; exit 64 ;;
esac
[ -d "$seeds" ] || { echo "no seed corpus at $seeds" >&2; exit 64; }
src="$work/$target-src"
corpus="$work/$target-corpus"
artifacts="$work/$target-artifacts"
scratch="$work/$target-tmp"
rm -rf "$src" && mkdir -p "$src" "$corpus" "$artifacts" "$scratch"
# One module: imports of the project's own modules are dropped.
for f in $files; do
    sed -e '/^import IR$/d' -e '/^@testable import IR$/d' -e '/^import Parser$/d' -e '/^import Checkpoint$/d' "$f" \
        > "$src/$(basename "$(dirname "$f")")-$(basename "$f")"
done
cp "$root/scripts/fuzz/$target.swift" "$src/Fuzz-$target.swift"
swiftc -parse-as-library -module-name FuzzTarget -sanitize=fuzzer,address -O -g $extra "$src"/*.swift -o "$work/$target"
# The readers' scratch files (CheckpointFuzzTargets) go to $scratch, not /tmp.
export TMPDIR="$scratch"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
# A Swift trap is reported by libFuzzer's signal handler ("deadly signal", with the sanitizer's stack trace): the
# Swift runtime's own backtracer would take seconds per crash (slow to minimize) and trips AddressSanitizer.
export SWIFT_BACKTRACE="${SWIFT_BACKTRACE:-enable=no}"
limits="-timeout=${FUZZ_TIMEOUT:-10} -rss_limit_mb=${FUZZ_RSS_MB:-1024} -detect_leaks=1"
[ "$seconds" = replay ] && exec "$work/$target" $limits "$@"
exec "$work/$target" -max_total_time="$seconds" $limits -print_final_stats=1 -artifact_prefix="$artifacts/" "$@" \
    "$corpus" "$seeds"
