"""Paths between two maxima of a function we maximize (an ELBO): linear, NEB, AutoNEB.

Everything here works for any user function ``f`` that maps a batch of vectors
``(P, n)`` to values ``(P,)``, row by row, differentiably by autograd (a model's
structured parameters become vectors with :class:`~elbolab.landscape.flat.Flattener`).
A path is a ``(P, n)`` tensor of pivots whose first and last rows are the two endpoints;
every method keeps those rows bit-for-bit. Each optimization step evaluates all pivots
in one batched call ``f(path)``.

The quantity of interest is the *barrier* of a path (Draxler et al. 2018; Li & Wei,
Zhang & Blei for LDA's ELBO)::

    barrier = max(0, min(f(a), f(b)) - min_{x on path} f(x))

so 0 means the two maxima are joined by a path along which f never drops below the
lower endpoint. A maximum-f path (the analogue of a minimum-energy path with energy
``-f``) has the smallest barrier; its lowest point is a first-order saddle of f.

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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from .. import checks
from ..errors import ConfigError, NumericalError
from ..progress import progress

if TYPE_CHECKING:
    from .._types import ArrayOrTensor

__all__ = [
    "PathResult",
    "autoneb",
    "barrier",
    "dense_points",
    "dense_values",
    "linear_path",
    "neb",
    "path_length",
]

Func = Callable[[torch.Tensor], torch.Tensor]
Project = Callable[[torch.Tensor], torch.Tensor]

_OPTIMIZERS = ("adam", "sgd")


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


# --------------------------------------------------------------------------- helpers


def _endpoints(a, b) -> tuple[torch.Tensor, torch.Tensor]:
    a, b = checks.real_tensor(a, "a", ConfigError), checks.real_tensor(b, "b", ConfigError)
    if not a.is_floating_point():
        a = a.to(torch.get_default_dtype())
    b = b.to(dtype=a.dtype, device=a.device)
    if a.dim() != 1 or b.shape != a.shape or a.numel() == 0:
        raise ConfigError(
            f"endpoints a and b must be 1-D vectors of the same length, got shapes "
            f"{tuple(a.shape)} and {tuple(b.shape)} (flatten structured parameters with "
            f"Flattener first)"
        )
    if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
        raise ConfigError("endpoints a and b must be finite")
    if torch.equal(a, b):
        raise ConfigError("endpoints a and b are the same point; a path needs two different ones")
    return a.detach(), b.detach()


def _check_f(f) -> None:
    if not callable(f):
        raise ConfigError(
            f"f must be a function mapping a (P, n) batch to (P,) values, got {type(f).__name__}"
        )


def _check_values(vals, rows: int) -> torch.Tensor:
    if not isinstance(vals, torch.Tensor) or tuple(vals.shape) != (rows,):
        got = tuple(vals.shape) if isinstance(vals, torch.Tensor) else type(vals).__name__
        raise ConfigError(
            f"f must map a (P, n) batch to a tensor of shape (P,); for P={rows} it returned {got}"
        )
    return vals


def _value_and_grad(f: Func, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """f and its gradient at every row of ``x`` in one batched call.

    f acts row by row, so the gradient of ``f(x).sum()`` with respect to ``x`` has row i
    equal to grad f(x_i).
    """
    _check_f(f)
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        try:
            vals = _check_values(f(x), x.shape[0])
        except NumericalError:
            # f refused to return a non-finite value (LDAObjective does). To the path
            # tools the rows it refused are non-finite rows, for step halving to handle:
            # find them one row at a time (a rare path, so its cost does not matter).
            if x.shape[0] == 1:
                return x.new_full((1,), math.nan).detach(), torch.full_like(x, math.nan)
            rows = [_value_and_grad(f, x[i : i + 1]) for i in range(x.shape[0])]
            return torch.cat([v for v, _ in rows]), torch.cat([g for _, g in rows])
        if not vals.requires_grad:
            raise ConfigError(
                "f must be differentiable by autograd: its output does not depend on the "
                "input through torch operations"
            )
        (grad,) = torch.autograd.grad(vals.sum(), x, allow_unused=True)
    if grad is None:
        grad = torch.zeros_like(x)
    return vals.detach(), grad.detach()


def _values(f: Func, x: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
    """f at every row of ``x`` without gradients, in chunks of ``batch_size`` rows."""
    _check_f(f)
    rows = x.shape[0]
    step = rows if batch_size is None else batch_size
    out = []
    with torch.no_grad():
        for start in range(0, rows, step):
            chunk = x[start : start + step]
            try:
                out.append(_check_values(f(chunk), chunk.shape[0]).detach())
            except NumericalError:  # as in _value_and_grad: the rows f refused are NaN
                if chunk.shape[0] == 1:
                    out.append(chunk.new_full((1,), math.nan))
                else:
                    out.append(_values(f, chunk, batch_size=1))
    return torch.cat(out) if out else x.new_zeros(0)


def _bad_rows(vals: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    # A finite row sum proves a row finite without a full-size boolean temporary (rows
    # may be millions long); rows whose sum is not finite get the exact test (the sum of
    # finite entries can overflow).
    bad = ~(torch.isfinite(vals) & torch.isfinite(grad.sum(dim=1)))
    rows = torch.nonzero(bad & torch.isfinite(vals)).flatten()
    if rows.numel():
        bad[rows] = ~torch.isfinite(grad[rows]).all(dim=1)
    return bad


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny)


def _project_fn(project: Project | None) -> Project:
    if project is None:
        return lambda x: x
    if not callable(project):
        raise ConfigError("project must be a function mapping a (P, n) batch into f's domain")

    def checked(x: torch.Tensor) -> torch.Tensor:
        y = project(x)
        if not isinstance(y, torch.Tensor) or y.shape != x.shape:
            raise ConfigError("project must return a tensor of the same shape as its input")
        return y.detach()

    return checked


def _cap_norm(step: torch.Tensor, max_step: float) -> torch.Tensor:
    """Scale each row of ``step`` down to Euclidean norm at most ``max_step``."""
    norms = step.norm(dim=-1, keepdim=True)
    return step * torch.where(norms > max_step, max_step / norms, torch.ones_like(norms))


class _Stepper:
    """Plain gradient ascent or Adam (Kingma & Ba 2015) on a force, vectorized over pivots.

    Written out rather than ``torch.optim`` so the proposed step can be capped and
    backtracked before it is taken.
    """

    def __init__(self, kind: str, lr: float, like: torch.Tensor):
        self.kind, self.lr = kind, lr
        self.t = 0
        self.m = torch.zeros_like(like)
        self.v = torch.zeros_like(like)
        self.beta1, self.beta2, self.eps = 0.9, 0.999, 1e-8

    def __call__(self, force: torch.Tensor) -> torch.Tensor:
        if self.kind == "sgd":
            return self.lr * force
        self.t += 1
        self.m.mul_(self.beta1).add_(force, alpha=1 - self.beta1)
        self.v.mul_(self.beta2).addcmul_(force, force, value=1 - self.beta2)
        # lr m_hat / (sqrt(v_hat) + eps) with the bias corrections folded into scalars (as
        # torch.optim.Adam): one full-size temporary instead of five, which matters when
        # a pivot has millions of coordinates (LDA's full mode).
        denom = self.v.sqrt().div_(math.sqrt(1 - self.beta2**self.t)).add_(self.eps)
        return torch.div(self.m, denom, out=denom).mul_(self.lr / (1 - self.beta1**self.t))


def _show(show_progress: bool | None) -> bool | None:
    return None if show_progress is None else not show_progress


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
    a, b = _endpoints(a, b)
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
    return _values(f, points, batch_size)


# --------------------------------------------------------------------------- band forces


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


def _relax(
    f: Func,
    path: torch.Tensor,
    *,
    method: str,
    steps: int,
    lr: float,
    spring: float,
    alphas: torch.Tensor | None,
    climbing: bool,
    climb_start: int,
    optimizer: str,
    max_step: float,
    project: Project,
    tol: float,
    callback,
    max_halvings: int,
    show_progress: bool | None,
    iteration_offset: int = 0,
) -> dict:
    """Relax a band (NEB with springs) or a string (``alphas`` given, no springs).

    Each iteration: forces from the values and gradients of the current path (one
    batched call), an Adam/SGD step capped at ``max_step`` per pivot, projection into
    the domain, (string) reparameterization, and one batched evaluation of the trial
    path. Pivots whose trial value or gradient is not finite (or a trial on which f raises
    NumericalError, as LDAObjective does where it would be NaN) get their step halved and
    the trial is re-evaluated; after ``max_halvings`` halvings, or if f stops being finite
    at the fixed endpoints, a NumericalError (a FloatingPointError) names the iteration.
    """
    label = method.upper() if method == "neb" else "AutoNEB"
    n_int = path.shape[0] - 2
    values, grad = _value_and_grad(f, path)
    bad = _bad_rows(values, grad)
    if bad.any():
        rows = torch.nonzero(bad).flatten().tolist()
        raise NumericalError(
            f"{label}: iteration {iteration_offset} (starting path): f or its gradient is "
            f"NaN/inf at pivot(s) {rows}; start from points where f is finite"
        )
    history = [values]
    stepper = _Stepper(optimizer, lr, path[1:-1])
    ci = None
    converged = False
    halvings = 0
    fmax = math.inf
    n_iter = 0
    bar = progress(total=steps, desc=method, unit="step", disable=_show(show_progress), leave=False)
    with bar:
        for it in range(1, steps + 1):
            climb_now = climbing and it - 1 >= climb_start
            force, ci = _band_forces(path, values, grad, spring, climb_now)
            fmax = float(force.norm(dim=1).max())
            if fmax <= tol and (climb_now or not climbing):
                converged = True
                break
            step = _cap_norm(stepper(force), max_step)
            scale = torch.ones(n_int, 1, dtype=path.dtype, device=path.device)
            for h in range(max_halvings + 1):
                trial = path.clone()
                trial[1:-1] = project(torch.addcmul(path[1:-1], scale, step))
                if alphas is not None:
                    trial = _reparametrize(trial, alphas, ci)
                t_values, t_grad = _value_and_grad(f, trial)
                bad = _bad_rows(t_values, t_grad)
                if not bad.any():
                    break
                where = f"iteration {iteration_offset + it}"
                if bad[0] or bad[-1]:
                    raise NumericalError(
                        f"{label} stopped at {where}: f or its gradient became NaN/inf at a "
                        f"fixed endpoint, where it was finite before; f must be a "
                        f"deterministic, finite function of its input"
                    )
                if h == max_halvings:
                    rows = torch.nonzero(bad).flatten().tolist()
                    raise NumericalError(
                        f"{label} stopped at {where}: f or its gradient is NaN/inf at "
                        f"pivot(s) {rows} even after {max_halvings} step halvings; f is "
                        f"not finite arbitrarily close to the current path (pass project= "
                        f"to keep pivots inside f's domain, or check f)"
                    )
                halvings += 1
                if alphas is None:
                    scale[bad[1:-1]] *= 0.5
                else:
                    # Reparameterization mixes neighbouring pivots: shrink every step.
                    scale *= 0.5
            path, values, grad = trial, t_values, t_grad
            history.append(values)
            n_iter = it
            bar.update(1)
            if it % 50 == 0:
                low = float(values.min())
                bar.set_postfix(min_f=f"{low:.4g}", force=f"{fmax:.2e}", refresh=False)
            if callback is not None and callback(iteration_offset + it, path, values):
                break
    if not converged:
        climb_now = climbing and n_iter >= climb_start
        force, ci = _band_forces(path, values, grad, spring, climb_now)
        fmax = float(force.norm(dim=1).max())
        converged = fmax <= tol and (not climbing or n_iter >= climb_start)
    return {
        "path": path,
        "values": values,
        "history": torch.stack(history),
        "climbing_index": ci if climbing else None,
        "n_iter": n_iter,
        "converged": converged,
        "halvings": halvings,
        "max_force": fmax,
    }


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


def _common_args(n_pivots, steps, lr, optimizer, max_halvings, per_segment, noise):
    checks.integer(n_pivots, "n_pivots", 3)
    checks.integer(steps, "steps", 0)
    checks.positive(lr, "lr")
    if optimizer not in _OPTIMIZERS:
        raise ConfigError(f"optimizer must be one of {_OPTIMIZERS}, got {optimizer!r}")
    checks.integer(max_halvings, "max_halvings", 0)
    checks.integer(per_segment, "per_segment", 1)
    checks.positive(noise, "noise", allow_zero=True)


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


def _default_max_step(a, b, n_segments: int, max_step) -> float:
    if max_step is None:
        return 0.5 * float((b - a).norm()) / n_segments
    return checks.positive(max_step, "max_step")


# --------------------------------------------------------------------------- NEB


def neb(
    f: Func,
    a: ArrayOrTensor,
    b: ArrayOrTensor,
    n_pivots: int = 10,
    steps: int = 500,
    lr: float = 0.01,
    spring: float = 1.0,
    climbing: bool = False,
    optimizer: str = "adam",
    generator: torch.Generator | int = 0,
    callback: Callable | None = None,
    max_step: float | None = None,
    project: Project | None = None,
    climb_start: int | None = None,
    tol: float = 1e-6,
    noise: float = 0.0,
    init: torch.Tensor | None = None,
    per_segment: int = 10,
    batch_size: int | None = None,
    max_halvings: int = 20,
    show_progress: bool | None = None,
) -> PathResult:
    """Maximum-f path between ``a`` and ``b`` by the nudged elastic band, for maximizing f.

    The interior pivots move along the NEB force for maximization (energy E = -f)::

        F_i = g_i - (g_i . tau_i) tau_i + k (|p_{i+1} - p_i| - |p_i - p_{i-1}|) tau_i

    with g_i = grad f(p_i) and tau_i the improved tangent of Henkelman & Jonsson (2000),
    which points toward the neighbour with the higher energy, i.e. the *lower* f. With
    ``climbing=True`` the interior pivot with the lowest f (the bottleneck of a
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
    lr : float
        Step size (Adam: roughly the per-coordinate step; SGD: multiplies the force).
    spring : float
        Spring constant k (units of f per squared unit of x); 0 switches springs off.
    climbing : bool
        Climbing image on the lowest pivot from iteration ``climb_start`` on.
    optimizer : {"adam", "sgd"}
    generator : torch.Generator or int, optional
        Randomness of ``noise`` (None: seed 0).
    callback : callable, optional
        ``callback(iteration, pivots, values)`` after each step; return True to stop. Do
        not modify the tensors in place.
    max_step : float, optional
        Cap on the Euclidean norm of each pivot's step; default half the straight-line
        pivot spacing, ``0.5 |b - a| / (P - 1)``.
    project : callable, optional
        Maps a ``(m, n)`` batch of pivots back into f's domain (e.g. ``lambda x:
        x.clamp_min(1e-8)`` for positive parameters); applied after every step. Default:
        identity.
    climb_start : int, optional
        Iteration at which climbing starts; default ``steps // 4`` (the band first settles
        near the maximum-f path).
    tol : float
        Stop when the largest interior force norm is at most ``tol`` (and climbing, if
        asked, has started).
    noise : float
        Standard deviation of Gaussian noise added to the starting interior pivots
        (breaks the symmetry of a straight start on symmetric functions).
    init : (P, n) tensor, optional
        Starting path instead of the straight line; its endpoint rows are replaced by
        ``a`` and ``b``.
    per_segment : int
        Dense resampling for :attr:`PathResult.dense_values` and the barrier.
    batch_size : int, optional
        Chunk size of the dense evaluation (memory for large n).
    max_halvings : int
        Step halvings allowed per iteration when f is not finite at a trial pivot.
    show_progress : bool, optional
        Progress bar; default: on a terminal (see :mod:`elbolab.progress`).

    Returns
    -------
    PathResult
        ``info`` holds ``halvings`` (step halvings taken) and ``max_force`` (final largest
        interior force norm).

    Raises
    ------
    ConfigError
        Bad arguments, or ``f`` does not return a differentiable ``(P,)`` tensor.
    NumericalError
        f or its gradient is NaN/inf at the start, at an endpoint, or at a pivot even
        after ``max_halvings`` step halvings; the message names the iteration.
    """
    a, b = _endpoints(a, b)
    if init is not None:
        n_pivots = int(torch.as_tensor(init).shape[0])
    _common_args(n_pivots, steps, lr, optimizer, max_halvings, per_segment, noise)
    spring = checks.positive(spring, "spring", allow_zero=True)
    tol = checks.positive(tol, "tol", allow_zero=True)
    if climb_start is None:
        climb_start = steps // 4
    climb_start = checks.integer(climb_start, "climb_start", 0)
    proj = _project_fn(project)
    path = _start_path(a, b, n_pivots, init, noise, generator, proj)
    cap = _default_max_step(a, b, n_pivots - 1, max_step)
    out = _relax(
        f,
        path,
        method="neb",
        steps=steps,
        lr=lr,
        spring=spring,
        alphas=None,
        climbing=bool(climbing),
        climb_start=climb_start,
        optimizer=optimizer,
        max_step=cap,
        project=proj,
        tol=tol,
        callback=callback,
        max_halvings=max_halvings,
        show_progress=show_progress,
    )
    return _finish(
        f,
        "neb",
        out["path"],
        out["values"],
        out["history"],
        per_segment,
        batch_size,
        n_iter=out["n_iter"],
        converged=out["converged"],
        climbing_index=out["climbing_index"],
        info={"halvings": out["halvings"], "max_force": out["max_force"], "spring": spring},
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


def autoneb(
    f: Func,
    a: ArrayOrTensor,
    b: ArrayOrTensor,
    n_pivots: int = 3,
    cycles: int = 5,
    steps: int = 200,
    lr: float = 0.01,
    insert_per_cycle: int = 2,
    max_pivots: int = 33,
    insert_tol: float = 0.0,
    climbing: bool = False,
    climb_steps: int | None = None,
    optimizer: str = "adam",
    generator: torch.Generator | int = 0,
    callback: Callable | None = None,
    max_step: float | None = None,
    project: Project | None = None,
    tol: float = 1e-6,
    noise: float = 0.0,
    per_segment: int = 10,
    batch_size: int | None = None,
    max_halvings: int = 20,
    show_progress: bool | None = None,
) -> PathResult:
    """AutoNEB (Draxler et al. 2018): relax a string, insert pivots where it dips, repeat.

    Start from the straight line with ``n_pivots`` pivots. Each cycle relaxes the path
    for ``steps`` iterations, then evaluates f on a dense piecewise-linear resampling
    (``per_segment`` points per segment). For each segment the *drop* is
    ``min(f(p_i), f(p_{i+1})) - min over the segment's interior dense points``; in the up
    to ``insert_per_cycle`` segments with the largest drop above ``insert_tol`` a new
    pivot is inserted at the lowest dense point (while the path has fewer than
    ``max_pivots``). The cycles stop early once no segment needs a pivot.

    No spring constant: instead of NEB springs the path is relaxed as a string (E, Ren &
    Vanden-Eijnden 2002). Each step moves the pivots along the component of grad f
    perpendicular to the improved tangent, then redistributes them along the new
    polyline to fixed arc-length fractions. The fractions are uniform at the start; an
    inserted pivot keeps the fraction of the place where it was inserted, and all
    fractions are re-read from the path at the start of each cycle, so the extra
    resolution stays where the path needed it. (Plain equal-arc-length redistribution
    would smear an inserted pivot away from the dip that called for it.)

    With ``climbing=True`` a final cycle of ``climb_steps`` iterations (default
    ``steps``) runs with the climbing image on the lowest pivot, which stays put during
    redistribution while the pivots on each side are spread over their side.

    Parameters
    ----------
    f, a, b, optimizer, generator, callback, project, tol, noise, per_segment, batch_size,
    max_halvings, show_progress
        As in :func:`neb`.
    n_pivots : int
        Starting pivots (>= 3, endpoints included).
    cycles : int
        Maximum number of relax-and-insert cycles.
    steps : int
        Iterations per cycle.
    lr : float
        Step size.
    insert_per_cycle : int
        Most pivots inserted after one cycle.
    max_pivots : int
        The path never grows beyond this many pivots.
    insert_tol : float
        A segment gets a new pivot only if its drop exceeds this (units of f).
    climbing : bool
        Run a final climbing-image cycle.
    climb_steps : int, optional
        Iterations of that cycle; default ``steps``.
    max_step : float, optional
        Per-pivot step cap; default ``0.5 |b - a| / (P - 1)`` for the current P.

    Returns
    -------
    PathResult
        ``history`` is that of the last cycle; ``info["cycle_histories"]`` has them all,
        ``info["n_pivots_per_cycle"]`` the path size during each cycle,
        ``info["inserted"]`` the number inserted after each cycle.
    """
    a, b = _endpoints(a, b)
    _common_args(n_pivots, steps, lr, optimizer, max_halvings, per_segment, noise)
    checks.integer(cycles, "cycles", 1)
    checks.integer(insert_per_cycle, "insert_per_cycle", 0)
    checks.integer(max_pivots, "max_pivots", n_pivots)
    insert_tol = checks.positive(insert_tol, "insert_tol", allow_zero=True)
    tol = checks.positive(tol, "tol", allow_zero=True)
    climb_steps = steps if climb_steps is None else checks.integer(climb_steps, "climb_steps", 0)
    if max_step is not None:
        checks.positive(max_step, "max_step")
    proj = _project_fn(project)
    path = _start_path(a, b, n_pivots, None, noise, generator, proj)

    histories, sizes, inserted = [], [], []
    total_iter = halvings = 0

    def run(path, n_steps, climb):
        nonlocal total_iter, halvings
        seg = (path[1:] - path[:-1]).norm(dim=1)
        s = torch.cat([seg.new_zeros(1), torch.cumsum(seg, 0)])
        alphas = s / s[-1]
        alphas[0], alphas[-1] = 0.0, 1.0
        sizes.append(int(path.shape[0]))
        out = _relax(
            f,
            path,
            method="autoneb",
            steps=n_steps,
            lr=lr,
            spring=0.0,
            alphas=alphas,
            climbing=climb,
            climb_start=0,
            optimizer=optimizer,
            max_step=_default_max_step(a, b, path.shape[0] - 1, max_step),
            project=proj,
            tol=tol,
            callback=callback,
            max_halvings=max_halvings,
            show_progress=show_progress,
            iteration_offset=total_iter,
        )
        histories.append(out["history"])
        total_iter += out["n_iter"]
        halvings += out["halvings"]
        return out

    for c in range(cycles):
        out = run(path, steps, False)
        path, values = out["path"], out["values"]
        room = min(insert_per_cycle, max_pivots - path.shape[0])
        if c == cycles - 1 or per_segment == 1 or room <= 0:
            break
        # Insertion (Draxler et al. 2018, Alg. 1): new pivots at the lowest dense points
        # of the segments that dip most below their pivots.
        dense = dense_values(f, path, per_segment, batch_size)
        drop, points, _ = _insertions(path, values, dense, per_segment)
        candidates = torch.nonzero(torch.isfinite(drop) & (drop > insert_tol)).flatten()
        chosen = candidates[torch.argsort(drop[candidates], descending=True)[:room]]
        inserted.append(int(chosen.numel()))
        if chosen.numel() == 0:
            break
        # Segment i's new pivot goes between rows i and i + 1.
        rows = torch.arange(path.shape[0], dtype=path.dtype)
        keys = torch.cat([rows, chosen.to(path.dtype) + 0.5])
        path = torch.cat([path, points[chosen]])[torch.argsort(keys)]
    if climbing:
        out = run(path, climb_steps, True)
    return _finish(
        f,
        "autoneb",
        out["path"],
        out["values"],
        histories[-1],
        per_segment,
        batch_size,
        n_iter=total_iter,
        converged=out["converged"],
        climbing_index=out["climbing_index"],
        info={
            "halvings": halvings,
            "max_force": out["max_force"],
            "cycle_histories": histories,
            "n_pivots_per_cycle": sizes,
            "inserted": inserted,
        },
    )
