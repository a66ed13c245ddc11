#!/usr/bin/env bash
# Benchmark: a multi-stage chain fused into one graph versus the same chain run stage by stage
# (each stage written to disk and read back by the next), both through a release build of mergegraph.
#
#   Benchmarks/chain.sh [MODELS_DIR] [CONFIG]
#
# MODELS_DIR holds base, ft1, ft2, ft3 (made by ../shared/bench/make_model.py; generated there if missing).
# CONFIG defaults to ../shared/bench/configs/slerp_of_ties.yml. Prints wall time, peak RSS and bytes written.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
shared="$root/../shared/bench"
models="${1:-$root/.build-bench/models}"
config="${2:-$shared/configs/slerp_of_ties.yml}"
source "$root/Benchmarks/setup.sh"
work="$(mktemp -d "$models/../chain-bench.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# measure LABEL COMMAND...: runs in $models, prints "wall_seconds peak_rss_kib"
measure() {
  local log="$work/time.log"
  (cd "$models" && /usr/bin/time -v "$@" >/dev/null 2>"$log") || { cat "$log"; exit 1; }
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$log" | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$log")
  echo "$wall $rss"
}
bytes() { du -sb "$@" | awk '{s+=$1} END {printf "%.0f\n", s}'; }

# Fused: one graph, only the final model written.
read -r fused_wall fused_rss < <(measure "$bin" run "$config" "$work/fused" --overwrite)
fused_bytes=$(bytes "$work/fused")

# Stage by stage: split the documents, run each, every intermediate written to disk.
python3 - "$config" "$work" <<'PY'
import sys, re
text = open(sys.argv[1]).read()
docs = [d for d in re.split(r'(?m)^---\s*$', text) if d.strip()]
for i, d in enumerate(docs):
    m = re.search(r'(?m)^name:\s*(\S+)\s*$', d)
    name = m.group(1) if m else "final"
    body = re.sub(r'(?m)^name:.*\n?', '', d)
    open(f"{sys.argv[2]}/stage-{i}-{name}.yml", "w").write(body)
PY
staged_wall=0; staged_rss=0; staged_bytes=0
for stage in "$work"/stage-*.yml; do
  name=$(basename "$stage" .yml); name=${name#stage-*-}
  out="$models/$name"; [ "$name" = final ] && out="$work/staged-final"
  read -r w r < <(measure "$bin" run "$stage" "$out" --overwrite)
  staged_wall=$(echo "$staged_wall + $w" | bc); [ "$r" -gt "$staged_rss" ] && staged_rss=$r
  staged_bytes=$((staged_bytes + $(bytes "$out")))
done
for stage in "$work"/stage-*.yml; do
  name=$(basename "$stage" .yml); name=${name#stage-*-}; [ "$name" != final ] && rm -rf "${models:?}/$name"
done
cmp -s "$work/fused/model.safetensors" "$work/staged-final/model.safetensors" && same=identical || same=DIFFERENT

printf '%-22s %10s %14s %16s\n' "run" "wall (s)" "peak RSS (MiB)" "bytes written"
printf '%-22s %10.1f %14d %16d\n' "fused (one graph)" "$fused_wall" $((fused_rss / 1024)) "$fused_bytes"
printf '%-22s %10.1f %14d %16d\n' "stage by stage" "$staged_wall" $((staged_rss / 1024)) "$staged_bytes"
echo "final tensors: $same"
