# Writes the ascending tie-cut fixtures: which elements torch.sort (ascending, stable=False) puts at positions
# lo..<hi, as mergekit 0.1.5's sparsify.magnitude_outliers (breadcrumbs) keeps them. Run with mergekit 0.1.5's
# torch (2.15.0): ATEN_CPU_CAPABILITY=avx2 python make_ascending_fixtures.py (the result does not depend on it).
# Format (little endian): b"TIEASC01", u64 n, u64 lo, u64 hi, f64 density, f64 gamma,
#   n x f32 keys (= tensor.abs().reshape(-1).float(), mergekit's w), n x u8 kept mask (1 = kept).
import os, struct
import torch
from mergekit.sparsify import magnitude_outliers
out = os.path.dirname(os.path.abspath(__file__))
def write(name, tensor, density, gamma):
    n = tensor.numel()
    target, top = int(density * n), int(gamma * n)
    lo = max(0, n - target - top); hi = min(n, lo + target)
    w = tensor.abs().reshape(-1).float()
    mask = torch.zeros(n, dtype=torch.uint8)
    mask[torch.sort(w, descending=False).indices[lo:hi]] = 1
    res = magnitude_outliers(tensor, density, gamma=gamma).reshape(-1)   # cross-check with mergekit itself
    nz = (tensor.reshape(-1) != 0) & ~torch.isnan(tensor.reshape(-1))
    assert torch.equal((res != 0) & nz, mask.bool() & nz), name
    with open(f'{out}/{name}.bin', 'wb') as f:
        f.write(b'TIEASC01'); f.write(struct.pack('<QQQdd', n, lo, hi, density, gamma))
        f.write(w.numpy().astype('<f4').tobytes()); f.write(mask.numpy().tobytes())
    print(name, 'n', n, 'kept', lo, '..<', hi)
g = torch.Generator().manual_seed(4321)
write('asc_bf16_20000_d0.5_g0.05', (torch.randn(20000, generator=g) * 0.01).to(torch.bfloat16), 0.5, 0.05)
t = (torch.randn(150, 100, generator=g) * 0.01).to(torch.float16)
t[torch.rand(150, 100, generator=g) < 0.3] = 0; t[torch.rand(150, 100, generator=g) < 0.01] = float('nan')
write('asc_fp16_zeros_nan_150x100_d0.6_g0.02', t, 0.6, 0.02)
write('asc_bf16_4000_levels_d0.3_g0.1', (torch.randint(-3, 4, (4000,), generator=g) * 0.25).to(torch.bfloat16), 0.3, 0.1)
