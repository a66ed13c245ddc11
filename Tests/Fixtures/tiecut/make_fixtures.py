# Writes TieCut fixtures: torch (mergekit 0.1.5 sparsify.magnitude) kept masks.
# Format (little endian): 8 bytes magic b"TIECUT01", u64 n, u64 k, f64 density,
#   n x f32 keys (= tensor.abs().reshape(-1).float(), as mergekit computes w), n x u8 kept mask (1 = kept).
import torch, numpy as np, struct
from mergekit.sparsify import magnitude
import os
out = os.path.dirname(os.path.abspath(__file__))  # first written in the tie-cut study's own folder
def write(name, tensor, density):
    n = tensor.numel()
    k = max(1, int(density * n))
    w = tensor.abs().reshape(-1).float()                  # exactly mergekit's w
    mask = torch.zeros(n, dtype=torch.uint8)
    mask[torch.argsort(w, descending=True)[:k]] = 1       # exactly mergekit's selection
    # cross-check with mergekit itself: nonzero outputs == kept & nonzero input
    res = magnitude(tensor, density).reshape(-1)
    nz = tensor.reshape(-1) != 0
    both_nan = torch.isnan(tensor.reshape(-1))
    assert torch.equal((res != 0) & ~both_nan, (mask.bool() & nz) & ~both_nan), name
    with open(f'{out}/{name}.bin', 'wb') as f:
        f.write(b'TIECUT01'); f.write(struct.pack('<QQd', n, k, density))
        f.write(w.numpy().astype('<f4').tobytes()); f.write(mask.numpy().tobytes())
    ties = int((w == w[torch.argsort(w, descending=True)[k - 1]]).sum())
    print(name, 'n', n, 'k', k, 'ties at threshold', ties)
g = torch.Generator().manual_seed(1234)
write('bf16_256x256_d0.5', (torch.randn(256, 256, generator=g) * 0.01).to(torch.bfloat16), 0.5)
write('fp16_50000_d0.3', (torch.randn(50000, generator=g) * 0.01).to(torch.float16), 0.3)
t = (torch.randn(200, 200, generator=g) * 0.01).to(torch.bfloat16)
t[torch.rand(200, 200, generator=g) < 0.3] = 0; t[torch.rand(200, 200, generator=g) < 0.01] = float('nan')
write('bf16_zeros_nan_200x200_d0.7', t, 0.7)
write('bf16_1000_d0.3', (torch.randn(1000, generator=g) * 0.01).to(torch.bfloat16), 0.3)
write('bf16_17_d0.5', (torch.randn(17, generator=g) * 0.01).to(torch.bfloat16), 0.5)
write('f32_30000_d0.5', torch.randn(30000, generator=g) * 0.01, 0.5)
# keys of an adversarial (antiqsort-style) input that drives introsort into heapsort; kept in the fixture itself
killer = torch.from_numpy(np.fromfile('/work/tiecut/big/killerq8_10000.keys.f32', dtype=np.float32))
write('heapsort_ties_10000_d0.5', killer, 0.5)
t = (torch.randn(40000, generator=g) * 0.01).to(torch.bfloat16)
t[torch.rand(40000, generator=g) < 0.3] = 0            # untouched parameters: exact-zero deltas
write('bf16_30pct_zeros_40000_d0.8', t, 0.8)           # threshold falls inside the zeros
