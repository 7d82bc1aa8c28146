"""The guarded ascent step that NEB, AutoNEB and Bezier share.

Each optimizer turns a force on some rows (interior pivots, or interior control points)
into a step with :class:`GuardedAscent`: an Adam or plain gradient-ascent update, capped
per row at ``max_step``, projected into f's domain, and halved while f or its gradient
is NaN/inf at the candidate it leads to. The options of that step are the
:class:`Optimizer` record.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch

from .. import checks
from ..errors import ConfigError, NumericalError
from .inputs import Project, bad_rows

__all__ = [
    "KINDS",
    "Candidate",
    "GuardedAscent",
    "Optimizer",
    "candidate",
    "cap_norm",
]

KINDS = ("adam", "sgd")


@dataclass(frozen=True)
class Optimizer:
    """How the path optimizers step: the update rule and its guards.

    Attributes
    ----------
    kind : {"adam", "sgd"}
        Adam (Kingma & Ba 2015, default moments 0.9 and 0.999) or plain gradient ascent.
    lr : float
        Step size (Adam: roughly the per-coordinate step; SGD: multiplies the force).
    max_step : float, optional
        Cap on the Euclidean norm of each moving row's step; default set by the method
        (NEB and AutoNEB: half the straight-line pivot spacing; Bezier: ``0.5 |b - a| /
        degree``).
    max_halvings : int
        Step halvings allowed per iteration while f or its gradient is NaN/inf at the
        candidate; one more failure stops the run with a NumericalError.
    """

    kind: str = "adam"
    lr: float = 0.01
    max_step: float | None = None
    max_halvings: int = 20

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"optimizer kind must be one of {KINDS}, got {self.kind!r}")
        checks.positive(self.lr, "lr")
        if self.max_step is not None:
            object.__setattr__(self, "max_step", checks.positive(self.max_step, "max_step"))
        checks.integer(self.max_halvings, "max_halvings", 0)


def cap_norm(step: torch.Tensor, max_step: float) -> torch.Tensor:
    """Scale each row of ``step`` down to Euclidean norm at most ``max_step``."""
    norms = step.norm(dim=-1, keepdim=True)
    return step * torch.where(norms > max_step, max_step / norms, torch.ones_like(norms))


class Candidate(NamedTuple):
    """Where one trial step leads: the full state and f and grad f at its points.

    ``state`` is what the method keeps (the whole path, or the control points);
    ``values`` and ``grad`` are f and grad f at the points f was evaluated at (the
    pivots, or the curve at the sampled t); ``bad`` marks those points where either is
    NaN/inf.
    """

    state: torch.Tensor
    values: torch.Tensor
    grad: torch.Tensor
    bad: torch.Tensor


def candidate(state: torch.Tensor, values: torch.Tensor, grad: torch.Tensor) -> Candidate:
    """A :class:`Candidate` with its bad points marked."""
    return Candidate(state, values, grad, bad_rows(values, grad))


class GuardedAscent:
    """Adam or plain gradient ascent on a force, capped, projected and halved until finite.

    Written out rather than ``torch.optim`` so the proposed step can be capped and
    backtracked before it is taken. The update is vectorized over the moving rows; the
    moments of Adam persist from one :meth:`step` to the next. ``halvings`` counts the
    step halvings taken so far.
    """

    def __init__(self, optimizer: Optimizer, like: torch.Tensor, max_step: float, project: Project):
        self.kind, self.lr = optimizer.kind, optimizer.lr
        self.max_halvings = optimizer.max_halvings
        self.max_step, self.project = max_step, project
        self.halvings = 0
        self.t = 0
        self.m = torch.zeros_like(like)
        self.v = torch.zeros_like(like)
        self.beta1, self.beta2, self.eps = 0.9, 0.999, 1e-8

    def update(self, force: torch.Tensor) -> torch.Tensor:
        """The uncapped step of the update rule for ``force`` (advances Adam's moments)."""
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

    def step(
        self,
        x: torch.Tensor,
        force: torch.Tensor,
        evaluate: Callable[[torch.Tensor], Candidate],
        *,
        halve: Callable[[torch.Tensor], torch.Tensor] | None,
        hopeless: Callable[[Candidate, int], str | None],
        exhausted: Callable[[Candidate], str],
    ) -> Candidate:
        """Move the rows ``x`` along ``force`` to the first candidate where f is finite.

        Parameters
        ----------
        x : (m, n) tensor
            The moving rows.
        force : (m, n) tensor
            Ascent direction of each row.
        evaluate : callable
            ``evaluate(moved)`` builds the candidate from the moved, projected rows.
        halve : callable or None
            ``halve(bad)``: the ``(m,)`` mask of rows whose step is halved when the
            candidate has bad points ``bad``; None: every row's (when rows interact).
        hopeless : callable
            ``hopeless(candidate, h)`` before the h-th halving: a message when no step
            size can help, else None.
        exhausted : callable
            ``exhausted(candidate)``: the message after ``max_halvings`` halvings.

        Raises
        ------
        NumericalError
            With the message of ``hopeless`` or ``exhausted``.
        """
        step = cap_norm(self.update(force), self.max_step)
        scale = torch.ones(x.shape[0], 1, dtype=x.dtype, device=x.device)
        h = 0
        while True:
            trial = evaluate(self.project(torch.addcmul(x, scale, step)))
            if not trial.bad.any():
                return trial
            message = hopeless(trial, h)
            if message is None and h == self.max_halvings:
                message = exhausted(trial)
            if message is not None:
                raise NumericalError(message)
            self.halvings += 1
            h += 1
            if halve is None:
                scale *= 0.5
            else:
                scale[halve(trial.bad)] *= 0.5
