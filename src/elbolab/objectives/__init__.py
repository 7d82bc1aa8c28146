"""Objectives: the ELBO and beta-ELBO, the importance-weighted bound and DReG.

Every ``elbo*`` / ``iwae*`` value is a bound on log p(x) in nats, summed over the batch
(``*_per_datum`` keys hold the per-datum values); ``*_loss`` is its negative.
"""

from .elbo import elbo, elbo_loss
from .iwae import iwae, iwae_loss

__all__ = ["elbo", "elbo_loss", "iwae", "iwae_loss"]
