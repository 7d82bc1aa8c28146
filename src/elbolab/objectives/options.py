"""Typed training objectives: which bound a model trains on, and with which settings.

A study names a model's objective with one of these records instead of a dict of string
keys; its :meth:`loss` has the ``loss_fn(model, x, generator)`` signature of
:func:`elbolab.models.trainer.train`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .elbo import elbo_loss
from .iwae import iwae_loss

__all__ = ["ELBOObjective", "IWAEObjective"]


@dataclass(frozen=True)
class ELBOObjective:
    """The beta-ELBO, reconstruction - beta * KL (:func:`elbolab.objectives.elbo`);
    beta = 1 is the ELBO. The trainer's KL warm-up applies to it."""

    beta: float = 1.0

    def loss(
        self,
        model: torch.nn.Module,
        x: torch.Tensor,
        generator: torch.Generator | int,
        beta: float = 1.0,
    ) -> torch.Tensor:
        """Negative beta-ELBO with KL weight ``beta * self.beta``: the trainer's KL warm-up
        passes its beta in [0, 1], which scales this objective's own."""
        return elbo_loss(model, x, generator, beta=beta * self.beta)


@dataclass(frozen=True)
class IWAEObjective:
    """The importance-weighted bound with ``k`` samples (:func:`elbolab.objectives.iwae`),
    with the DReG gradient for the encoder when ``dreg``. No KL warm-up applies."""

    k: int
    dreg: bool = True

    def loss(
        self, model: torch.nn.Module, x: torch.Tensor, generator: torch.Generator | int
    ) -> torch.Tensor:
        """Negative IWAE-k bound (its gradient DReG for the encoder when ``dreg``)."""
        return iwae_loss(model, x, generator, k=self.k, dreg=self.dreg)
