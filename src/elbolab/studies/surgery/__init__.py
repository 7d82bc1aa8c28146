"""Study ``surgery``: how a VAE's KL term splits, for latent sizes 2, 10 and 20.

Hoffman & Johnson ("ELBO surgery", 2016) write the average KL of the ELBO as

    (1/N) sum_n KL(q(z | x_n) || p(z)) = I_q(n; z) + KL(q(z) || p(z)),

with q(z) = (1/N) sum_n q(z | x_n) the aggregate posterior over the N training points
and I_q(n; z) <= log N the index-code mutual information. For each latent size this
study trains a VAE on the fixed binarized MNIST (50,000 training images) and reports
the three terms over all N points (no minibatch approximation), with Monte Carlo
standard errors, next to the reconstruction, the ELBO, the importance-sampled test
log-likelihood and the active units (nats per datum throughout).

Layout: :mod:`.config` (settings and presets), :mod:`.pipeline` (the models trained
and evaluated), :mod:`.metrics` (metrics), :mod:`.claims` (the claims), :mod:`.render` (the report).
"""

from __future__ import annotations

from .claims import claims
from .config import PRESETS, Config
from .pipeline import prepare, run
from .render import render

NAME = "surgery"
DESCRIPTION = "ELBO surgery of VAEs with latent sizes 2, 10, 20 on binarized MNIST"

__all__ = ["NAME", "DESCRIPTION", "Config", "PRESETS", "prepare", "run", "claims", "render"]
