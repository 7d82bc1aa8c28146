"""Study ``linear``: the linear VAE against probabilistic PCA, and collapse against noise.

Lucas, Tucker, Grosse & Norouzi, "Don't Blame the ELBO! A Linear VAE Perspective on
Posterior Collapse" (NeurIPS 2019) show that a linear VAE with a diagonal encoder
covariance reaches the exact maximum likelihood of pPCA, and that in deep Gaussian VAEs
the observation noise sigma^2 governs posterior collapse. Six parts:

1. MNIST (first ``n_data`` training images, pixels in [0, 1]), q = ``latent``: the pPCA
   exact log-likelihood against the ELBO of linear VAEs trained from random starts on
   the analytic ELBO (L-BFGS, :func:`~elbolab.models.linear_vae.fit_linear_vae_lbfgs`:
   deterministic and smooth over full-batch data) and on the stochastic
   (reparameterized) ELBO (its own optimizer, Adam); Gram matrices of the decoders.
2. Exact log-likelihood and linear-VAE ELBO (L-BFGS) against latent size, sigma^2
   learned and sigma^2 fixed at ``fixed_sigma2``.
3. Linear decoder behind three encoders (linear, deep linear, MLP) on dequantized
   logit-space MNIST, against the exact pPCA log-likelihood.
4. Deep Gaussian VAEs for several initial sigma^2, learned and fixed: final ELBO,
   (epsilon, delta)-collapse curve and active units.
5. No spurious local maxima: the final ELBO of the linear VAE from ``n_inits`` random
   starts (q = ``inits_latent``), against the same protocol on the deep VAE of part 4.
6. ELBO surgery (Hoffman & Johnson 2016) of the exact pPCA posterior over part 4's
   training images: average KL = index-code MI + KL(aggregate posterior || prior).

All values are nats per datum on the data named in each figure. pPCA's covariance is
normalised by N (the maximum likelihood of exactly the data the ELBO averages over);
N-1 would put the "exact" value below an ELBO (a public reproduction reported an ELBO
0.32 nats above its exact log-likelihood for this reason).

Layout: :mod:`.config` (settings and presets); one module per question:
:mod:`.ppca_maximum` (parts 1, 2), :mod:`.encoders` (part 3), :mod:`.collapse`
(part 4), :mod:`.spurious_maxima` (part 5), :mod:`.ppca_surgery` (part 6);
:mod:`.pipeline` (the data and the run's units), :mod:`.metrics` (metrics),
:mod:`.claims` (the claims), :mod:`.render` (the report).
"""

from __future__ import annotations

from .claims import claims
from .config import PRESETS, Config
from .pipeline import prepare, run
from .render import render

NAME = "linear"
DESCRIPTION = "linear VAE vs probabilistic PCA on MNIST; posterior collapse against sigma^2"

__all__ = ["NAME", "DESCRIPTION", "Config", "PRESETS", "prepare", "run", "claims", "render"]
