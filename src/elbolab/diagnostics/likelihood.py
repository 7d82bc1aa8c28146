"""Importance-sampled log-likelihood log p(x) with Monte Carlo standard errors.

With the encoder as proposal (Rezende et al. 2014; Burda et al. 2016, App. and
Tomczak & Welling 2018 use k = 5000)::

    p^(x) = (1/k) sum_i w_i,   w_i = p(x | z_i) p(z_i) / q(z_i | x),   z_i ~ q(z | x),

which is unbiased for p(x); log p^(x) is the IWAE-k bound, biased low by O(1/k) and
consistent. Its standard error by the delta method::

    se(log p^) ~= sd(w) / (sqrt(k) mean(w)),

computed stably in log space from log sum w_i and log sum w_i^2. Large values (say
> 1 nat) flag a poor proposal: heavy-tailed weights make both the estimate and its
standard error unreliable.

The k samples are drawn in chunks and folded into running log-sum-exps, so memory is
O(chunk * batch), not O(k * batch).
"""

from __future__ import annotations

import math

import torch

from .. import checks
from ..errors import ConfigError, NumericalError
from ..models.vae import rsample
from ..objectives.elbo import _check_data, _prior, _to_model
from ..progress import progress as progress_bar

__all__ = ["log_likelihood"]


def log_likelihood(
    model,
    x: torch.Tensor,
    k: int = 5000,
    generator: torch.Generator | int | None = None,
    batch_size: int = 100,
    chunk_size: int | None = None,
    progress: bool = True,
) -> dict:
    """Importance-sampled log p(x_n) for every datum, in nats, with standard errors.

    Parameters
    ----------
    model : VAE-like module
        ``encode``, ``decode``, ``prior`` as in :class:`elbolab.models.vae.VAE`.
    x : (N, D) tensor
    k : int
        Importance samples per datum (5000 in Burda et al. 2016).
    generator : torch.Generator or int, optional
        Source of the samples (``None``: torch's global generator).
    batch_size : int
        Data points per step.
    chunk_size : int, optional
        Samples per datum drawn at once (default: so that chunk_size * batch_size is
        about 50,000 decoder rows).
    progress : bool
        Show a progress bar over data batches.

    Returns
    -------
    dict with
        ``"log_likelihood"`` : float, sum_n log p^(x_n);
        ``"mean_log_likelihood"`` : float, (1/N) sum_n log p^(x_n), nats per datum (the
        number papers report);
        ``"per_datum"`` : (N,) float64 log p^(x_n);
        ``"se_per_datum"`` : (N,) float64 delta-method standard errors;
        ``"se_mean"`` : float, standard error of the mean over data,
        sd_n(log p^(x_n)) / sqrt(N) (sampling of the data plus Monte Carlo);
        ``"se_mean_mc"`` : float, Monte Carlo error alone of the mean for these fixed
        data, sqrt(sum_n se_n^2) / N;
        ``"k"`` : int.
    """
    k = checks.integer(k, "k", 1)
    batch_size = checks.integer(batch_size, "batch_size", 1)
    if chunk_size is not None:
        chunk_size = checks.integer(chunk_size, "chunk_size", 1)
    x = _check_data(model, x)  # cast to the model's dtype and device batch by batch
    gen = checks.torch_generator(generator, "generator")
    n = x.shape[0]
    chunk = chunk_size or max(1, 50_000 // min(batch_size, n))
    chunk = min(chunk, k)

    lse1 = torch.empty(n, dtype=torch.float64)  # log sum_i w_i
    lse2 = torch.empty(n, dtype=torch.float64)  # log sum_i w_i^2
    starts = range(0, n, batch_size)
    bar = progress_bar(
        total=len(starts), desc="log p(x)", unit="batch", disable=None if progress else True
    )
    with torch.no_grad(), bar:
        prior = None
        for i0 in starts:
            xb = _to_model(model, x[i0 : i0 + batch_size])
            q = model.encode(xb)
            if prior is None:
                prior = _prior(model, q)
            a1 = torch.full((xb.shape[0],), -math.inf, dtype=torch.float64)
            a2 = a1.clone()
            for c0 in range(0, k, chunk):
                kc = min(chunk, k - c0)
                z = rsample(q, kc, gen)
                log_w = (
                    model.decode(z).log_prob(xb) + prior.log_prob(z) - q.log_prob(z)
                ).double()  # (kc, b)
                if tuple(log_w.shape) != (kc, xb.shape[0]):
                    raise ConfigError(
                        f"log_likelihood: log weights have shape {tuple(log_w.shape)}, expected "
                        f"({kc}, {xb.shape[0]}); the model must follow the VAE protocol"
                    )
                if not bool(torch.isfinite(log_w).all()):
                    raise NumericalError(
                        f"log_likelihood: a log weight is NaN or infinite for x rows {i0}.."
                        f"{i0 + xb.shape[0] - 1} (the model's encoder or decoder returned "
                        "non-finite values)"
                    )
                a1 = torch.logaddexp(a1, torch.logsumexp(log_w, 0))
                a2 = torch.logaddexp(a2, torch.logsumexp(2.0 * log_w, 0))
            lse1[i0 : i0 + xb.shape[0]] = a1
            lse2[i0 : i0 + xb.shape[0]] = a2
            bar.update(1)

    per_datum = lse1 - math.log(k)
    if k > 1:
        # var(w)/mean(w)^2 = (k sum w^2 / (sum w)^2 - 1) * k/(k-1); clamp only rounding < 0.
        rel = torch.exp(lse2 - 2.0 * lse1 + math.log(k)) - 1.0
        rel_var = rel.clamp_min(0.0) * k / (k - 1)
        se = torch.sqrt(rel_var / k)
    else:
        se = torch.full((n,), math.nan, dtype=torch.float64)
    mean = float(per_datum.mean())
    return {
        "log_likelihood": float(per_datum.sum()),
        "mean_log_likelihood": mean,
        "per_datum": per_datum,
        "se_per_datum": se,
        "se_mean": float(per_datum.std(unbiased=True) / math.sqrt(n)) if n > 1 else math.nan,
        "se_mean_mc": float(torch.sqrt((se * se).sum()) / n),
        "k": k,
    }
