"""Importance-weighted bound (IWAE / IWBO) and its DReG gradient estimator.

With k samples z_1..z_k ~ q_phi(z | x) and log weights
log w_i = log p_theta(x | z_i) + log p(z_i) - log q_phi(z_i | x) (Burda, Grosse &
Salakhutdinov 2016)::

    IWAE_k(x) = E[ log (1/k) sum_i w_i ] <= log p(x),

non-decreasing in k, equal to the ELBO at k = 1 and tending to log p(x) as k grows.

The standard gradient differentiates the log-mean-exp through the reparameterized z_i.
For the inference network its signal-to-noise ratio vanishes as k grows (Rainforth et
al. 2018); the doubly reparameterized estimator (DReG, Tucker, Lawson, Gu & Maddison
2019) removes the score-function term and reweights the path term::

    grad_phi  ~=  sum_i  w~_i^2  (d log w_i / d z_i) (d z_i / d phi),
    w~_i = w_i / sum_j w_j,

unbiased for the same expectation. The decoder (theta), and any prior parameters, keep
the standard gradient sum_i w~_i grad log w_i.

With a VampPrior the encoder's weights phi also enter p(z) = (1/K) sum_k q_phi(z | u_k);
that explicit dependence is a prior term and keeps the weight w~_i. DReG stays unbiased
there (tested), but its variance advantage is not guaranteed: the score term it drops,
-grad_phi log q_phi(z | x), partly cancels grad_phi log p_phi(z) when the pseudo-inputs
resemble x. On a small test model the encoder gradient's total variance rose with DReG
under the VampPrior while it fell by more than 30% under the standard-normal prior.
"""

from __future__ import annotations

import math

import torch

from .. import checks
from ..distributions import detached, rsample
from ..errors import ConfigError
from .protocol import as_data, check_terms, model_prior

__all__ = ["iwae", "iwae_loss"]


def iwae(
    model: torch.nn.Module,
    x: torch.Tensor,
    k: int,
    generator: torch.Generator | int,
    dreg: bool = False,
) -> dict:
    """Importance-weighted bound with k samples, in nats, summed over the batch.

    Parameters
    ----------
    model : VAE-like module
        ``encode``, ``decode``, ``prior`` as in :class:`elbolab.models.vae.VAE`.
    x : (B, D) tensor
    k : int
        Number of importance samples per datum.
    generator : torch.Generator or int
        Source of eps ~ N(0, I) (on the model's device), one (k, B, d) draw, the same draw that
        :func:`elbolab.objectives.elbo` makes with ``n_samples=k``: IWAE with k = 1 and
        the Monte Carlo-KL ELBO from the same generator state are equal.
    dreg : bool
        Return in ``"loss"`` a surrogate whose gradient is the DReG estimator for the
        encoder and the standard IWAE gradient for the decoder and prior. Its value is
        ``-iwae`` (so it can be logged as a loss); only its gradient is DReG. The other
        outputs are then detached: back-propagate through ``"loss"`` only.

    Returns
    -------
    dict with
        ``"iwae"`` : scalar, sum_n log (1/k) sum_i w_ni (differentiable unless ``dreg``);
        ``"iwae_per_datum"`` : (B,);
        ``"elbo"`` : sum_n mean_i log w_ni, the k-sample Monte Carlo ELBO on the same
        samples (always <= ``"iwae"``); ``"elbo_per_datum"`` : (B,);
        ``"log_weights"`` : (k, B) detached log w_ni;
        ``"loss"`` : ``-iwae`` (standard gradient) or the DReG surrogate;
        ``"posterior"`` : q(z | x), the proposal the samples came from;
        ``"k"`` : int; ``"dreg"`` : bool.
    """
    k = checks.integer(k, "k", 1)
    x = as_data(model, x)
    gen = checks.torch_generator(generator, "generator", device=x.device)

    q = model.encode(x)
    p = model_prior(model, q)
    z = rsample(q, k, gen)  # (k, B, d)
    q_eval = detached(q) if dreg else q
    log_w = model.decode(z).log_prob(x) + p.log_prob(z) - q_eval.log_prob(z)  # (k, B)
    if tuple(log_w.shape) != (k, x.shape[0]):
        raise ConfigError(
            f"iwae: log weights have shape {tuple(log_w.shape)}, expected ({k}, {x.shape[0]}); "
            "the model's encode/decode/prior must follow the VAE protocol"
        )
    check_terms("iwae", x.shape[0], **{"log-weight": log_w.sum(0)})
    iwae_n = torch.logsumexp(log_w, 0) - math.log(k)

    if dreg:
        w_tilde = torch.softmax(log_w.detach(), 0)
        if z.requires_grad:
            # The gradient reaching z from log w_i is scaled by w~_i, so that the path
            # term for phi gets w~_i^2 while theta (not behind z) keeps w~_i.
            z.register_hook(lambda g: g * w_tilde.unsqueeze(-1))
        surrogate = (w_tilde * log_w).sum()
        total = iwae_n.detach().sum()
        loss = -total - (surrogate - surrogate.detach())
        iwae_n = iwae_n.detach()
    else:
        loss = -iwae_n.sum()

    elbo_n = log_w.mean(0)
    if dreg:
        elbo_n = elbo_n.detach()
    return {
        "iwae": iwae_n.sum(),
        "iwae_per_datum": iwae_n,
        "elbo": elbo_n.sum(),
        "elbo_per_datum": elbo_n,
        "log_weights": log_w.detach(),
        "loss": loss,
        "posterior": q,
        "k": k,
        "dreg": bool(dreg),
    }


def iwae_loss(
    model: torch.nn.Module,
    x: torch.Tensor,
    generator: torch.Generator | int,
    k: int = 5,
    dreg: bool = False,
) -> torch.Tensor:
    """Negative IWAE-k summed over the batch (gradient: standard or DReG).

    Argument order fits :func:`elbolab.models.trainer.train`'s
    ``loss_fn(model, x, generator)``; use ``functools.partial(iwae_loss, k=50)``.
    """
    return iwae(model, x, k, generator, dreg=dreg)["loss"]
