"""What a caller gives the path optimizers, checked: the function f, the endpoints, the
projection into f's domain; and f evaluated on a batch of points.

f maps a ``(P, n)`` batch to ``(P,)`` values, row by row, differentiably by autograd. A
row where f or its gradient is NaN/inf is a *bad row*; where f refuses to return a
non-finite value (it raises :class:`~elbolab.errors.NumericalError`, as
:class:`~elbolab.landscape.LDAObjective` does) the rows it refused become bad rows
too, so that the optimizers can halve their step instead of stopping.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeVar

import torch

from .. import checks
from ..errors import ConfigError, NumericalError

__all__ = [
    "Func",
    "Project",
    "bad_rows",
    "batched_values",
    "check_function",
    "domain_projection",
    "endpoints",
    "progress_disabled",
    "settings_record",
    "value_and_grad",
]

Func = Callable[[torch.Tensor], torch.Tensor]
Project = Callable[[torch.Tensor], torch.Tensor]
R = TypeVar("R")


def endpoints(a, b) -> tuple[torch.Tensor, torch.Tensor]:
    """``a`` and ``b`` as detached floating 1-D tensors of one length, finite and distinct."""
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


def check_function(f) -> None:
    """ConfigError unless ``f`` is callable."""
    if not callable(f):
        raise ConfigError(
            f"f must be a function mapping a (P, n) batch to (P,) values, got {type(f).__name__}"
        )


def domain_projection(project: Project | None) -> Project:
    """``project`` checked on every call (same shape out as in, detached); None: identity."""
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


def settings_record(value: R | None, record: type[R], name: str) -> R:
    """``value`` if it is a ``record`` (one of the settings records such as
    :class:`~elbolab.landscape.Optimizer`), the record's defaults for None, else a
    ConfigError naming the argument ``name``."""
    if value is None:
        return record()
    if not isinstance(value, record):
        kind = record.__name__
        raise ConfigError(f"{name} must be a {kind} record such as {kind}(), got {value!r}")
    return value


def progress_disabled(show_progress: bool | None) -> bool | None:
    """``disable`` for :func:`elbolab.progress.progress` from a ``show_progress`` argument."""
    return None if show_progress is None else not show_progress


def _checked_values(vals, rows: int) -> torch.Tensor:
    if not isinstance(vals, torch.Tensor) or tuple(vals.shape) != (rows,):
        got = tuple(vals.shape) if isinstance(vals, torch.Tensor) else type(vals).__name__
        raise ConfigError(
            f"f must map a (P, n) batch to a tensor of shape (P,); for P={rows} it returned {got}"
        )
    return vals


def value_and_grad(f: Func, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """f and its gradient at every row of ``x`` in one batched call.

    f acts row by row, so the gradient of ``f(x).sum()`` with respect to ``x`` has row i
    equal to grad f(x_i). Rows f refused (NumericalError) come back as NaN.
    """
    check_function(f)
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        try:
            vals = _checked_values(f(x), x.shape[0])
        except NumericalError:
            # f refused to return a non-finite value (LDAObjective does). To the path
            # tools the rows it refused are non-finite rows, for step halving to handle:
            # find them one row at a time (a rare path, so its cost does not matter).
            if x.shape[0] == 1:
                return x.new_full((1,), math.nan).detach(), torch.full_like(x, math.nan)
            rows = [value_and_grad(f, x[i : i + 1]) for i in range(x.shape[0])]
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


def batched_values(f: Func, x: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
    """f at every row of ``x`` without gradients, in chunks of ``batch_size`` rows.

    Rows f refused (NumericalError) come back as NaN.
    """
    check_function(f)
    rows = x.shape[0]
    step = rows if batch_size is None else batch_size
    out = []
    with torch.no_grad():
        for start in range(0, rows, step):
            chunk = x[start : start + step]
            try:
                out.append(_checked_values(f(chunk), chunk.shape[0]).detach())
            except NumericalError:  # as in value_and_grad: the rows f refused are NaN
                if chunk.shape[0] == 1:
                    out.append(chunk.new_full((1,), math.nan))
                else:
                    out.append(batched_values(f, chunk, batch_size=1))
    return torch.cat(out) if out else x.new_zeros(0)


def bad_rows(vals: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """``(P,)`` mask of the rows where the value or any gradient entry is NaN/inf."""
    # A finite row sum proves a row finite without a full-size boolean temporary (rows
    # may be millions long); rows whose sum is not finite get the exact test (the sum of
    # finite entries can overflow).
    bad = ~(torch.isfinite(vals) & torch.isfinite(grad.sum(dim=1)))
    rows = torch.nonzero(bad & torch.isfinite(vals)).flatten()
    if rows.numel():
        bad[rows] = ~torch.isfinite(grad[rows]).all(dim=1)
    return bad
