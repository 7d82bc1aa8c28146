"""The one gradient-step loop of torch optimizers (Adam and the like) that elbolab's fits
share: zero the gradients, back-propagate the step's loss, step the optimizers and
their learning-rate schedules, and evaluate at regular steps, which may stop the loop.

It sits on the ground floor so that models (:func:`elbolab.models.fit_linear_vae`) and
studies (the ``fkl`` study's fits) use the same loop. Each caller keeps what differs
in its closures: how a step's loss is drawn (a minibatch, simulated pairs, Monte Carlo
noise) and what an evaluation records.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from . import checks
from .progress import progress

__all__ = ["descend"]


def descend(
    loss: Callable[[int], torch.Tensor],
    optimizers: torch.optim.Optimizer | Sequence[torch.optim.Optimizer],
    steps: int,
    *,
    schedulers: Sequence[torch.optim.lr_scheduler.LRScheduler] = (),
    evaluate: Callable[[int], bool | None] | None = None,
    every: int = 1,
    desc: str | None = None,
) -> int:
    """Take gradient steps 1, ..., ``steps`` on ``loss(step)``.

    A step zeroes the gradients of every optimizer, back-propagates ``loss(step)`` (a
    scalar tensor), steps every optimizer and then every scheduler. After step s, when s
    is a multiple of ``every`` or the last step, ``evaluate(s)`` is called; a true result
    stops the loop there.

    Several optimizers train several models on one loss: give the sum of their losses
    (with disjoint parameters each gets exactly its own gradient).

    Parameters
    ----------
    loss : callable
        ``step -> loss``, called once per step with the 1-based step number.
    optimizers : torch.optim.Optimizer or sequence of them
    steps : int
        Steps at most (>= 1).
    schedulers : sequence of learning-rate schedulers
        Stepped after the optimizers, once per step.
    evaluate : callable, optional
        ``step -> bool or None``; True stops the loop.
    every : int
        Steps between evaluations (>= 1).
    desc : str, optional
        Label of a progress bar over the steps (:func:`elbolab.progress.progress`); no bar
        without one.

    Returns
    -------
    int
        The number of steps taken.
    """
    steps = checks.integer(steps, "steps", 1)
    every = checks.integer(every, "every", 1)
    if isinstance(optimizers, torch.optim.Optimizer):
        optimizers = (optimizers,)
    # No label, no bar; with one, the environment decides (elbolab.progress).
    hide = True if desc is None else None
    with progress(total=steps, desc=desc or "", unit="step", leave=False, disable=hide) as bar:
        for step in range(1, steps + 1):
            for opt in optimizers:
                opt.zero_grad(set_to_none=True)
            loss(step).backward()
            for opt in optimizers:
                opt.step()
            for sched in schedulers:
                sched.step()
            bar.update(1)
            if evaluate is not None and (step % every == 0 or step == steps) and evaluate(step):
                return step
    return steps
