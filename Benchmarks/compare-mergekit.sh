#!/usr/bin/env bash
# How many output values of mergegraph differ from mergekit's on the bench merges (1b-shaped models).
#
#   MERGEKIT=/path/to/venv/bin Benchmarks/compare-mergekit.sh [MODELS_DIR] [CONFIG_NAMES...]
#                                                    (default: .build-bench/models; linear3 ties3)
#
# Runs both tools on each config of ../shared/bench/configs or Benchmarks/configs (from MODELS_DIR, so relative model paths resolve
# the same way; mergekit with ATEN_CPU_CAPABILITY=avx2 and OMP_NUM_THREADS=1 unless set, offline, no model card:
# PyTorch splits a sum of more than 32,768 elements among its threads, so slerp's cosine depends on their number,
# and mergegraph follows one thread), then compares the
# tensors only (mergekit rewrites config.json through transformers): Tests/Fixtures/conformance/compare.py's
# verdict (values beyond its tolerance: f32 1e-6 + 1e-4·|e|, bf16/f16 one ulp) and the count of values that
# differ at all. Needs python3 with numpy. See Benchmarks/mergekit.md for installing mergekit 0.1.5.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
shared="$root/../shared/bench"
models="${1:-$root/.build-bench/models}"
shift || true
configs=("${@:-linear3 ties3}")
configs=(${configs[*]})
mergekit="${MERGEKIT:-}"
if [ -z "$mergekit" ] || ! "$mergekit/mergekit-yaml" --help >/dev/null 2>&1; then
  echo "compare-mergekit.sh: set MERGEKIT to a virtualenv's bin directory with mergekit 0.1.5 (mergekit-yaml)" >&2
  exit 2
fi

source "$root/Benchmarks/setup.sh"
work="$(mktemp -d "$models/../compare-mergekit.XXXXXX")"
work="$(cd "$work" && pwd)"
trap 'rm -rf "$work"' EXIT

# The tensors of a merged model alone, so compare.py does not compare config.json.
tensors_only() { mkdir -p "$2"; for f in "$1"/*.safetensors "$1"/*.safetensors.index.json; do [ -e "$f" ] && ln -s "$f" "$2/"; done; true; }

printf '%-12s %8s %15s %15s %22s\n' config tensors "values" "values differ" "beyond tolerance"
for name in "${configs[@]}"; do
  config="$shared/configs/$name.yml"
  [ -f "$config" ] || config="$root/Benchmarks/configs/$name.yml"
  (cd "$models" && "$bin" run "$config" "$work/ours" --overwrite --no-copy-tokenizer --quiet)
  (cd "$models" && HF_HUB_OFFLINE=1 ATEN_CPU_CAPABILITY="${ATEN_CPU_CAPABILITY:-avx2}" OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" \
     "$mergekit/mergekit-yaml" "$config" "$work/mk" --no-copy-tokenizer --no-write-model-card --quiet >"$work/mk.log" 2>&1) \
    || { tail -n 20 "$work/mk.log" >&2; exit 1; }
  tensors_only "$work/ours" "$work/a"; tensors_only "$work/mk" "$work/e"
  python3 "$root/Tests/Fixtures/conformance/compare.py" "$work/a" "$work/e" >"$work/compare.txt" || true
  beyond=$(awk '/ values off,/ { split($2, f, "/"); n += f[1] } END { print n + 0 }' "$work/compare.txt")
  failed=$(tail -n 1 "$work/compare.txt" | awk '{ print $3 }')
  counts=$(python3 - "$root/Tests/Fixtures/conformance" "$work/a" "$work/e" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import numpy as np
from compare import load_dir
a, e = load_dir(sys.argv[2]), load_dir(sys.argv[3])
total = differ = 0
for name, (dtype, ev) in e.items():
    av = a[name][1]
    total += ev.size
    differ += int((av.view(np.uint8).reshape(av.size, -1) != ev.view(np.uint8).reshape(ev.size, -1)).any(axis=1).sum())
print(len(e), total, differ)
PY
)
  read -r count total differ <<<"$counts"
  printf '%-12s %8s %15s %15s %22s\n' "$name" "$count" "$total" "$differ" \
    "$beyond ($failed tensors)"
  rm -rf "$work/ours" "$work/mk" "$work/a" "$work/e"
done
