# Sourced by the benchmark scripts: needs $root, $shared and $models set.
# Makes base, ft1, ft2, ft3 in $models with ../shared/bench/make_model.py (shape $SHAPE, default 1b) when
# missing, builds mergegraph in release mode and sets $bin to it.
# CPU=native (the default) builds for this machine's processor (-target-cpu native: AVX2 and FMA where the
# processor has them) into .build-native; CPU=portable uses the plain `swift build -c release` of .build, which
# runs on any x86-64 (SSE2) or arm64 machine. Both give the same bytes.
mkdir -p "$models"
for m in base ft1 ft2 ft3; do
  if [ ! -f "$models/$m/config.json" ]; then
    if [ "$m" = base ]; then python3 "$shared/make_model.py" "$models/base" --shape "${SHAPE:-1b}" --seed 0
    else python3 "$shared/make_model.py" "$models/$m" --shape "${SHAPE:-1b}" --seed "${m#ft}" --base "$models/base"; fi
  fi
done
case "${CPU:-native}" in
  native) build=(swift build -c release --scratch-path .build-native -Xswiftc -target-cpu -Xswiftc native) ;;
  portable) build=(swift build -c release) ;;
  *) echo "CPU must be native or portable, not ${CPU}" >&2; exit 2 ;;
esac
(cd "$root" && "${build[@]}" >/dev/null)
bin="$(cd "$root" && "${build[@]}" --show-bin-path)/mergegraph"
