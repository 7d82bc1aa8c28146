"""The ELBO on planes: through both maxima and the NEB path's farthest pivot, and two
random planes centered on maximum a, with the path and the line projected onto each."""

from __future__ import annotations

import numpy as np
import torch

from ...landscape import (
    farthest_from_line,
    plane_grid,
    plane_through,
    project,
    random_gaussian_directions,
    random_sign_directions,
)


def plane(f, kind: str, xa, xb, pivots, n_points: int, seed: int) -> dict:
    """ELBO on one plane, and the NEB path and the straight line projected onto it."""
    d = float((xb - xa).norm())
    if kind == "path":
        far, off = farthest_from_line(pivots, xa, xb)
        third = pivots[far]
        if off <= 1e-9 * d:  # the path never left the line: any plane through it shows it
            u_rand, _ = random_gaussian_directions(xa.shape[0], generator=seed)
            third = 0.5 * (xa + xb) + 0.1 * d * u_rand / u_rand.norm()
        center, u, v, _ = plane_through(xa, xb, third)
        coords, _ = project(pivots, center, u, v)
        reach_x = max(0.5 * d, float(coords[:, 0].abs().max())) * 1.25
        y_lo, y_hi = float(coords[:, 1].min()), float(coords[:, 1].max())
        pad = 0.3 * max(y_hi - y_lo, 0.25 * d)
        xs = np.linspace(-reach_x, reach_x, n_points)
        ys = np.linspace(y_lo - pad, y_hi + pad, n_points)
    else:
        # Centered on maximum a, each direction as long as the distance to b, so the
        # grid reaches as far from a as b is.
        make = random_gaussian_directions if kind == "gaussian" else random_sign_directions
        u, v = make(xa.shape[0], generator=seed)
        u, v = u * d / u.norm(), v * d / v.norm()
        center = xa
        xs = ys = np.linspace(-1.0, 1.0, n_points)
    grid = plane_grid(f, center, u, v, xs, ys, batch_size=16)
    path_xy, path_off = project(pivots, center, u, v)
    line_xy, _ = project(torch.stack([xa, xb]), center, u, v)
    return {
        "xs": np.asarray(xs),
        "ys": np.asarray(ys),
        "values": grid.numpy(),
        "path_xy": path_xy.numpy(),
        "path_off_plane": path_off.numpy(),
        "line_xy": line_xy.numpy(),
        "unit": "distance in x" if kind == "path" else "multiples of |b - a|",
    }
