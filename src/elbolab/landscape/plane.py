"""Two-dimensional views of a high-dimensional landscape: planes, grids and projections.

A plane is ``{center + x u + y v}``. :func:`plane_grid` evaluates f on a grid of (x, y)
in batched chunks; the directions come from random draws (:func:`random_gaussian_directions`,
:func:`random_sign_directions` -- the random +-1 directions used to draw ELBO surfaces of
LDA) or from the geometry of a path (:func:`plane_through` the two endpoints and a third
point, e.g. the pivot :func:`farthest_from_line`). :func:`project` places any points (a
path's pivots) on a plane and says how far off it they lie.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import torch

from .. import checks
from ..errors import ConfigError
from ..progress import progress
from .inputs import Func, batched_values, progress_disabled

if TYPE_CHECKING:
    from .._types import ArrayOrTensor

__all__ = [
    "Plane",
    "farthest_from_line",
    "plane_grid",
    "plane_through",
    "project",
    "random_gaussian_directions",
    "random_sign_directions",
]


def _vec(x, name: str, dtype=None) -> torch.Tensor:
    x = checks.real_tensor(x, name, ConfigError)
    if dtype is not None:
        x = x.to(dtype)
    elif not x.is_floating_point():
        x = x.to(torch.get_default_dtype())
    if x.dim() != 1 or x.numel() == 0:
        raise ConfigError(f"{name} must be a non-empty 1-D vector, got shape {tuple(x.shape)}")
    return x


def _axis(x, name: str, dtype) -> torch.Tensor:
    x = checks.real_tensor(x, name, ConfigError).to(dtype).reshape(-1)
    if x.numel() == 0 or not torch.isfinite(x).all():
        raise ConfigError(f"{name} must be a non-empty sequence of finite numbers")
    return x


def plane_grid(
    f: Func,
    center: torch.Tensor,
    u: torch.Tensor,
    v: torch.Tensor,
    xs: ArrayOrTensor,
    ys: ArrayOrTensor,
    batch_size: int = 4096,
    show_progress: bool | None = None,
) -> torch.Tensor:
    """f on the grid ``center + x u + y v`` for x in ``xs`` and y in ``ys``.

    Parameters
    ----------
    f : callable
        ``f((m, n) tensor) -> (m,) tensor``; called under ``torch.no_grad`` on chunks of at
        most ``batch_size`` grid points.
    center, u, v : (n,) tensor
        Origin and directions of the plane (need not be orthonormal).
    xs : (nx,) sequence
        Coordinates along ``u``.
    ys : (ny,) sequence
        Coordinates along ``v``.
    batch_size : int
        Grid points per call of f (memory: ``batch_size * n`` numbers).
    show_progress : bool, optional
        Progress bar over chunks. ``None`` (the default) follows tqdm's rule: a bar is
        drawn when stderr is a terminal; ``ELBOLAB_PROGRESS=1`` forces it and
        ``ELBOLAB_NO_PROGRESS=1`` hides it. ``True`` / ``False`` force it on / off.

    Returns
    -------
    values : (ny, nx) tensor
        ``values[i, j] = f(center + xs[j] u + ys[i] v)`` (rows follow y, as
        ``matplotlib.pyplot.contour(xs, ys, values)`` expects). Values are returned as f
        gives them; where f is -inf or NaN outside its domain, so is the grid.
    """
    center = _vec(center, "center")
    u = _vec(u, "u", center.dtype).to(center.device)
    v = _vec(v, "v", center.dtype).to(center.device)
    if not (u.shape == v.shape == center.shape):
        raise ConfigError(
            f"center, u and v must have the same length, got {center.shape[0]}, "
            f"{u.shape[0]} and {v.shape[0]}"
        )
    batch_size = checks.integer(batch_size, "batch_size", 1)
    xs = _axis(xs, "xs", center.dtype).to(center.device)
    ys = _axis(ys, "ys", center.dtype).to(center.device)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    cx, cy = gx.reshape(-1), gy.reshape(-1)
    total = cx.shape[0]
    out = torch.empty(total, dtype=center.dtype, device=center.device)
    n_chunks = -(-total // batch_size)
    with torch.no_grad():
        chunks = progress(
            range(n_chunks),
            desc="plane grid",
            unit="chunk",
            disable=progress_disabled(show_progress),
            leave=False,
        )
        for c in chunks:
            sl = slice(c * batch_size, min(total, (c + 1) * batch_size))
            pts = center + cx[sl, None] * u + cy[sl, None] * v
            out[sl] = batched_values(f, pts).to(out.dtype)
    return out.reshape(ys.shape[0], xs.shape[0])


def random_gaussian_directions(
    n: int,
    generator: torch.Generator | int = 0,
    dtype: torch.dtype = torch.float64,
    scale: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two random orthonormal directions: Gaussian draws orthonormalized (QR).

    Parameters
    ----------
    n : int
        Dimension (>= 2).
    generator : torch.Generator or int, optional
        Randomness (None: seed 0).
    dtype : torch.dtype
    scale : float, optional
        Multiply both unit vectors by this (e.g. the norm of the parameters, or of
        ``b - a``, so that grid coordinates of order 1 move that far); default 1.

    Returns
    -------
    u, v : (n,) tensors
        Orthogonal, each of norm ``scale`` (1 by default); the pair is uniformly
        distributed over orthonormal 2-frames.
    """
    n = checks.integer(n, "n", 2)
    g = torch.randn(n, 2, generator=checks.torch_generator(generator, "generator"), dtype=dtype)
    q, r = torch.linalg.qr(g)
    # Fix the signs so the result is a deterministic function of the draw.
    q = q * torch.where(torch.diagonal(r) < 0, -1.0, 1.0).to(dtype)
    if scale is not None:
        q = q * float(scale)
    return q[:, 0].contiguous(), q[:, 1].contiguous()


