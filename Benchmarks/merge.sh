#!/usr/bin/env bash
# Benchmark: merges on 1b-shaped models (base + 3 fine-tunes), release build. Prints per config the wall time,
# user+sys CPU, peak RSS, bytes read and written, and the I/O floor of the same work measured right after it in
# the same run (reading every input byte and writing every output byte with no computation, warm page cache; the
# fastest of four tries: two writing through the page cache, two past it).
#
#   Benchmarks/merge.sh [MODELS_DIR] [CONFIG_NAMES... | all]
#     A name is Benchmarks/configs/NAME.yml (one-line configs, one per merge method the shared configs leave out)
#     or ../shared/bench/configs/NAME.yml. Default: linear3 ties3 slerp2 slerp_of_ties; `all` runs the six shared
#     configs and every config of Benchmarks/configs: all 20 merge methods (two-model methods on ft1 and ft2).
#   MERGEGRAPH_FLAGS="--max-memory 512MiB" Benchmarks/merge.sh ...   extra flags for every run
#   CPU=portable Benchmarks/merge.sh ...   the plain release build instead of one for this processor (setup.sh)
#   WORK_DIR=/dev/shm Benchmarks/merge.sh ...   where outputs (and the floor's written file) go; default: beside
#                                              MODELS_DIR. The floor writes where the merges write.
#   FORMAT=markdown Benchmarks/merge.sh ...    the table as Markdown rows
#   RUNS=2 Benchmarks/merge.sh ...             each merge run twice (inputs read again before each), the fastest
#                                              reported with its CPU time and peak RSS (default: one run)
#
# Side by side with mergekit (see Benchmarks/mergekit.md for installing 0.1.5 in a virtualenv):
#   MERGEKIT=/path/to/venv/bin Benchmarks/merge.sh ...    (default: /work/mk-venv/bin when it exists)
#   MERGEKIT= Benchmarks/merge.sh ...                     (set but empty: our tool only)
#   MERGEKIT_FLAGS="--async-write" ...                    extra flags for every mergekit run
# When $MERGEKIT/mergekit-yaml runs, each config is also merged by mergekit (same models, CPU, its default
# options; mergekit-multi with its intermediate directory in the work dir for a multi-document config) and
# four columns are added: mergekit wall (s), mergekit peak RSS (MiB), and mergekit / ours for both.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
shared="$root/../shared/bench"
models="${1:-$root/.build-bench/models}"
shift || true
configs=("${@:-linear3 ties3 slerp2 slerp_of_ties}")
configs=(${configs[*]})
if [ "${configs[*]}" = all ]; then
  configs=(linear3 ties3 slerp2 slerp_of_ties dare_ties3 della3)
  for f in "$root"/Benchmarks/configs/*.yml; do configs+=("$(basename "$f" .yml)"); done
fi

source "$root/Benchmarks/setup.sh"
work="$(mktemp -d "${WORK_DIR:-$models/..}/merge-bench.XXXXXX")"
work="$(cd "$work" && pwd)"   # absolute: the runs below cd into $models
trap 'rm -rf "$work"' EXIT

# mergekit: used only when its CLI answers --help (the first run imports torch and takes a few seconds).
mergekit="${MERGEKIT-}"
if [ -z "${MERGEKIT+set}" ] && [ -d /work/mk-venv/bin ]; then mergekit=/work/mk-venv/bin; fi
if [ -n "$mergekit" ]; then
  if ! "$mergekit/mergekit-yaml" --help >/dev/null 2>&1; then
    echo "merge.sh: $mergekit/mergekit-yaml does not run; mergekit columns left out" >&2
    mergekit=""
  fi
fi

seconds() { awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$1" | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }'; }
rss_mib() { awk -F': ' '/Maximum resident set size/ {print int($2/1024)}' "$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "-" }'; }

markdown=false
if [ "${FORMAT:-}" = markdown ]; then markdown=true; fi
echo "build: CPU=${CPU:-native}; flags: ${MERGEGRAPH_FLAGS:-none}; outputs in $work"
if $markdown; then
  printf '| config | method | wall (s) | cpu (s) | RSS (MiB) | read (MB) | written (MB) | floor (s) | ×floor |'
  if [ -n "$mergekit" ]; then printf ' mk wall (s) | mk RSS (MiB) | mk/our wall | mk/our RSS |'; fi
  printf '\n|---|---|---:|---:|---:|---:|---:|---:|---:|'
  if [ -n "$mergekit" ]; then printf -- '---:|---:|---:|---:|'; fi
  printf '\n'
else
  printf '%-18s %-17s %9s %9s %10s %12s %12s %10s %7s' config method "wall (s)" "cpu (s)" "RSS (MiB)" "read (MB)" "written (MB)" "floor (s)" "×floor"
  if [ -n "$mergekit" ]; then printf ' %11s %12s %11s %10s' "mk wall (s)" "mk RSS (MiB)" "mk/our wall" "mk/our RSS"; fi
  printf '\n'
fi
for name in "${configs[@]}"; do
  config="$root/Benchmarks/configs/$name.yml"
  if [ ! -f "$config" ]; then config="$shared/configs/$name.yml"; fi
  if [ ! -f "$config" ]; then echo "merge.sh: no config $name in Benchmarks/configs or $shared/configs" >&2; exit 2; fi
  method=$(grep -oE 'merge_method: *[a-z_]+' "$config" | awk '{print $2}' | sort -u | paste -sd+ -)
  # Inputs: every model directory the config names (stages are not directories).
  inputs=$(cd "$models" && grep -oE '(model|base_model): *[^ ,}]+' "$config" | awk '{print $2}' | sort -u | while read -r m; do if [ -d "$m" ]; then echo "$m"; fi; done)
  read_bytes=$(cd "$models" && cat $(for m in $inputs; do ls "$m"/*.safetensors; done) | wc -c)
  log="$work/$name.time"
  wall=""
  for run in $(seq "${RUNS:-1}"); do
    # Read the inputs right before each run: what a run reads should be in the page cache ("warm cache"), and a
    # host may page out what it has not touched for a while (DAMON's proactive reclaim on this VM).
    if [ "$run" -gt 1 ]; then (cd "$models" && cat $(for m in $inputs; do ls "$m"/*.safetensors; done) >/dev/null); fi
    # Every run writes into an empty place, as the floor does: with the previous run's output still there,
    # `--overwrite` removes it at the end of the run, and on a file system mounted with `discard` (this VM's) freeing
    # 2.2 GB took about a second of the timed run (the merge waiting on ext4's block freeing and discards).
    rm -rf "$work/out"
    sync   # start every timed step with no dirty pages of an earlier step still being written back
    (cd "$models" && /usr/bin/time -v "$bin" run "$config" "$work/out" --overwrite --no-copy-tokenizer ${MERGEGRAPH_FLAGS:-} >/dev/null 2>"$log.run") || { cat "$log.run"; exit 1; }
    # The fastest run is reported (with its CPU time and peak RSS): on a shared machine runs vary by 10-40%.
    if [ -z "$wall" ] || [ "$(echo "$(seconds "$log.run") < $wall" | bc)" = 1 ]; then
      mv "$log.run" "$log"
      wall=$(seconds "$log")
    fi
  done
  rm -f "$log.run"
  cpu=$(awk -F': ' '/User time/ {u=$2} /System time/ {s=$2} END {print u+s}' "$log")
  rss=$(rss_mib "$log")
  written=$(du -sb "$work/out" | awk '{printf "%.0f", $1}')
  # I/O floor: read the same inputs, write the same number of bytes in 1 MiB writes (as our writer does), once
  # through the page cache and once past it (oflag=direct, as our writer writes whole blocks where the file system
  # lets it; skipped where it does not), twice each; the fastest try is the floor: on a shared machine a single try
  # varies by a second or more.
  rm -rf "$work/out"
  floor=""
  for oflag in "" direct "" direct; do
    if [ -n "$oflag" ] && ! dd if=/dev/zero of="$work/floor.bin" bs=4096 count=1 oflag=direct status=none 2>/dev/null; then
      rm -f "$work/floor.bin"; continue
    fi
    rm -f "$work/floor.bin"
    sync
    start=$(date +%s.%N)
    (cd "$models" && cat $(for m in $inputs; do ls "$m"/*.safetensors; done) >/dev/null)
    dd if=/dev/zero of="$work/floor.bin" bs=1M count=$(( (written + 1048575) / 1048576 )) ${oflag:+oflag=$oflag} status=none
    took=$(echo "$(date +%s.%N) - $start" | bc)
    rm -f "$work/floor.bin"
    if [ -z "$floor" ] || [ "$(echo "$took < $floor" | bc)" = 1 ]; then floor=$took; fi
  done
  if $markdown; then
    printf '| %s | %s | %.1f | %.1f | %d | %d | %d | %.1f | %.1f |' "$name" "$method" "$wall" "$cpu" "$rss" $((read_bytes / 1000000)) $((written / 1000000)) "$floor" "$(echo "$wall / $floor" | bc -l)"
  else
    printf '%-18s %-17s %9.1f %9.1f %10d %12d %12d %10.1f %7.1f' "$name" "$method" "$wall" "$cpu" "$rss" $((read_bytes / 1000000)) $((written / 1000000)) "$floor" "$(echo "$wall / $floor" | bc -l)"
  fi
  if [ -n "$mergekit" ]; then
    # Same config and models, run from the models dir so that relative model paths resolve the same way.
    # --no-copy-tokenizer as for our run; --no-write-model-card because the card looks every model name up
    # on the Hugging Face hub (HF_HUB_OFFLINE keeps mergekit off the network altogether).
    mklog="$work/$name.mergekit.time"
    if grep -qE '^---' "$config"; then
      mkcmd=("$mergekit/mergekit-multi" "$config" --out-path "$work/mk-out" --intermediate-dir "$work/mk-stages")
    else
      mkcmd=("$mergekit/mergekit-yaml" "$config" "$work/mk-out")
    fi
    if (cd "$models" && HF_HUB_OFFLINE=1 /usr/bin/time -v "${mkcmd[@]}" --no-copy-tokenizer --no-write-model-card --quiet ${MERGEKIT_FLAGS:-} >/dev/null 2>"$mklog"); then
      mkwall=$(seconds "$mklog"); mkrss=$(rss_mib "$mklog")
      if $markdown; then printf ' %.1f | %d | %s | %s |' "$mkwall" "$mkrss" "$(ratio "$mkwall" "$wall")" "$(ratio "$mkrss" "$rss")"
      else printf ' %11.1f %12d %11s %10s' "$mkwall" "$mkrss" "$(ratio "$mkwall" "$wall")" "$(ratio "$mkrss" "$rss")"; fi
    else
      if $markdown; then printf ' failed | - | - | - |'; else printf ' %11s %12s %11s %10s' failed - - -; fi
      echo >&2; echo "merge.sh: mergekit failed on $name:" >&2; sed '/Command being timed/,$d' "$mklog" | tail -n 20 >&2
    fi
    rm -rf "$work/mk-out" "$work/mk-stages"
  fi
  printf '\n'
done
