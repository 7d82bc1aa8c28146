"""Objectives: the ELBO and beta-ELBO, the importance-weighted bound and DReG.

Every ``elbo*`` / ``iwae*`` value is a bound on log p(x) in nats, summed over the batch
(``*_per_datum`` keys hold the per-datum values); ``*_loss`` is its negative.
:class:`ELBOObjective` and :class:`IWAEObjective` name a training objective and its
settings. :mod:`elbolab.objectives.protocol` holds the checks of a model and its data
that the objectives and the diagnostics share.
"""

from .elbo import elbo, elbo_loss
from .iwae import iwae, iwae_loss
from .options import ELBOObjective, IWAEObjective

__all__ = ["ELBOObjective", "IWAEObjective", "elbo", "elbo_loss", "iwae", "iwae_loss"]