def random_sign_directions(
    n: int,
    generator: torch.Generator | int = 0,
    dtype: torch.dtype = torch.float64,
    scale: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two random orthogonal directions with entries +-1.

    ``u`` has independent fair +-1 entries. ``v = u * s`` where ``s`` is +1 on a random
    half of the coordinates and -1 on the other half (a random permutation of a balanced
    sign vector): v is again +-1, and ``u . v = sum_i u_i^2 s_i = sum_i s_i = 0`` exactly.
    Given u, v is uniform over the +-1 vectors orthogonal to u. For odd ``n`` no +-1 vector
    can be orthogonal to another; then one random coordinate of ``v`` is set to 0 and the
    remaining ``n - 1`` are balanced as above.

    Parameters
    ----------
    n : int
        Dimension (>= 2).
    generator : torch.Generator or int, optional
        Randomness (None: seed 0).
    dtype : torch.dtype
    scale : float, optional
        Multiply both vectors by this (``1 / sqrt(n)`` gives unit vectors); default 1,
        entries exactly +-1.

    Returns
    -------
    u, v : (n,) tensors
        Entries +-1 (times ``scale``; one 0 in ``v`` for odd n), ``u . v = 0``.
    """
    n = checks.integer(n, "n", 2)
    gen = checks.torch_generator(generator, "generator")
    u = torch.randint(0, 2, (n,), generator=gen).to(dtype) * 2 - 1
    perm = torch.randperm(n, generator=gen)
    s = torch.ones(n, dtype=dtype)
    s[perm[: n // 2]] = -1.0
    if n % 2:
        s[perm[n // 2]] = 0.0
    v = u * s
    if scale is not None:
        u, v = u * float(scale), v * float(scale)
    return u, v


class Plane(NamedTuple):
    """A plane through three points (see :func:`plane_through`).

    Attributes
    ----------
    center : (n,) tensor
        Origin of the plane coordinates.
    u, v : (n,) tensors
        Orthonormal directions.
    coords : (3, 2) tensor
        Plane coordinates of the three points a, b, c.
    """

    center: torch.Tensor
    u: torch.Tensor
    v: torch.Tensor
    coords: torch.Tensor


def plane_through(
    a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, origin: str = "midpoint"
) -> Plane:
    """The plane through the endpoints ``a``, ``b`` of a path and a third point ``c``.

    ``u`` points from a to b, ``v`` is the part of ``c - a`` orthogonal to u, normalized,
    so a and b lie on the x axis and c has y > 0.

    Parameters
    ----------
    a, b, c : (n,) tensor
        Three points, not on one line (e.g. the endpoints and the pivot of the optimized
        path farthest from the straight line, :func:`farthest_from_line`).
    origin : {"midpoint", "a"}
        Plane origin: ``(a + b) / 2`` (a and b at x = -+|b - a| / 2) or ``a``.

    Returns
    -------
    Plane
        ``(center, u, v, coords)``; unpacks as a tuple.
    """
    a = _vec(a, "a")
    b, c = _vec(b, "b", a.dtype).to(a.device), _vec(c, "c", a.dtype).to(a.device)
    if not (a.shape == b.shape == c.shape):
        raise ConfigError("plane_through: a, b and c must have the same length")
    if origin not in ("midpoint", "a"):
        raise ConfigError(f"plane_through: origin must be 'midpoint' or 'a', got {origin!r}")
    ab = b - a
    d = ab.norm()
    if d == 0:
        raise ConfigError("plane_through: a and b are the same point")
    u = ab / d
    w = c - a
    # Gram-Schmidt twice: one pass loses orthogonality when c is nearly on the line.
    w = w - (w @ u) * u
    w = w - (w @ u) * u
    wn = w.norm()
    if wn <= 1e-12 * max(float(d), float((c - a).norm())):
        raise ConfigError("plane_through: c lies on the line through a and b; no unique plane")
    v = w / wn
    center = (a + b) / 2 if origin == "midpoint" else a.clone()
    coords, _ = project(torch.stack([a, b, c]), center, u, v)
    return Plane(center, u, v, coords)


def farthest_from_line(points: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> tuple[int, float]:
    """Index of the point farthest from the straight line through ``a`` and ``b``.

    Parameters
    ----------
    points : (P, n) tensor
        E.g. a path's pivots.
    a, b : (n,) tensor

    Returns
    -------
    index : int
    distance : float
        Its Euclidean distance from the line.
    """
    points = checks.real_tensor(points, "points", ConfigError)
    if not points.is_floating_point():
        points = points.to(torch.get_default_dtype())
    a = _vec(a, "a", points.dtype)
    b = _vec(b, "b", points.dtype)
    if points.dim() != 2 or points.shape[1] != a.shape[0]:
        raise ConfigError(f"points must be (P, {a.shape[0]}), got shape {tuple(points.shape)}")
    ab = b - a
    d = ab.norm()
    if d == 0:
        raise ConfigError("farthest_from_line: a and b are the same point")
    u = ab / d
    w = points - a
    dist = (w - (w @ u)[:, None] * u).norm(dim=1)
    i = int(torch.argmax(dist))
    return i, float(dist[i])


def project(
    points: torch.Tensor, center: torch.Tensor, u: torch.Tensor, v: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Coordinates of points in the plane ``center + x u + y v`` and their distance off it.

    The coordinates are the least-squares solution of ``[u v] (x, y) = p - center``, so
    they are consistent with :func:`plane_grid` even for directions that are orthogonal
    but not unit (+-1 directions) or not orthogonal at all.

    Parameters
    ----------
    points : (P, n) or (n,) tensor
    center, u, v : (n,) tensor

    Returns
    -------
    coords : (P, 2) or (2,) tensor
        (x, y) of each point's orthogonal projection onto the plane.
    residual : (P,) or () tensor
        Euclidean distance from each point to the plane (0 for points in it).
    """
    points = checks.real_tensor(points, "points", ConfigError)
    if not points.is_floating_point():
        points = points.to(torch.get_default_dtype())
    single = points.dim() == 1
    pts = points[None] if single else points
    center = _vec(center, "center", pts.dtype).to(pts.device)
    u = _vec(u, "u", pts.dtype).to(pts.device)
    v = _vec(v, "v", pts.dtype).to(pts.device)
    if pts.dim() != 2 or not (pts.shape[1] == center.shape[0] == u.shape[0] == v.shape[0]):
        raise ConfigError(
            f"project: points (P, n), center, u and v (n,) must agree in n; got points "
            f"{tuple(points.shape)}, center {tuple(center.shape)}, u {tuple(u.shape)}, "
            f"v {tuple(v.shape)}"
        )
    basis = torch.stack([u, v], dim=1)  # (n, 2)
    gram = basis.T @ basis
    if torch.linalg.matrix_rank(gram) < 2:
        raise ConfigError("project: u and v must be linearly independent")
    d = pts - center
    coords = torch.linalg.solve(gram, (d @ basis).T).T
    residual = (d - coords @ basis.T).norm(dim=1)
    if single:
        return coords[0], residual[0]
    return coords, residual
