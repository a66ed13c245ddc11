#!/bin/sh
# Fuzzes one input parser with libFuzzer for SECONDS seconds: scripts/fuzz.sh TARGET SECONDS [libFuzzer options]
# TARGET: yaml (config parser), json (JSON parser), safetensors (safetensors header reader).
# The target's sources are compiled as one module with -sanitize=fuzzer,address into .build/fuzz/TARGET;
# crashes and the corpus are kept in .build/fuzz/TARGET-{corpus,artifacts}/.
set -eu
target=${1:?usage: scripts/fuzz.sh yaml|json|safetensors SECONDS}
seconds=${2:?usage: scripts/fuzz.sh yaml|json|safetensors SECONDS}
shift 2
root=$(cd "$(dirname "$0")/.." && pwd)
work="$root/.build/fuzz"
src="$work/$target-src"
rm -rf "$src" && mkdir -p "$src" "$work/$target-corpus" "$work/$target-artifacts"
extra=""
case "$target" in
yaml)
    files="$root/Sources/IR/*.swift $root/Sources/Parser/*.swift"
    extra="-I $root/Sources/CYAML -lyaml"
    i=0; for f in "$root"/Tests/Fixtures/conformance/cases/*/config.yml; do i=$((i+1)); cp "$f" "$work/$target-corpus/seed$i.yml"; done
    ;;
json)
    files="$root/Sources/Checkpoint/JSON/*.swift"
    cp "$root"/Tests/Fixtures/conformance/models/*/config.json "$work/$target-corpus/" 2>/dev/null || true
    ;;
safetensors)
    # The IR and Checkpoint modules as one; ZIPFoundation (the PyTorch reader's) linked from the debug build.
    [ -f "$root/.build/debug/Modules/ZIPFoundation.swiftmodule" ] || { echo "run swift build first" >&2; exit 1; }
    extra="-I $root/.build/debug/Modules -I $root/.build/checkouts/ZIPFoundation/Sources/CZLib $root/.build/debug/ZIPFoundation.build/*.o -lz"
    files="$root/Sources/IR/*.swift $(find "$root/Sources/Checkpoint" -name '*.swift' | tr '\n' ' ')"
    i=0; for f in "$root"/Tests/Fixtures/conformance/models/*/model.safetensors; do
        i=$((i+1)); head -c 4096 "$f" > "$work/$target-corpus/seed$i.safetensors"; done
    ;;
*) echo "unknown target '$target' (yaml, json or safetensors)" >&2; exit 64 ;;
esac
# One module: imports of the project's own modules are dropped.
for f in $files; do sed -e '/^import IR$/d' -e '/^import Parser$/d' -e '/^import Checkpoint$/d' "$f" > "$src/$(basename "$(dirname "$f")")-$(basename "$f")"; done
cp "$root/scripts/fuzz/$target.swift" "$src/Fuzz-$target.swift"
swiftc -parse-as-library -module-name FuzzTarget -sanitize=fuzzer,address -O -g $extra "$src"/*.swift -o "$work/$target"
"$work/$target" -max_total_time="$seconds" -artifact_prefix="$work/$target-artifacts/" "$@" "$work/$target-corpus"
