"""Study ``zoo``: VAE, beta-VAE, IWAE and VampPrior on one footing on binarized MNIST.

Every model has the same encoder and decoder (MLPs, Bernoulli likelihood, diagonal
Gaussian posterior) and is trained on the same 50,000 images with the same seeds; only
the objective or the prior differs. One table gives the test negative log-likelihood
(importance sampling, k = 5000 by default), the test ELBO and KL, the surgery terms and
the active units next to the published test NLLs (``PUBLISHED``: VAE 89.9, IWAE k = 50
87.1, VampPrior 85.57 nats), which were measured with other architectures, training
lengths, binarizations and estimators (each entry says which).

In ``default`` the IWAE starts from the trained VAE's parameters and continues with the
IWAE-50 objective (DReG gradient for the encoder), because training it from scratch costs
about 25 times a VAE per epoch on 2 cores; ``paper`` trains every model from scratch.

Layout: :mod:`.config` (settings and presets), :mod:`.published` (the papers' NLLs),
:mod:`.lineup` (the models), :mod:`.pipeline` (the models trained and evaluated),
:mod:`.metrics` (metrics), :mod:`.claims` (the claims), :mod:`.render` (the report).
"""

from __future__ import annotations

from .claims import claims
from .config import PRESETS, Config
from .lineup import specs
from .pipeline import prepare, run
from .published import PUBLISHED
from .render import render

NAME = "zoo"
DESCRIPTION = "VAE, beta-VAE, IWAE and VampPrior on binarized MNIST against published NLLs"

__all__ = [
    "NAME",
    "DESCRIPTION",
    "Config",
    "PRESETS",
    "PUBLISHED",
    "specs",
    "prepare",
    "run",
    "claims",
    "render",
]
