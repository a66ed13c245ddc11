#!/usr/bin/env python3
"""Makes the small PyTorch checkpoints in Tests/Fixtures/pytorch (run once by hand; CI does not run it).

Needs torch and safetensors (e.g. the mergekit virtualenv: /work/mk-venv/bin/python scripts/make_pytorch_fixtures.py).
Every `.bin` is written by `torch.save` and has a twin `.safetensors` holding the same values (written by
safetensors.torch from contiguous clones), which the Swift tests compare against, tensor by tensor and byte by byte.

  dtypes/pytorch_model.bin       one tensor per dtype torch saves (float64/32/16, bfloat16, int64/32/16/8, uint8,
                                 bool, float8_e4m3fn, float8_e5m2), 0-d scalars, a view at a storage offset,
                                 two tensors sharing one storage, an nn.Parameter
  sharded/pytorch_model-0000i-of-00002.bin + pytorch_model.bin.index.json
                                 a state dict split in two shards as transformers does
  rejects/unknown_global.bin     a zip whose data.pkl calls os.system (must be rejected, never run)
  rejects/truncated.bin          dtypes/pytorch_model.bin cut short
  rejects/legacy.bin             torch.save(..., _use_new_zipfile_serialization=False)
  rejects/noncontiguous.bin      a transposed (non-contiguous) view
  float8/conversions.safetensors every float8 bit pattern decoded by torch (F32), and f32 samples encoded by torch
"""
import io
import json
import os
import pickle
import zipfile

import torch
from safetensors.torch import save_file

root = os.path.join(os.path.dirname(__file__), "..", "Tests", "Fixtures", "pytorch")
torch.manual_seed(11)


def twin(state, path):
    save_file({k: v.detach().clone().contiguous() for k, v in state.items()}, path)


def dtypes_state():
    g = torch.Generator().manual_seed(5)
    base = torch.randn(6, 4, generator=g) * 3
    state = {
        "f64": (torch.randn(3, 5, generator=g, dtype=torch.float64) * 1e3),
        "f32": base.clone(),
        "f16": (torch.randn(4, 3, generator=g) * 100).to(torch.float16),
        "bf16": (torch.randn(2, 7, generator=g) * 1e-3).to(torch.bfloat16),
        "i64": torch.tensor([[0, -1, 2**40 + 3], [2**62, -(2**63), 7]], dtype=torch.int64),
        "i32": torch.tensor([2**31 - 1, -(2**31), 5, 0], dtype=torch.int32),
        "i16": torch.tensor([[-300, 32767], [-32768, 1]], dtype=torch.int16),
        "i8": torch.tensor([-128, 127, 0, -1, 3], dtype=torch.int8),
        "u8": torch.tensor([0, 255, 17], dtype=torch.uint8),
        "bool": torch.tril(torch.ones(1, 1, 5, 5, dtype=torch.bool)),
        "f8_e4m3": (torch.randn(3, 4, generator=g) * 50).to(torch.float8_e4m3fn),
        "f8_e5m2": (torch.randn(3, 4, generator=g) * 1e4).to(torch.float8_e5m2),
        "scalar_f32": torch.tensor(1e-4),
        "scalar_bool": torch.tensor(True),
        "scalar_i64": torch.tensor(-9000000000000, dtype=torch.int64),
        "param": torch.nn.Parameter(torch.randn(2, 3, generator=g)),
    }
    # views: rows 2..<5 of `base` (a storage offset), and a second view sharing base's storage
    state["view_rows"] = base[2:5]
    state["view_flat"] = base.view(-1)[4:10]
    return state


def write_dtypes():
    d = os.path.join(root, "dtypes")
    os.makedirs(d, exist_ok=True)
    state = dtypes_state()
    torch.save(state, os.path.join(d, "pytorch_model.bin"))
    twin(state, os.path.join(d, "expected.safetensors"))


def write_sharded():
    d = os.path.join(root, "sharded")
    os.makedirs(d, exist_ok=True)
    g = torch.Generator().manual_seed(9)
    shards = [
        {"model.embed.weight": torch.randn(8, 4, generator=g).to(torch.bfloat16),
         "model.layers.0.weight": torch.randn(4, 4, generator=g)},
        {"model.layers.1.weight": torch.randn(4, 4, generator=g),
         "model.position_ids": torch.arange(8, dtype=torch.int64).unsqueeze(0),
         "lm_head.weight": torch.randn(8, 4, generator=g, dtype=torch.float64)},
    ]
    weight_map = {}
    merged = {}
    for i, shard in enumerate(shards):
        name = f"pytorch_model-{i + 1:05d}-of-{len(shards):05d}.bin"
        torch.save(shard, os.path.join(d, name))
        weight_map.update({k: name for k in shard})
        merged.update(shard)
    total = sum(t.numel() * t.element_size() for t in merged.values())
    with open(os.path.join(d, "pytorch_model.bin.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    twin(merged, os.path.join(root, "sharded-expected.safetensors"))


class Evil:
    def __reduce__(self):
        return (os.system, ("echo unpickled > /dev/null",))


def write_rejects():
    d = os.path.join(root, "rejects")
    os.makedirs(d, exist_ok=True)
    # A torch-style zip whose data.pkl calls os.system: built by hand so nothing is executed here either.
    with zipfile.ZipFile(os.path.join(d, "unknown_global.bin"), "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pickle.dumps({"weight": Evil()}, protocol=2))
        z.writestr("archive/byteorder", "little")
        z.writestr("archive/version", "3\n")
    full = open(os.path.join(root, "dtypes", "pytorch_model.bin"), "rb").read()
    open(os.path.join(d, "truncated.bin"), "wb").write(full[: len(full) // 2])
    torch.save({"w": torch.ones(2, 2)}, os.path.join(d, "legacy.bin"), _use_new_zipfile_serialization=False)
    torch.save({"t": torch.arange(6, dtype=torch.float32).reshape(2, 3).t()}, os.path.join(d, "noncontiguous.bin"))


def write_float8():
    d = os.path.join(root, "float8")
    os.makedirs(d, exist_ok=True)
    patterns = torch.arange(256, dtype=torch.int32).to(torch.uint8)
    g = torch.Generator().manual_seed(3)
    samples = torch.cat([
        torch.randn(2000, generator=g) * 10 ** torch.randint(-8, 6, (2000,), generator=g).float(),
        torch.tensor([0.0, -0.0, float("inf"), float("-inf"), float("nan"), 448.0, 464.0, 479.9, 480.0, 57344.0,
                      61439.0, 61440.0, 65536.0, 2.0 ** -9, 2.0 ** -10, 3 * 2.0 ** -11, 2.0 ** -16, 2.0 ** -17,
                      3 * 2.0 ** -18, 1.0625, 1.1875, 0.01171875]),
    ])
    save_file({
        "e4m3_decoded": patterns.view(torch.float8_e4m3fn).to(torch.float32),
        "e5m2_decoded": patterns.view(torch.float8_e5m2).to(torch.float32),
        "samples": samples,
        "samples_e4m3": samples.to(torch.float8_e4m3fn).view(torch.uint8),
        "samples_e5m2": samples.to(torch.float8_e5m2).view(torch.uint8),
    }, os.path.join(d, "conversions.safetensors"))


write_dtypes()
write_sharded()
write_rejects()
write_float8()
for dirpath, _, files in sorted(os.walk(root)):
    for f in sorted(files):
        p = os.path.join(dirpath, f)
        print(f"{os.path.relpath(p, root)}: {os.path.getsize(p)} bytes")
