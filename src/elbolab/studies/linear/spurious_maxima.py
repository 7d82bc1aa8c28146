"""Part 5: does the ELBO have spurious local maxima?

The linear VAE's final analytic ELBO from ``n_inits`` random starts (L-BFGS, as in
part 1), against the same protocol on the deep Gaussian VAE of part 4: for the linear
VAE every start should end at the pPCA maximum; the deep VAE's spread mixes local
optima with unfinished training and Monte Carlo error.
"""

from __future__ import annotations

import numpy as np

from ...models import PPCA
from .collapse import train_deep_vae
from .config import Config
from .ppca_maximum import lbfgs_fit


def linear_random_starts(cfg: Config, x: np.ndarray) -> dict:
    """Part 5: the linear VAE's final analytic ELBO from ``n_inits`` random starts."""
    values = []
    for i in range(cfg.n_inits):
        _, _, value = lbfgs_fit(cfg, x, cfg.inits_latent, cfg.seed + 1000 + i)
        values.append(value)
    return {
        "latent": cfg.inits_latent,
        "ppca_log_likelihood": PPCA(cfg.inits_latent).fit(x).score(x),
        "elbo": values,
        "spread": max(values) - min(values),
    }


def deep_random_start(cfg: Config, x_train, x_eval, index: int) -> float:
    """Part 5, one unit: the held-out ELBO (nats per datum) of a deep Gaussian VAE
    (sigma^2 learned from 1) after ``deep_init_epochs`` epochs from random start
    ``index``."""
    _, _, terms, x_eval = train_deep_vae(
        cfg,
        x_train,
        x_eval,
        1.0,
        True,
        cfg.seed + 500 + index,
        cfg.deep_init_epochs,
        validate=False,
        progress=False,
    )
    return float(terms["elbo"]) / len(x_eval)
