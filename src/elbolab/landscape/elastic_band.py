"""The nudged elastic band and AutoNEB: maximum-f paths between two maxima of f.

f maps a ``(P, n)`` batch of pivots to ``(P,)`` values, row by row, differentiably by
autograd; each iteration evaluates all pivots in one batched call and moves the interior
ones with the guarded ascent step of :mod:`~elbolab.landscape.ascent`. The endpoints
never move (bit-for-bit). Results are :class:`~elbolab.landscape.paths.PathResult`.

Methods
-------
:func:`neb`
    Nudged elastic band (Jonsson, Mills & Jacobsen 1998) with the improved tangent and
    the climbing image (Henkelman & Jonsson 2000; Henkelman, Uberuaga & Jonsson 2000),
    transcribed for maximization (energy ``E = -f``).
:func:`autoneb`
    AutoNEB (Draxler et al. 2018): cycles of band relaxation, each followed by inserting
    pivots where a dense resampling of the path dips below its pivots. The band is
    relaxed spring-free, as a string (E, Ren & Vanden-Eijnden 2002): after every step the
    pivots are redistributed along the path's arc length.

References
----------
- H. Jonsson, G. Mills, K. W. Jacobsen (1998). Nudged elastic band method for finding
  minimum energy paths of transitions.
- G. Henkelman, H. Jonsson (2000). Improved tangent estimate in the nudged elastic band
  method. J. Chem. Phys. 113, 9978.
- G. Henkelman, B. P. Uberuaga, H. Jonsson (2000). A climbing image nudged elastic band
  method. J. Chem. Phys. 113, 9901.
- W. E, W. Ren, E. Vanden-Eijnden (2002). String method for the study of rare events.
  Phys. Rev. B 66, 052301.
- F. Draxler, K. Veschgini, M. Salmhofer, F. Hamprecht (2018). Essentially no barriers
  in neural network energy landscape. ICML.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING

import torch

from .. import checks
from ..errors import ConfigError, NumericalError
from ..progress import progress
from .ascent import Candidate, GuardedAscent, Optimizer, candidate
from .inputs import (
    Func,
    Project,
    bad_rows,
    domain_projection,
    endpoints,
    progress_disabled,
    settings_record,
    value_and_grad,
)
from .paths import PathResult, barrier, dense_points, dense_values, linear_path, path_length

if TYPE_CHECKING:
    from .._types import ArrayOrTensor

__all__ = ["Band", "Cycles", "autoneb", "neb"]


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Band:
    """The forces on an NEB band (:func:`neb`).

    Attributes
    ----------
    spring : float
        Spring constant k (units of f per squared unit of x); 0 switches springs off.
    climbing : bool
        Climbing image on the lowest interior pivot from iteration ``climb_start`` on.
    climb_start : int, optional
        Iteration at which climbing starts; default ``steps // 4`` (the band first settles
        near the maximum-f path).
    """

    spring: float = 1.0
    climbing: bool = False
    climb_start: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "spring", checks.positive(self.spring, "spring", allow_zero=True))
        object.__setattr__(self, "climbing", bool(self.climbing))
        if self.climb_start is not None:
            start = checks.integer(self.climb_start, "climb_start", 0)
            object.__setattr__(self, "climb_start", start)


@dataclass(frozen=True)
class Cycles:
    """The schedule of :func:`autoneb`: relax-and-insert cycles, then a climbing cycle.

    Attributes
    ----------
    count : int
        Most relax-and-insert cycles (>= 1).
    insert_per_cycle : int
        Most pivots inserted after one cycle.
    max_pivots : int
        The path never grows beyond this many pivots (at least the starting ``n_pivots``).
    insert_tol : float
        A segment gets a new pivot only if its drop exceeds this (units of f).
    climbing : bool
        Run a final climbing-image cycle.
    climb_steps : int, optional
        Iterations of that cycle; default ``steps``.
    """

    count: int = 5
    insert_per_cycle: int = 2
    max_pivots: int = 33
    insert_tol: float = 0.0
    climbing: bool = False
    climb_steps: int | None = None

    def __post_init__(self) -> None:
        checks.integer(self.count, "cycles", 1)
        checks.integer(self.insert_per_cycle, "insert_per_cycle", 0)
        checks.integer(self.max_pivots, "max_pivots", 3)
        tol = checks.positive(self.insert_tol, "insert_tol", allow_zero=True)
        object.__setattr__(self, "insert_tol", tol)
        object.__setattr__(self, "climbing", bool(self.climbing))
        if self.climb_steps is not None:
            steps = checks.integer(self.climb_steps, "climb_steps", 0)
            object.__setattr__(self, "climb_steps", steps)


# --------------------------------------------------------------------------- band forces


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny)


def _tangents(path: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Improved tangent of Henkelman & Jonsson (2000) at the interior pivots, unit length.

    With energy E = -f: between a higher and a lower neighbour the tangent is the
    segment towards the neighbour of higher energy (lower f); at a local extremum of E
    along the path it is a blend of both segments weighted by the energy differences,
    the larger weight on the higher-energy side. This keeps the spring and perpendicular
    forces from kinking the band where f changes fast along it.

    Every case is a per-pivot combination a t_plus + b t_minus of the two segments, so it
    is formed from the scalars a, b with two full-size temporaries, not a dozen (pivots
    may have millions of coordinates). Returns the tangents (P - 2, n) and the segment
    lengths |p_{i+1} - p_i| (P - 1,).
    """
    e = -values
    e_prev, e_mid, e_next = e[:-2], e[1:-1], e[2:]
    t_plus = path[2:] - path[1:-1]
    t_minus = path[1:-1] - path[:-2]
    n_plus, n_minus = t_plus.norm(dim=1), t_minus.norm(dim=1)
    seg = torch.cat([n_minus, n_plus[-1:]])
    d_next, d_prev = (e_next - e_mid).abs(), (e_prev - e_mid).abs()
    d_max, d_min = torch.maximum(d_next, d_prev), torch.minimum(d_next, d_prev)
    next_higher = e_next > e_prev
    a = torch.where(next_higher, d_max, d_min)
    b = torch.where(next_higher, d_min, d_max)
    up = (e_next > e_mid) & (e_mid > e_prev)
    down = (e_next < e_mid) & (e_mid < e_prev)
    a = torch.where(up, 1.0, torch.where(down, 0.0, a)).to(path.dtype)
    b = torch.where(up, 0.0, torch.where(down, 1.0, b)).to(path.dtype)
    tau = t_plus.mul_(a[:, None]).addcmul_(t_minus, b[:, None])
    norm = tau.norm(dim=1)
    degenerate = torch.nonzero(norm == 0).flatten()
    if degenerate.numel():
        # Flat stretches (equal energies) give tau = 0: fall back to the bisector.
        i = degenerate + 1
        tau[degenerate] = _unit(path[i + 1] - path[i]) + _unit(path[i] - path[i - 1])
        norm = tau.norm(dim=1)
    return tau.div_(norm.clamp_min(torch.finfo(path.dtype).tiny)[:, None]), seg


