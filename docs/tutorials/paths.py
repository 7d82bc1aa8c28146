"""Tutorial: paths between two maxima of your own function.

The landscape tools take any f((P, n) tensor) -> (P,) tensor that acts row by row and
is differentiable by autograd. Here f is the log density of a mixture of three 2-D
Gaussians: two heavy components make two maxima, and a lighter third one between them,
raised off the straight line, makes a third hump. The straight line crosses a deep valley; the
nudged elastic band (NEB) and AutoNEB bend towards the hump and find a far lower barrier.
A grid search gives the exact answer in 2-D to check them against.
"""

import math

import torch
from scipy import ndimage

from elbolab.landscape import (
    Band,
    Cycles,
    Optimizer,
    autoneb,
    barrier,
    dense_values,
    linear_path,
    neb,
)

torch.set_default_dtype(torch.float64)

MEANS = torch.tensor([[-2.0, 0.0], [2.0, 0.0], [0.0, 1.5]])
WEIGHTS = torch.tensor([0.4, 0.4, 0.2])
SD = 0.8


def f(x: torch.Tensor) -> torch.Tensor:
    """log p(x) of the mixture, row by row, in nats: (P, 2) -> (P,)."""
    sq = ((x[:, None, :] - MEANS[None, :, :]) ** 2).sum(-1)  # (P, 3)
    log_comp = -0.5 * sq / SD**2 - math.log(2 * math.pi * SD**2)
    return torch.logsumexp(log_comp + WEIGHTS.log(), dim=1)


def climb(start: torch.Tensor) -> torch.Tensor:
    """The local maximum of f uphill from ``start`` (L-BFGS on -f)."""
    x = start.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([x], max_iter=200, tolerance_grad=1e-12, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = -f(x[None])[0]
        loss.backward()
        return loss

    opt.step(closure)
    return x.detach()


a, b = climb(MEANS[0]), climb(MEANS[1])
f_a, f_b = float(f(a[None])), float(f(b[None]))
print(f"maximum a = {a.numpy().round(4)}, f(a) = {f_a:.4f} nats")
print(f"maximum b = {b.numpy().round(4)}, f(b) = {f_b:.4f} nats")

# The straight line, resampled densely so the valley between pivots is not missed.
line = linear_path(a, b, n_pivots=15)
line_barrier = barrier(dense_values(f, line), f_a, f_b)

# The optimizer settings (Adam with step size 0.05) are one record, shared by both methods.
adam = Optimizer("adam", lr=0.05)
# NEB with a climbing image: the lowest pivot climbs to the saddle of f.
band = neb(f, a, b, n_pivots=15, steps=600, optimizer=adam, band=Band(climbing=True),
           show_progress=False)  # fmt: skip
# AutoNEB: few pivots to start, more inserted where the path dips, over 4 cycles.
auto = autoneb(f, a, b, n_pivots=3, steps=200, optimizer=adam, cycles=Cycles(4),
               show_progress=False)  # fmt: skip

# The exact barrier in 2-D: the lowest level at which the region {f >= level} still
# joins a and b, read from a fine grid by bisection on the level.
grid = torch.linspace(-4.0, 4.0, 801)
xx, yy = torch.meshgrid(grid, grid, indexing="ij")
values = f(torch.stack([xx.reshape(-1), yy.reshape(-1)], 1)).reshape(xx.shape).numpy()
ia = tuple(int(torch.argmin((grid - c).abs())) for c in a)
ib = tuple(int(torch.argmin((grid - c).abs())) for c in b)


def joined(level: float) -> bool:
    labels, _ = ndimage.label(values >= level)
    return labels[ia] != 0 and labels[ia] == labels[ib]


low, high = float(values.min()), min(f_a, f_b)
for _ in range(60):
    mid = 0.5 * (low + high)
    low, high = (mid, high) if joined(mid) else (low, mid)
grid_barrier = min(f_a, f_b) - low

print(f"barrier of the straight line : {line_barrier:.4f} nats")
print(f"barrier of NEB (climbing)    : {band.barrier:.4f} nats, {band.n_iter} steps")
print(f"barrier of AutoNEB           : {auto.barrier:.4f} nats, {auto.pivots.shape[0]} pivots")
print(f"exact barrier (801^2 grid)   : {grid_barrier:.4f} nats")
saddle = band.pivots[band.climbing_index].numpy()
print(f"NEB saddle estimate at {saddle.round(3)}")

# Fail loudly if the library returns nonsense: the bent paths must beat the straight
# line by a wide margin and agree with the grid (whose spacing is 0.01).
assert band.barrier < line_barrier - 0.5, (band.barrier, line_barrier)
assert auto.barrier < line_barrier - 0.5, (auto.barrier, line_barrier)
assert abs(band.barrier - grid_barrier) < 0.02, (band.barrier, grid_barrier)
assert abs(auto.barrier - grid_barrier) < 0.05, (auto.barrier, grid_barrier)
# The saddle (one of two mirror images, x < 0 or x > 0) lies off the line y = 0.
assert saddle[1] > 0.5, saddle
