"""Part 6: does a classical model's aggregate posterior match its prior?

ELBO surgery (Hoffman & Johnson 2016) of the exact pPCA posterior over part 4's training
images: the average KL split into the index-code mutual information and the KL from
the aggregate posterior to the prior.
"""

from __future__ import annotations

import numpy as np
import torch

from ...diagnostics.surgery import surgery
from ...errors import NumericalError
from ...models import PPCA
from .config import Config


def ppca_surgery(cfg: Config, x_train: torch.Tensor) -> dict:
    """Part 6: ELBO surgery of the exact pPCA posterior over the deep VAEs' training images."""
    x = x_train.double().numpy()
    ppca = PPCA(cfg.surgery_latent).fit(x)
    mean, cov = ppca.posterior(x)
    # The maximum-likelihood W has orthogonal columns, so M and the posterior covariance
    # sigma^2 M^{-1} are diagonal; the surgery estimator takes diagonal Gaussians.
    off = np.abs(cov - np.diag(np.diag(cov))).max()
    if off > 1e-8 * np.abs(cov).max():
        raise NumericalError(f"pPCA posterior covariance is not diagonal (off-diagonal {off:g})")
    std = np.broadcast_to(np.sqrt(np.diag(cov)), mean.shape)
    terms = surgery(
        torch.as_tensor(mean),
        torch.as_tensor(np.ascontiguousarray(std)),
        generator=cfg.seed + 400,
        n_samples=cfg.surgery_samples,
        progress=False,
    )
    keep = ("average_kl", "mutual_info", "marginal_kl", "average_kl_mc", "log_n", "n")
    out = {k: terms[k] for k in keep}
    for k in ("se_mutual_info", "se_marginal_kl", "se_average_kl_mc"):
        out[k] = terms[k]
    out["latent"] = cfg.surgery_latent
    return out