def _band_forces(
    path: torch.Tensor,
    values: torch.Tensor,
    grad: torch.Tensor,
    spring: float,
    climb: bool,
) -> tuple[torch.Tensor, int | None]:
    """NEB force on the interior pivots for *maximizing* f, and the climbing index.

    F_i = g_i - (g_i . tau_i) tau_i + k (|p_{i+1} - p_i| - |p_i - p_{i-1}|) tau_i
    (the ascent direction g = grad f = -grad E perpendicular to the path, plus the spring
    along it). The climbing pivot -- the interior pivot with the lowest f, the bottleneck
    of a maximum-f path -- gets F = g - 2 (g . tau) tau and no spring: uphill across the
    path, downhill along it, so it converges to the first-order saddle of f.
    """
    tau, seg = _tangents(path, values)
    g = grad[1:-1]
    # Row-wise dot products without a full-size product tensor.
    g_par = torch.bmm(g[:, None, :], tau[:, :, None]).reshape(-1)
    along = -g_par
    if spring > 0:
        along = along + spring * (seg[1:] - seg[:-1])
    ci = None
    if climb:
        i = int(torch.argmin(values[1:-1]))
        along[i] = -2 * g_par[i]
        ci = i + 1
    return torch.addcmul(g, tau, along[:, None]), ci


