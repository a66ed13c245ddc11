#!/usr/bin/env bash
# Benchmark: the merges of ../shared/bench/configs on 1b-shaped models (base + 3 fine-tunes), release build.
# Prints wall time, user+sys CPU, peak RSS, bytes read and written, and the I/O floor of the same work
# (reading every input byte and writing every output byte with no computation, warm page cache).
#
#   Benchmarks/merge.sh [MODELS_DIR] [CONFIG_NAMES...]     (default: linear3 ties3 slerp2 slerp_of_ties)
#   MERGEGRAPH_FLAGS="--max-memory 512MiB" Benchmarks/merge.sh ...   extra flags for every run
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
shared="$root/../shared/bench"
models="${1:-$root/.build-bench/models}"
shift || true
configs=("${@:-linear3 ties3 slerp2 slerp_of_ties}")
configs=(${configs[*]})

source "$root/Benchmarks/setup.sh"
work="$(mktemp -d "$models/../merge-bench.XXXXXX")"
trap 'rm -rf "$work"' EXIT

seconds() { awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$1" | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }'; }

printf '%-15s %9s %9s %10s %12s %12s %12s %7s\n' config "wall (s)" "cpu (s)" "RSS (MiB)" "read (MB)" "written (MB)" "floor (s)" "×floor"
for name in "${configs[@]}"; do
  config="$shared/configs/$name.yml"
  # Inputs: every model directory the config names (stages are not directories).
  inputs=$(cd "$models" && grep -oE '(model|base_model): *[^ ]+' "$config" | awk '{print $2}' | sort -u | while read -r m; do if [ -d "$m" ]; then echo "$m"; fi; done)
  read_bytes=$(cd "$models" && cat $(for m in $inputs; do ls "$m"/*.safetensors; done) | wc -c)
  log="$work/$name.time"
  (cd "$models" && /usr/bin/time -v "$bin" run "$config" "$work/out" --overwrite --no-copy-tokenizer ${MERGEGRAPH_FLAGS:-} >/dev/null 2>"$log") || { cat "$log"; exit 1; }
  wall=$(seconds "$log")
  cpu=$(awk -F': ' '/User time/ {u=$2} /System time/ {s=$2} END {print u+s}' "$log")
  rss=$(awk -F': ' '/Maximum resident set size/ {print int($2/1024)}' "$log")
  written=$(du -sb "$work/out" | awk '{printf "%.0f", $1}')
  # I/O floor: read the same inputs, write the same number of bytes.
  start=$(date +%s.%N)
  (cd "$models" && cat $(for m in $inputs; do ls "$m"/*.safetensors; done) >/dev/null)
  head -c "$written" /dev/zero > "$work/floor.bin"
  floor=$(echo "$(date +%s.%N) - $start" | bc)
  rm -f "$work/floor.bin"; rm -rf "$work/out"
  printf '%-15s %9.1f %9.1f %10d %12d %12d %12.1f %7.1f\n' "$name" "$wall" "$cpu" "$rss" $((read_bytes / 1000000)) $((written / 1000000)) "$floor" "$(echo "$wall / $floor" | bc -l)"
done
