#!/usr/bin/env python3
"""Writes the seed corpus of scripts/fuzz.sh into scripts/fuzz/corpus/TARGET/ from the test fixtures (stdlib only).

Run it by hand after changing the fixtures; CI does not run it (the seeds are committed, and
ConfigFuzzCorpusTests / CheckpointFuzzCorpusTests feed every seed through the targets' entry functions).

  config/       every conformance case's config.yml and the legacy (bakllama, mergekit-legacy) configs;
                hand-*.yml are written by hand (anchors, aliases, `<<` merges, several documents) and kept
  safetensors/  whole small files (every dtype, a shard), and the conformance models of each dtype and layout
                shrunk: the same header (names, dtypes, metadata, order) with every dimension cut to at most 2 and
                the offsets and zero-filled data to match, so each seed is a valid file of a few KB
  pickle/       the data.pkl of every torch.save fixture (bare pickles), and the small .bin archives whole;
                regress-*.pkl are written by hand: inputs that broke the unpickler once (reference cycles, nesting
                past RestrictedUnpickler.maxDepth), also tests in PyTorchCheckpointTests
  json/         config.json, shard indexes and safetensors headers' JSON
Files of a target that this script does not write (hand-*, regress-*) are left alone; the ones it writes are rewritten.
"""
import glob
import json
import os
import struct
import zipfile

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
fixtures = os.path.join(root, "Tests", "Fixtures")
corpus = os.path.join(root, "scripts", "fuzz", "corpus")
models = os.path.join(fixtures, "conformance", "models")


def write(target, name, data):
    os.makedirs(os.path.join(corpus, target), exist_ok=True)
    with open(os.path.join(corpus, target, name), "wb") as f:
        f.write(data)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def header(path):
    """The 8-byte length and the JSON header of a safetensors file, without its data."""
    data = read(path)
    (length,) = struct.unpack("<Q", data[:8])
    return data[: 8 + length]


ELEMENT_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1,
                 "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


def shrunk(path):
    """The safetensors file at `path` with every dimension cut to at most 2: offsets recomputed in the original
    order, zero data, the header padded with spaces to a multiple of 8 bytes as the reference writer does."""
    entries = json.loads(header(path)[8:])
    ordered = sorted((k for k in entries if k != "__metadata__"), key=lambda k: entries[k]["data_offsets"][0])
    offset = 0
    for name in ordered:
        entry = entries[name]
        entry["shape"] = [min(d, 2) for d in entry["shape"]]
        count = 1
        for d in entry["shape"]:
            count *= d
        entry["data_offsets"] = [offset, offset + count * ELEMENT_BYTES[entry["dtype"]]]
        offset = entry["data_offsets"][1]
    text = json.dumps(entries, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + bytes(offset)


# config
for path in sorted(glob.glob(os.path.join(fixtures, "conformance", "cases", "*", "config.yml"))):
    write("config", os.path.basename(os.path.dirname(path)) + ".yml", read(path))
for path in sorted(glob.glob(os.path.join(fixtures, "legacy", "*.yml"))):
    write("config", "legacy-" + os.path.basename(path), read(path))

# safetensors
write("safetensors", "dtypes.safetensors", read(os.path.join(fixtures, "pytorch", "dtypes", "expected.safetensors")))
write("safetensors", "sharded.safetensors", read(os.path.join(fixtures, "pytorch", "sharded-expected.safetensors")))
write("safetensors", "float8-small.safetensors", shrunk(os.path.join(fixtures, "pytorch", "float8", "conversions.safetensors")))
for model, file in [("gpt2-a", "model.safetensors"), ("llama-ft-a", "model.safetensors"),
                    ("llama-ft-a-bf16", "model.safetensors"), ("llama-ft-c-fp16", "model.safetensors"),
                    ("llama-ft-d-f64", "model.safetensors"), ("lora-a", "adapter_model.safetensors"),
                    ("llama-ft-b-sharded", "model-00001-of-00012.safetensors")]:
    write("safetensors", model + "-small.safetensors", shrunk(os.path.join(models, model, file)))

# pickle
bins = [os.path.join(fixtures, "pytorch", p) for p in
        ["dtypes/pytorch_model.bin", "sharded/pytorch_model-00001-of-00002.bin",
         "sharded/pytorch_model-00002-of-00002.bin", "rejects/unknown_global.bin", "rejects/noncontiguous.bin"]]
bins.append(os.path.join(models, "llama-ft-c-bin", "pytorch_model.bin"))
for path in bins:
    name = os.path.relpath(path, fixtures).replace("/", "-").replace("-pytorch_model", "").replace(".bin", "")
    with zipfile.ZipFile(path) as archive:
        (pkl,) = [n for n in archive.namelist() if n.endswith("/data.pkl")]
        write("pickle", name + ".pkl", archive.read(pkl))
    if os.path.getsize(path) <= 8192:
        write("pickle", name + ".bin", read(path))
for name in ["legacy.bin", "truncated.bin"]:  # not zip archives: a legacy pickle stream, a cut archive
    write("pickle", "pytorch-rejects-" + name, read(os.path.join(fixtures, "pytorch", "rejects", name)))

# json
for model in ["gpt2-a", "llama-ft-a", "lora-a"]:
    for path in sorted(glob.glob(os.path.join(models, model, "*.json"))):
        write("json", model + "-" + os.path.basename(path), read(path))
write("json", "llama-ft-b-sharded-index.json", read(os.path.join(models, "llama-ft-b-sharded", "model.safetensors.index.json")))
write("json", "pytorch-sharded-index.json", read(os.path.join(fixtures, "pytorch", "sharded", "pytorch_model.bin.index.json")))
write("json", "dtypes-header.json", header(os.path.join(fixtures, "pytorch", "dtypes", "expected.safetensors"))[8:])