def _reparametrize(path: torch.Tensor, alphas: torch.Tensor, fixed: int | None) -> torch.Tensor:
    """Move the pivots along the polyline to arc-length fractions ``alphas``.

    String-method reparameterization (E, Ren & Vanden-Eijnden 2002), generalized to
    non-uniform target fractions so that pivots inserted by AutoNEB stay where they were
    put. A climbing pivot ``fixed`` stays where it is; the pivots on either side are
    spread over the arc length on their side in proportion to their fractions.
    """
    seg = (path[1:] - path[:-1]).norm(dim=1)
    s = torch.cat([seg.new_zeros(1), torch.cumsum(seg, 0)])
    total = s[-1]
    if fixed is None:
        target = alphas * total
    else:
        sc, ac = s[fixed], alphas[fixed]
        left = alphas / ac * sc
        right = sc + (alphas - ac) / (1 - ac) * (total - sc)
        target = torch.where(alphas <= ac, left, right)
    idx = (torch.searchsorted(s, target.contiguous(), right=True) - 1).clamp(0, path.shape[0] - 2)
    w = ((target - s[idx]) / seg[idx].clamp_min(torch.finfo(path.dtype).tiny)).clamp(0, 1)
    new = path[idx] + w[:, None] * (path[idx + 1] - path[idx])
    new[0], new[-1] = path[0], path[-1]
    if fixed is not None:
        new[fixed] = path[fixed]
    return new


@dataclass
class _Relaxed:
    """The outcome of :func:`_relax`: the final band and how it got there."""

    path: torch.Tensor
    values: torch.Tensor
    history: torch.Tensor
    climbing_index: int | None
    n_iter: int
    converged: bool
    halvings: int
    max_force: float


def _band_candidate(
    f: Func, path: torch.Tensor, alphas: torch.Tensor | None, fixed: int | None, moved
) -> Candidate:
    """The band with its interior pivots moved (and, for a string, redistributed)."""
    trial = path.clone()
    trial[1:-1] = moved
    if alphas is not None:
        trial = _reparametrize(trial, alphas, fixed)
    return candidate(trial, *value_and_grad(f, trial))


def _endpoint_failure(label: str, where: str, trial: Candidate, h: int) -> str | None:
    if trial.bad[0] or trial.bad[-1]:
        return (
            f"{label} stopped at {where}: f or its gradient became NaN/inf at a fixed "
            f"endpoint, where it was finite before; f must be a deterministic, finite "
            f"function of its input"
        )
    return None


def _pivot_failure(label: str, where: str, max_halvings: int, trial: Candidate) -> str:
    rows = torch.nonzero(trial.bad).flatten().tolist()
    return (
        f"{label} stopped at {where}: f or its gradient is NaN/inf at pivot(s) {rows} even "
        f"after {max_halvings} step halvings; f is not finite arbitrarily close to the "
        f"current path (pass project= to keep pivots inside f's domain, or check f)"
    )


def _interior(bad: torch.Tensor) -> torch.Tensor:
    return bad[1:-1]


