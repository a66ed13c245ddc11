# Sourced by the benchmark scripts: needs $root, $shared and $models set.
# Makes base, ft1, ft2, ft3 in $models with ../shared/bench/make_model.py (shape $SHAPE, default 1b) when
# missing, builds mergegraph in release mode and sets $bin to it.
mkdir -p "$models"
for m in base ft1 ft2 ft3; do
  if [ ! -f "$models/$m/config.json" ]; then
    if [ "$m" = base ]; then python3 "$shared/make_model.py" "$models/base" --shape "${SHAPE:-1b}" --seed 0
    else python3 "$shared/make_model.py" "$models/$m" --shape "${SHAPE:-1b}" --seed "${m#ft}" --base "$models/base"; fi
  fi
done
(cd "$root" && swift build -c release >/dev/null)
bin="$(cd "$root" && swift build -c release --show-bin-path)/mergegraph"
