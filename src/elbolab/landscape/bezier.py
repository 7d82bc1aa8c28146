"""Bezier-curve paths between two maxima (Garipov et al. 2018), for a function we maximize.

A Bezier curve of degree d with control points theta_0 = a, theta_1..theta_{d-1} (learned)
and theta_d = b::

    B(t) = sum_k C(d, k) t^k (1 - t)^(d - k) theta_k,     t in [0, 1]

passes through a at t = 0 and b at t = 1. The interior control points maximize
E_{t ~ U(0, 1)}[f(B(t))] by stochastic gradient ascent; each step draws ``n_t`` values of
t from the caller's generator and evaluates f at all of them in one batched call.

Reference: T. Garipov, P. Izmailov, D. Podoprikhin, D. Vetrov, A. G. Wilson (2018).
Loss surfaces, mode connectivity, and fast ensembling of DNNs. NeurIPS.
"""

from __future__ import annotations

import math
from collections.abc import Callable
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
    batched_values,
    domain_projection,
    endpoints,
    progress_disabled,
    settings_record,
    value_and_grad,
)
from .paths import PathResult, barrier, path_length

if TYPE_CHECKING:
    from .._types import ArrayOrTensor

__all__ = ["bernstein", "bezier", "bezier_points"]

_SAMPLING = ("stratified", "uniform")


def bernstein(t: torch.Tensor, degree: int) -> torch.Tensor:
    """Bernstein basis: ``W[j, k] = C(d, k) t_j^k (1 - t_j)^(d - k)``.

    Parameters
    ----------
    t : (m,) tensor
        Curve parameters in [0, 1].
    degree : int
        d >= 1.

    Returns
    -------
    W : (m, d + 1) tensor
        Rows sum to 1; row j at t = 0 is (1, 0, ..., 0) and at t = 1 is (0, ..., 0, 1).
    """
    degree = checks.integer(degree, "degree", 1)
    t = torch.as_tensor(t)
    k = torch.arange(degree + 1, dtype=t.dtype, device=t.device)
    binom = torch.tensor([math.comb(degree, i) for i in range(degree + 1)], dtype=t.dtype)
    return binom.to(t.device) * t[:, None] ** k * (1 - t[:, None]) ** (degree - k)