def _relax(
    f: Func,
    path: torch.Tensor,
    steps: int,
    band: Band,
    ascent: GuardedAscent,
    *,
    method: str,
    alphas: torch.Tensor | None,
    tol: float,
    callback: Callable | None,
    show_progress: bool | None,
    iteration_offset: int = 0,
) -> _Relaxed:
    """Relax a band (NEB with springs) or a string (``alphas`` given, no springs).

    Each iteration: forces from the values and gradients of the current path (one
    batched call), then one guarded step of ``ascent`` (capped, projected, halved while
    f is not finite at a trial pivot), with the string redistributed to the arc-length
    fractions ``alphas`` after the move. Without ``alphas`` only the pivots that are not
    finite get their step halved; a string's redistribution mixes neighbours, so it
    halves every step. If f stops being finite at the fixed endpoints, or after the last
    halving, a NumericalError (a FloatingPointError) names the iteration.
    """
    label = "NEB" if method == "neb" else "AutoNEB"
    values, grad = value_and_grad(f, path)
    bad = bad_rows(values, grad)
    if bad.any():
        rows = torch.nonzero(bad).flatten().tolist()
        raise NumericalError(
            f"{label}: iteration {iteration_offset} (starting path): f or its gradient is "
            f"NaN/inf at pivot(s) {rows}; start from points where f is finite"
        )
    history = [values]
    ci = None
    converged = False
    fmax = math.inf
    n_iter = 0
    disable = progress_disabled(show_progress)
    with progress(total=steps, desc=method, unit="step", disable=disable, leave=False) as bar:
        for it in range(1, steps + 1):
            climb_now = band.climbing and it - 1 >= band.climb_start
            force, ci = _band_forces(path, values, grad, band.spring, climb_now)
            fmax = float(force.norm(dim=1).max())
            if fmax <= tol and (climb_now or not band.climbing):
                converged = True
                break
            where = f"iteration {iteration_offset + it}"
            trial = ascent.step(
                path[1:-1],
                force,
                partial(_band_candidate, f, path, alphas, ci),
                halve=_interior if alphas is None else None,
                hopeless=partial(_endpoint_failure, label, where),
                exhausted=partial(_pivot_failure, label, where, ascent.max_halvings),
            )
            path, values, grad = trial.state, trial.values, trial.grad
            history.append(values)
            n_iter = it
            bar.update(1)
            if it % 50 == 0:
                low = float(values.min())
                bar.set_postfix(min_f=f"{low:.4g}", force=f"{fmax:.2e}", refresh=False)
            if callback is not None and callback(iteration_offset + it, path, values):
                break
    if not converged:
        climb_now = band.climbing and n_iter >= band.climb_start
        force, ci = _band_forces(path, values, grad, band.spring, climb_now)
        fmax = float(force.norm(dim=1).max())
        converged = fmax <= tol and (not band.climbing or n_iter >= band.climb_start)
    return _Relaxed(
        path=path,
        values=values,
        history=torch.stack(history),
        climbing_index=ci if band.climbing else None,
        n_iter=n_iter,
        converged=converged,
        halvings=ascent.halvings,
        max_force=fmax,
    )


def _finish(
    f: Func,
    method: str,
    path: torch.Tensor,
    values: torch.Tensor,
    history: torch.Tensor,
    per_segment: int,
    batch_size: int | None,
    **extra,
) -> PathResult:
    dense = dense_values(f, path, per_segment, batch_size)
    _, positions = dense_points(path, per_segment)
    if not torch.isfinite(dense).all():
        raise NumericalError(
            f"{method}: the optimized pivots are finite, but f is NaN/inf on the straight "
            f"segments between them (f's domain is not convex along the path); use "
            f"per_segment=1 to evaluate the pivots only"
        )
    f_a, f_b = float(values[0]), float(values[-1])
    return PathResult(
        pivots=path,
        values=values,
        history=history,
        dense_values=dense,
        dense_positions=positions,
        barrier=barrier(dense, f_a, f_b),
        length=path_length(path),
        f_a=f_a,
        f_b=f_b,
        method=method,
        **extra,
    )


def _common_args(n_pivots, steps, optimizer, per_segment, noise) -> Optimizer:
    checks.integer(n_pivots, "n_pivots", 3)
    checks.integer(steps, "steps", 0)
    checks.integer(per_segment, "per_segment", 1)
    checks.positive(noise, "noise", allow_zero=True)
    return settings_record(optimizer, Optimizer, "optimizer")


def _start_path(a, b, n_pivots, init, noise, generator, project) -> torch.Tensor:
    if init is None:
        path = linear_path(a, b, n_pivots)
    else:
        path = checks.real_tensor(init, "init", ConfigError)
        path = path.to(dtype=a.dtype, device=a.device).detach().clone()
        if path.dim() != 2 or path.shape[0] < 3 or path.shape[1] != a.shape[0]:
            raise ConfigError(
                f"init must be a (P >= 3, {a.shape[0]}) path, got shape {tuple(path.shape)}"
            )
        if not torch.isfinite(path).all():
            raise ConfigError("init has NaN or infinite entries")
        path[0], path[-1] = a, b
    if noise > 0:
        gen = checks.torch_generator(generator, "generator", device=path.device)
        eps = torch.randn(
            path.shape[0] - 2, path.shape[1], generator=gen, dtype=path.dtype, device=path.device
        )
        path[1:-1] += noise * eps
    path[1:-1] = project(path[1:-1])
    return path


def _max_step(a, b, n_segments: int, optimizer: Optimizer) -> float:
    """The optimizer's step cap, by default half the straight-line pivot spacing."""
    if optimizer.max_step is None:
        return 0.5 * float((b - a).norm()) / n_segments
    return optimizer.max_step


