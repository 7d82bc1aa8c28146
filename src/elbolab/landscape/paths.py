"""Paths between two maxima of a function we maximize (an ELBO): the result record, the
straight line, dense resampling and the barrier.

Everything here works for any user function ``f`` that maps a batch of vectors
``(P, n)`` to values ``(P,)``, row by row, differentiably by autograd (a model's
structured parameters become vectors with :class:`~elbolab.landscape.flat.Flattener`).
A path is a ``(P, n)`` tensor of pivots whose first and last rows are the two endpoints;
every method keeps those rows bit-for-bit.

The quantity of interest is the *barrier* of a path (Draxler et al. 2018; Li & Wei,
Zhang & Blei for LDA's ELBO)::

    barrier = max(0, min(f(a), f(b)) - min_{x on path} f(x))

so 0 means the two maxima are joined by a path along which f never drops below the
lower endpoint. A maximum-f path (the analogue of a minimum-energy path with energy
``-f``) has the smallest barrier; its lowest point is a first-order saddle of f.

The path optimizers live in :mod:`~elbolab.landscape.elastic_band` (NEB, AutoNEB) and
:mod:`~elbolab.landscape.bezier`; this module holds what they share: the result, the
straight line, resampling and the barrier.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from .. import checks
from ..errors import ConfigError, NumericalError
from .inputs import Func, batched_values, endpoints

if TYPE_CHECKING:
    from .._types import ArrayOrTensor

__all__ = [
    "PathResult",
    "barrier",
    "dense_points",
    "dense_values",
    "linear_path",
    "path_length",
]


# --------------------------------------------------------------------------- results


@dataclass
class PathResult:
    """A path between two points and the values of ``f`` along it.

    Attributes
    ----------
    pivots : (P, n) tensor
        The path; ``pivots[0]`` and ``pivots[-1]`` are exactly the endpoints a and b.
    values : (P,) tensor
        f at the pivots.
    history : tensor
        Values per iteration. NEB / AutoNEB: ``(iters + 1, P)``, the pivot values after
        each accepted step, row 0 the starting path (AutoNEB: of its last cycle; all
        cycles are in ``info["cycle_histories"]``). Bezier: ``(iters, n_t)``, the values at
        that step's sampled t (sorted by t).
    dense_values : (M,) tensor
        f on a dense resampling of the path (piecewise linear between pivots for NEB,
        the curve itself for Bezier), endpoints and pivots included.
    dense_positions : (M,) tensor
        Arc-length fraction in [0, 1] of each dense point.
    barrier : float
        ``max(0, min(f(a), f(b)) - min(dense_values))`` (see :func:`barrier`), nats.
    length : float
        Euclidean length of the polyline through the pivots (:func:`path_length`).
    f_a, f_b : float
        f at the endpoints.
    method : str
        ``"linear"``, ``"neb"``, ``"autoneb"`` or ``"bezier"``.
    n_iter : int
        Optimization steps taken (all cycles for AutoNEB).
    converged : bool
        Whether the force criterion ``tol`` was met (always False for Bezier, which is
        stochastic and runs all its steps).
    climbing_index : int or None
        Index of the climbing pivot (the saddle estimate) when climbing was active.
    info : dict
        Method-specific extras (step halvings, final force, control points, ...).
    """

    pivots: torch.Tensor
    values: torch.Tensor
    history: torch.Tensor
    dense_values: torch.Tensor
    dense_positions: torch.Tensor
    barrier: float
    length: float
    f_a: float
    f_b: float
    method: str
    n_iter: int = 0
    converged: bool = False
    climbing_index: int | None = None
    info: dict = field(default_factory=dict)

    @property
    def bottleneck(self) -> float:
        """Lowest value of f on the dense resampling of the path."""
        return float(self.dense_values.min())

    def summary(self) -> dict:
        """Plain-Python numbers for ``metrics.json``."""
        return {
            "method": self.method,
            "n_pivots": int(self.pivots.shape[0]),
            "barrier": self.barrier,
            "bottleneck": self.bottleneck,
            "length": self.length,
            "f_a": self.f_a,
            "f_b": self.f_b,
            "n_iter": self.n_iter,
            "converged": self.converged,
            "climbing_index": self.climbing_index,
        }


# --------------------------------------------------------------------------- basic paths


def linear_path(a: ArrayOrTensor, b: ArrayOrTensor, n_pivots: int) -> torch.Tensor:
    """Evenly spaced points on the straight segment from ``a`` to ``b``.

    Parameters
    ----------
    a, b : (n,) tensor
        Endpoints.
    n_pivots : int
        Number of points P >= 2, endpoints included.

    Returns
    -------
    path : (P, n) tensor
        ``path[i] = (1 - t_i) a + t_i b`` with ``t_i = i / (P - 1)``; rows 0 and P-1 are
        exactly ``a`` and ``b``.
    """
    a, b = endpoints(a, b)
    n_pivots = checks.integer(n_pivots, "n_pivots", 2)
    t = torch.linspace(0.0, 1.0, n_pivots, dtype=a.dtype, device=a.device)[:, None]
    path = (1 - t) * a + t * b
    path[0], path[-1] = a, b
    return path


def path_length(pivots: torch.Tensor) -> float:
    """Euclidean length of the polyline through the pivots, sum_i ||p_{i+1} - p_i||."""
    pivots = checks.real_tensor(pivots, "pivots", ConfigError)
    if pivots.dim() != 2:
        raise ConfigError(f"pivots must be a (P, n) tensor, got shape {tuple(pivots.shape)}")
    return float((pivots[1:] - pivots[:-1]).norm(dim=1).sum())


def barrier(values_on_path: ArrayOrTensor, f_a: float, f_b: float) -> float:
    """Barrier of a path for a function we maximize, in the units of f (nats for an ELBO).

    Parameters
    ----------
    values_on_path : (M,) tensor or array
        f along the path (pivots, or better a dense resampling).
    f_a, f_b : float
        f at the endpoints.

    Returns
    -------
    float
        ``max(0, min(f_a, f_b) - min(values_on_path))``: how far f drops along the path
        below the lower of the two endpoints.
    """
    vals = torch.as_tensor(values_on_path, dtype=torch.float64).reshape(-1)
    if vals.numel() == 0:
        raise ConfigError("barrier: values_on_path is empty")
    low = min(float(f_a), float(f_b))
    bad = int((~torch.isfinite(vals)).sum())
    if bad or not math.isfinite(low):
        raise NumericalError(
            f"barrier: f is NaN/inf at {bad} of {vals.numel()} points on the path"
            + ("" if math.isfinite(low) else " and at an endpoint")
            + "; no barrier can be measured"
        )
    return max(0.0, low - float(vals.min()))


def dense_points(pivots: torch.Tensor, per_segment: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """Piecewise-linear resampling of a path: ``per_segment`` points per segment.

    Parameters
    ----------
    pivots : (P, n) tensor
    per_segment : int
        Points per segment; segment i contributes ``p_i + (j / per_segment)(p_{i+1} - p_i)``
        for j = 0..per_segment-1, and the last pivot closes the list.

    Returns
    -------
    points : (M, n) tensor
        ``M = (P - 1) * per_segment + 1``; ``points[::per_segment]`` are the pivots.
    positions : (M,) tensor
        Arc-length fraction of each point in [0, 1].
    """
    pivots = checks.real_tensor(pivots, "pivots", ConfigError)
    if not pivots.is_floating_point():
        pivots = pivots.to(torch.get_default_dtype())
    if pivots.dim() != 2 or pivots.shape[0] < 2:
        raise ConfigError(f"pivots must be a (P >= 2, n) tensor, got shape {tuple(pivots.shape)}")
    per_segment = checks.integer(per_segment, "per_segment", 1)
    j = torch.arange(per_segment, dtype=pivots.dtype, device=pivots.device) / per_segment
    start, delta = pivots[:-1], pivots[1:] - pivots[:-1]
    pts = start[:, None, :] + j[None, :, None] * delta[:, None, :]
    points = torch.cat([pts.reshape(-1, pivots.shape[1]), pivots[-1:]], dim=0)
    seg = delta.norm(dim=1)
    s0 = torch.cat([seg.new_zeros(1), torch.cumsum(seg, 0)])
    pos = torch.cat([(s0[:-1, None] + j[None, :] * seg[:, None]).reshape(-1), s0[-1:]])
    total = s0[-1]
    positions = pos / total if total > 0 else torch.linspace(0, 1, pos.shape[0], dtype=pos.dtype)
    return points, positions


def dense_values(
    f: Func, pivots: torch.Tensor, per_segment: int = 10, batch_size: int | None = None
) -> torch.Tensor:
    """f on the dense piecewise-linear resampling of :func:`dense_points` (batched).

    Parameters
    ----------
    f : callable
        ``f((M, n)) -> (M,)``.
    pivots : (P, n) tensor
    per_segment : int
    batch_size : int, optional
        Evaluate in chunks of this many points (memory); default: one call.

    Returns
    -------
    values : ((P - 1) * per_segment + 1,) tensor
    """
    points, _ = dense_points(pivots, per_segment)
    if batch_size is not None:
        checks.integer(batch_size, "batch_size", 1)
    return batched_values(f, points, batch_size)