def bezier_points(control: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Points B(t) of the Bezier curve with control points ``control``.

    Parameters
    ----------
    control : (d + 1, n) tensor
        theta_0 .. theta_d.
    t : (m,) tensor

    Returns
    -------
    points : (m, n) tensor
        Rows at t = 0 and t = 1 are exactly theta_0 and theta_d.
    """
    control = torch.as_tensor(control)
    t = torch.as_tensor(t, dtype=control.dtype, device=control.device)
    pts = bernstein(t, control.shape[0] - 1) @ control
    pts[t == 0] = control[0]
    pts[t == 1] = control[-1]
    return pts


def _sample_t(gen: torch.Generator, n_t: int, sampling: str, like: torch.Tensor) -> torch.Tensor:
    u = torch.rand(n_t, generator=gen, dtype=like.dtype, device=like.device)
    if sampling == "uniform":
        return torch.sort(u).values
    # One draw per stratum [j/n_t, (j+1)/n_t): still t ~ U(0, 1) marginally, so the
    # average is an unbiased estimate of E_t f(B(t)), with lower variance.
    return (torch.arange(n_t, dtype=like.dtype, device=like.device) + u) / n_t


def _curve_candidate(f: Func, theta: torch.Tensor, w: torch.Tensor, moved) -> Candidate:
    """The control points with the interior ones moved, and f on the curve at the sampled t."""
    trial = theta.clone()
    trial[1:-1] = moved
    return candidate(trial, *value_and_grad(f, w @ trial))


def _curve_left_domain(
    f: Func, theta: torch.Tensor, w: torch.Tensor, it: int, trial: Candidate, h: int
) -> str | None:
    """A message when the current curve itself is not finite at the new t."""
    if h == 0 and bad_rows(*value_and_grad(f, w @ theta)).any():
        # No step size can help: the current curve itself is not finite at the newly
        # drawn t (it left f's domain between earlier samples).
        return (
            f"Bezier stopped at iteration {it}: f or its gradient is NaN/inf on the current "
            f"curve at newly sampled t; the curve leaves f's domain between control points "
            f"(pass project= to keep the control points in a convex domain, which keeps the "
            f"whole curve inside it)"
        )
    return None


def _curve_not_finite(it: int, max_halvings: int, trial: Candidate) -> str:
    return (
        f"Bezier stopped at iteration {it}: f or its gradient is NaN/inf on the curve even "
        f"after {max_halvings} step halvings (pass project= to keep the control points "
        f"inside f's domain, or check f)"
    )


def bezier(
    f: Func,
    a: ArrayOrTensor,
    b: ArrayOrTensor,
    degree: int = 2,
    steps: int = 500,
    *,
    optimizer: Optimizer | None = None,
    n_t: int = 16,
    sampling: str = "stratified",
    generator: torch.Generator | int = 0,
    noise: float = 0.0,
    project: Project | None = None,
    callback: Callable | None = None,
    n_pivots: int = 21,
    per_segment: int = 10,
    batch_size: int | None = None,
    show_progress: bool | None = None,
) -> PathResult:
    """Bezier curve from ``a`` to ``b`` maximizing the average of f along it.

    Parameters
    ----------
    f : callable
        ``f((m, n) tensor) -> (m,) tensor``, row by row, differentiable by autograd.
    a, b : (n,) tensor
        Endpoints (fixed control points theta_0, theta_d).
    degree : int
        d >= 2 (2: one learned control point, the quadratic curve of Garipov et al.;
        3: two).
    steps : int
        Stochastic gradient steps (all are run: the objective is noisy).
    optimizer : Optimizer, optional
        Update rule, step size, cap on the norm of each control point's step (default
        ``0.5 |b - a| / degree``) and step halvings allowed per step when f is not finite
        at a sampled point; default ``Optimizer()`` (Adam, lr 0.01).
    n_t : int
        Values of t per step, evaluated in one batch.
    sampling : {"stratified", "uniform"}
        ``"stratified"``: one t uniform in each of ``n_t`` equal strata (unbiased, less
        noisy); ``"uniform"``: ``n_t`` independent U(0, 1) draws.
    generator : torch.Generator or int
        Source of the t samples and of ``noise``.
    noise : float
        Standard deviation of Gaussian noise on the starting interior control points
        (which otherwise lie evenly on the straight segment).
    project : callable, optional
        Maps control points back into f's domain after each step. For a convex domain the
        whole curve then stays inside it (B(t) is a convex combination of the control
        points).
    callback : callable, optional
        ``callback(iteration, control_points, values_at_sampled_t)``; return True to stop.
    n_pivots : int
        Points of the returned path, B(t) at ``t = linspace(0, 1, n_pivots)``.
    per_segment : int
        Density of the curve evaluation for the barrier: ``(n_pivots - 1) * per_segment +
        1`` evenly spaced t.
    batch_size : int, optional
        Chunk size of the final dense evaluation.
    show_progress : bool, optional

    Returns
    -------
    PathResult
        ``history`` is ``(steps, n_t)`` (values at the sampled t of each step, sorted by
        t); ``dense_values`` lie on the curve itself; ``info["control_points"]`` is the
        ``(d + 1, n)`` tensor, ``info["objective"]`` the per-step mean of f.

    Raises
    ------
    ConfigError
        Bad arguments.
    NumericalError
        f or its gradient is NaN/inf at the starting curve, or at a trial step even after
        ``optimizer.max_halvings`` halvings, or on the final curve; the message names the iteration.
    """
    a, b = endpoints(a, b)
    degree = checks.integer(degree, "degree", 2)
    checks.integer(steps, "steps", 0)
    optimizer = settings_record(optimizer, Optimizer, "optimizer")
    n_t = checks.integer(n_t, "n_t", 1)
    n_pivots = checks.integer(n_pivots, "n_pivots", 2)
    if sampling not in _SAMPLING:
        raise ConfigError(f"sampling must be one of {_SAMPLING}, got {sampling!r}")
    noise = checks.positive(noise, "noise", allow_zero=True)
    per_segment = checks.integer(per_segment, "per_segment", 1)
    if batch_size is not None:
        checks.integer(batch_size, "batch_size", 1)
    cap = 0.5 * float((b - a).norm()) / degree if optimizer.max_step is None else optimizer.max_step
    proj = domain_projection(project)
    gen = checks.torch_generator(generator, "generator", device=a.device)

    s = torch.linspace(0.0, 1.0, degree + 1, dtype=a.dtype, device=a.device)[:, None]
    theta = (1 - s) * a + s * b
    theta[0], theta[-1] = a, b
    if noise > 0:
        eps = torch.randn(degree - 1, a.shape[0], generator=gen, dtype=a.dtype, device=a.device)
        theta[1:-1] += noise * eps
    theta[1:-1] = proj(theta[1:-1])

    t = _sample_t(gen, n_t, sampling, a)
    w = bernstein(t, degree)
    values, grad = value_and_grad(f, w @ theta)
    if bad_rows(values, grad).any():
        raise NumericalError(
            "Bezier: iteration 0 (starting curve): f or its gradient is NaN/inf at sampled "
            "points of the straight segment; start from points where f is finite"
        )
    ascent = GuardedAscent(optimizer, theta[1:-1], cap, proj)
    history, objective = [], []
    n_iter = 0
    disable = progress_disabled(show_progress)
    with progress(total=steps, desc="bezier", unit="step", disable=disable, leave=False) as bar:
        for it in range(1, steps + 1):
            # Chain rule by hand: d/dtheta_k mean_j f(B(t_j)) = mean_j W[j, k] grad f(B(t_j)).
            force = w[:, 1:-1].T @ grad / n_t
            t = _sample_t(gen, n_t, sampling, a)
            w = bernstein(t, degree)
            # A bad point of the curve does not say which control point to blame: every
            # step is halved.
            trial = ascent.step(
                theta[1:-1],
                force,
                partial(_curve_candidate, f, theta, w),
                halve=None,
                hopeless=partial(_curve_left_domain, f, theta, w, it),
                exhausted=partial(_curve_not_finite, it, optimizer.max_halvings),
            )
            theta, values, grad = trial.state, trial.values, trial.grad
            history.append(values)
            objective.append(float(values.mean()))
            n_iter = it
            bar.update(1)
            if it % 50 == 0:
                bar.set_postfix(mean_f=f"{objective[-1]:.4g}", refresh=False)
            if callback is not None and callback(it, theta, values):
                break

    # The pivots are every per_segment-th dense point, so their values are shared.
    t_dense = torch.linspace(0.0, 1.0, (n_pivots - 1) * per_segment + 1, dtype=a.dtype)
    dense_pts = bezier_points(theta, t_dense.to(a.device))
    dense = batched_values(f, dense_pts, batch_size)
    pivots, pivot_values = dense_pts[::per_segment].clone(), dense[::per_segment].clone()
    if not torch.isfinite(dense).all():
        raise NumericalError(
            f"Bezier: after iteration {n_iter} f is NaN/inf on the final curve (its domain is "
            f"not convex along the curve, or project= is missing)"
        )
    seg = (dense_pts[1:] - dense_pts[:-1]).norm(dim=1)
    arc = torch.cat([seg.new_zeros(1), torch.cumsum(seg, 0)])
    f_a, f_b = float(dense[0]), float(dense[-1])
    hist = torch.stack(history) if history else values.new_zeros(0, n_t)
    return PathResult(
        pivots=pivots,
        values=pivot_values,
        history=hist,
        dense_values=dense,
        dense_positions=arc / arc[-1],
        barrier=barrier(dense, f_a, f_b),
        length=path_length(pivots),
        f_a=f_a,
        f_b=f_b,
        method="bezier",
        n_iter=n_iter,
        converged=False,
        info={
            "control_points": theta,
            "objective": torch.tensor(objective, dtype=a.dtype),
            "halvings": ascent.halvings,
            "degree": degree,
            "curve_length": float(arc[-1]),
        },
    )