# --------------------------------------------------------------------------- NEB


def neb(
    f: Func,
    a: ArrayOrTensor,
    b: ArrayOrTensor,
    n_pivots: int = 10,
    steps: int = 500,
    *,
    optimizer: Optimizer | None = None,
    band: Band | None = None,
    tol: float = 1e-6,
    generator: torch.Generator | int = 0,
    noise: float = 0.0,
    init: torch.Tensor | None = None,
    project: Project | None = None,
    callback: Callable | None = None,
    per_segment: int = 10,
    batch_size: int | None = None,
    show_progress: bool | None = None,
) -> PathResult:
    """Maximum-f path between ``a`` and ``b`` by the nudged elastic band, for maximizing f.

    The interior pivots move along the NEB force for maximization (energy E = -f)::

        F_i = g_i - (g_i . tau_i) tau_i + k (|p_{i+1} - p_i| - |p_i - p_{i-1}|) tau_i

    with g_i = grad f(p_i) and tau_i the improved tangent of Henkelman & Jonsson (2000),
    which points toward the neighbour with the higher energy, i.e. the *lower* f. With
    ``band.climbing`` the interior pivot with the lowest f (the bottleneck of a
    maximum-f path) drops its spring and gets F = g - 2 (g . tau) tau: it climbs f across
    the path and descends f along it, converging to the first-order saddle of f between
    the two maxima (Henkelman, Uberuaga & Jonsson 2000). The endpoints never move.

    At convergence (all forces 0) the pivots lie on the maximum-f path up to the
    first-order error of the one-sided tangent (it shrinks like the pivot spacing), and
    the climbing pivot sits on the saddle itself, so ``barrier`` is then
    ``min(f(a), f(b)) - f(saddle)``. Adam rescales coordinates, which changes the route
    to the fixed point (F = 0) but not the fixed point.

    Parameters
    ----------
    f : callable
        ``f((P, n) tensor) -> (P,) tensor``, row by row, differentiable by autograd; the
        function maximized (an ELBO, in nats).
    a, b : (n,) tensor
        Endpoints (typically two local maxima of f).
    n_pivots : int
        Pivots P >= 3 including both endpoints (ignored when ``init`` is given).
    steps : int
        Maximum number of iterations.
    optimizer : Optimizer, optional
        Update rule, step size, step cap (default half the straight-line pivot spacing,
        ``0.5 |b - a| / (P - 1)``) and step halvings allowed per iteration when f is not
        finite at a trial pivot; default ``Optimizer()`` (Adam, lr 0.01).
    band : Band, optional
        Spring constant and climbing image; default ``Band()`` (spring 1, no climbing).
    tol : float
        Stop when the largest interior force norm is at most ``tol`` (and climbing, if
        asked, has started).
    generator : torch.Generator or int
        Randomness of ``noise``.
    noise : float
        Standard deviation of Gaussian noise added to the starting interior pivots
        (breaks the symmetry of a straight start on symmetric functions).
    init : (P, n) tensor, optional
        Starting path instead of the straight line; its endpoint rows are replaced by
        ``a`` and ``b``.
    project : callable, optional
        Maps a ``(m, n)`` batch of pivots back into f's domain (e.g. ``lambda x:
        x.clamp_min(1e-8)`` for positive parameters); applied after every step. Default:
        identity.
    callback : callable, optional
        ``callback(iteration, pivots, values)`` after each step; return True to stop. Do
        not modify the tensors in place.
    per_segment : int
        Dense resampling for :attr:`PathResult.dense_values` and the barrier.
    batch_size : int, optional
        Chunk size of the dense evaluation (memory for large n).
    show_progress : bool, optional
        Progress bar; default: on a terminal (see :mod:`elbolab.progress`).

    Returns
    -------
    PathResult
        ``info`` holds ``halvings`` (step halvings taken), ``max_force`` (final largest
        interior force norm) and ``spring``.

    Raises
    ------
    ConfigError
        Bad arguments, or ``f`` does not return a differentiable ``(P,)`` tensor.
    NumericalError
        f or its gradient is NaN/inf at the start, at an endpoint, or at a pivot even
        after ``optimizer.max_halvings`` step halvings; the message names the iteration.
    """
    a, b = endpoints(a, b)
    if init is not None:
        n_pivots = int(torch.as_tensor(init).shape[0])
    optimizer = _common_args(n_pivots, steps, optimizer, per_segment, noise)
    band = settings_record(band, Band, "band")
    tol = checks.positive(tol, "tol", allow_zero=True)
    if band.climb_start is None:
        band = replace(band, climb_start=steps // 4)
    proj = domain_projection(project)
    path = _start_path(a, b, n_pivots, init, noise, generator, proj)
    ascent = GuardedAscent(optimizer, path[1:-1], _max_step(a, b, n_pivots - 1, optimizer), proj)
    out = _relax(
        f,
        path,
        steps,
        band,
        ascent,
        method="neb",
        alphas=None,
        tol=tol,
        callback=callback,
        show_progress=show_progress,
    )
    return _finish(
        f,
        "neb",
        out.path,
        out.values,
        out.history,
        per_segment,
        batch_size,
        n_iter=out.n_iter,
        converged=out.converged,
        climbing_index=out.climbing_index,
        info={"halvings": out.halvings, "max_force": out.max_force, "spring": band.spring},
    )


# --------------------------------------------------------------------------- AutoNEB


def _insertions(
    path: torch.Tensor, values: torch.Tensor, dense: torch.Tensor, per_segment: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per segment: drop of the dense values below its lower pivot, and where it is lowest.

    Returns ``drop (P-1,)``, ``points (P-1, n)`` (lowest interior dense point of each
    segment) and ``frac (P-1,)`` (its position within the segment, in (0, 1)).
    """
    n_seg = path.shape[0] - 1
    inner = dense[:-1].reshape(n_seg, per_segment)[:, 1:]
    low, j = inner.min(dim=1)
    drop = torch.minimum(values[:-1], values[1:]) - low
    frac = (j + 1).to(path.dtype) / per_segment
    points = path[:-1] + frac[:, None] * (path[1:] - path[:-1])
    return drop, points, frac


def _arc_fractions(path: torch.Tensor) -> torch.Tensor:
    """Arc-length fraction of every pivot along the polyline, exactly 0 and 1 at the ends."""
    seg = (path[1:] - path[:-1]).norm(dim=1)
    s = torch.cat([seg.new_zeros(1), torch.cumsum(seg, 0)])
    alphas = s / s[-1]
    alphas[0], alphas[-1] = 0.0, 1.0
    return alphas


def _with_insertions(
    f: Func,
    path: torch.Tensor,
    values: torch.Tensor,
    cycles: Cycles,
    room: int,
    per_segment: int,
    batch_size: int | None,
) -> tuple[torch.Tensor, int]:
    """The path with up to ``room`` new pivots where it dips most, and how many were added.

    Insertion of Draxler et al. (2018, Alg. 1): new pivots at the lowest dense points of
    the segments that dip more than ``cycles.insert_tol`` below their pivots.
    """
    dense = dense_values(f, path, per_segment, batch_size)
    drop, points, _ = _insertions(path, values, dense, per_segment)
    candidates = torch.nonzero(torch.isfinite(drop) & (drop > cycles.insert_tol)).flatten()
    chosen = candidates[torch.argsort(drop[candidates], descending=True)[:room]]
    if chosen.numel() == 0:
        return path, 0
    # Segment i's new pivot goes between rows i and i + 1.
    rows = torch.arange(path.shape[0], dtype=path.dtype)
    keys = torch.cat([rows, chosen.to(path.dtype) + 0.5])
    return torch.cat([path, points[chosen]])[torch.argsort(keys)], int(chosen.numel())


def autoneb(
    f: Func,
    a: ArrayOrTensor,
    b: ArrayOrTensor,
    n_pivots: int = 3,
    steps: int = 200,
    *,
    optimizer: Optimizer | None = None,
    cycles: Cycles | None = None,
    tol: float = 1e-6,
    generator: torch.Generator | int = 0,
    noise: float = 0.0,
    project: Project | None = None,
    callback: Callable | None = None,
    per_segment: int = 10,
    batch_size: int | None = None,
    show_progress: bool | None = None,
) -> PathResult:
    """AutoNEB (Draxler et al. 2018): relax a string, insert pivots where it dips, repeat.

    Start from the straight line with ``n_pivots`` pivots. Each cycle relaxes the path
    for ``steps`` iterations, then evaluates f on a dense piecewise-linear resampling
    (``per_segment`` points per segment). For each segment the *drop* is
    ``min(f(p_i), f(p_{i+1})) - min over the segment's interior dense points``; in the up
    to ``cycles.insert_per_cycle`` segments with the largest drop above
    ``cycles.insert_tol`` a new pivot is inserted at the lowest dense point (while the
    path has fewer than ``cycles.max_pivots``). The cycles stop early once no segment
    needs a pivot.

    No spring constant: instead of NEB springs the path is relaxed as a string (E, Ren &
    Vanden-Eijnden 2002). Each step moves the pivots along the component of grad f
    perpendicular to the improved tangent, then redistributes them along the new
    polyline to fixed arc-length fractions. The fractions are uniform at the start; an
    inserted pivot keeps the fraction of the place where it was inserted, and all
    fractions are re-read from the path at the start of each cycle, so the extra
    resolution stays where the path needed it. (Plain equal-arc-length redistribution
    would smear an inserted pivot away from the dip that called for it.)

    With ``cycles.climbing`` a final cycle of ``cycles.climb_steps`` iterations (default
    ``steps``) runs with the climbing image on the lowest pivot, which stays put during
    redistribution while the pivots on each side are spread over their side.

    Parameters
    ----------
    f, a, b, tol, generator, noise, project, callback, per_segment, batch_size, show_progress
        As in :func:`neb`.
    n_pivots : int
        Starting pivots (>= 3, endpoints included).
    steps : int
        Iterations per cycle.
    optimizer : Optimizer, optional
        As in :func:`neb`; the default step cap is ``0.5 |b - a| / (P - 1)`` for the
        current P.
    cycles : Cycles, optional
        How many relax-and-insert cycles, how many pivots each may insert, and the
        final climbing cycle; default ``Cycles()`` (5 cycles, 2 insertions each, at
        most 33 pivots, no climbing).

    Returns
    -------
    PathResult
        ``history`` is that of the last cycle; ``info["cycle_histories"]`` has them all,
        ``info["n_pivots_per_cycle"]`` the path size during each cycle,
        ``info["inserted"]`` the number inserted after each cycle.
    """
    a, b = endpoints(a, b)
    optimizer = _common_args(n_pivots, steps, optimizer, per_segment, noise)
    cycles = settings_record(cycles, Cycles, "cycles")
    checks.integer(cycles.max_pivots, "max_pivots", n_pivots)
    tol = checks.positive(tol, "tol", allow_zero=True)
    climb_steps = steps if cycles.climb_steps is None else cycles.climb_steps
    proj = domain_projection(project)
    path = _start_path(a, b, n_pivots, None, noise, generator, proj)

    histories, sizes, inserted = [], [], []
    total_iter = halvings = 0

    def run(path, n_steps, climb):
        nonlocal total_iter, halvings
        sizes.append(int(path.shape[0]))
        cap = _max_step(a, b, path.shape[0] - 1, optimizer)
        out = _relax(
            f,
            path,
            n_steps,
            Band(spring=0.0, climbing=climb, climb_start=0),
            GuardedAscent(optimizer, path[1:-1], cap, proj),
            method="autoneb",
            alphas=_arc_fractions(path),
            tol=tol,
            callback=callback,
            show_progress=show_progress,
            iteration_offset=total_iter,
        )
        histories.append(out.history)
        total_iter += out.n_iter
        halvings += out.halvings
        return out

    for c in range(cycles.count):
        out = run(path, steps, False)
        path, values = out.path, out.values
        room = min(cycles.insert_per_cycle, cycles.max_pivots - path.shape[0])
        if c == cycles.count - 1 or per_segment == 1 or room <= 0:
            break
        path, added = _with_insertions(f, path, values, cycles, room, per_segment, batch_size)
        inserted.append(added)
        if added == 0:
            break
    if cycles.climbing:
        out = run(path, climb_steps, True)
    return _finish(
        f,
        "autoneb",
        out.path,
        out.values,
        histories[-1],
        per_segment,
        batch_size,
        n_iter=total_iter,
        converged=out.converged,
        climbing_index=out.climbing_index,
        info={
            "halvings": halvings,
            "max_force": out.max_force,
            "cycle_histories": histories,
            "n_pivots_per_cycle": sizes,
            "inserted": inserted,
        },
    )
