"""The evidence lower bound and the beta-ELBO of a VAE-like model.

For data x_n and an amortized posterior q_phi(z | x) (Kingma & Welling 2014)::

    ELBO(x_n) = E_q[log p_theta(x_n | z)] - KL(q_phi(z | x_n) || p(z))
              =     reconstruction_n      -            kl_n             <= log p(x_n)

and the beta-ELBO (Higgins et al. 2017) is ``reconstruction - beta * kl``; at beta = 1
it is the ELBO. The KL term is analytic where torch knows it in closed form (diagonal
Gaussian posterior and standard-normal prior) and a Monte Carlo estimate
``mean_s[log q(z_s | x) - log p(z_s)]`` on the same samples otherwise (VampPrior,
or ``analytic_kl=False``).

The model needs ``encode(x) -> q(z|x)``, ``decode(z) -> p(x|z)`` and ``prior() -> p(z)``
(see :mod:`elbolab.models.vae`).
"""

from __future__ import annotations

import math

import torch
from torch.distributions import kl_divergence

from ..errors import ConfigError
from ..models.vae import make_generator, rsample

__all__ = ["elbo", "elbo_loss"]


def _model_dtype(model) -> torch.dtype:
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.get_default_dtype()


def _as_data(model, x) -> torch.Tensor:
    """x as a floating tensor in the model's dtype (uint8 MNIST included), shape (B, D)."""
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(x)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ConfigError(f"x must be a non-empty (B, D) batch, got shape {tuple(x.shape)}")
    dtype = _model_dtype(model)
    p = next(iter(model.parameters()), None)
    return x.to(dtype=dtype, device=p.device if p is not None else x.device)


def _check_count(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return value


def _analytic_kl(q, p) -> torch.Tensor | None:
    try:
        return kl_divergence(q, p)
    except NotImplementedError:
        return None


def elbo(
    model,
    x: torch.Tensor,
    generator: torch.Generator | int | None = None,
    beta: float = 1.0,
    n_samples: int = 1,
    analytic_kl: bool = True,
) -> dict:
    """ELBO and beta-ELBO of a batch, in nats, summed over the batch.

    Parameters
    ----------
    model : VAE-like module
        ``encode``, ``decode``, ``prior`` as in :class:`elbolab.models.vae.VAE`.
    x : (B, D) tensor
        Data batch (any numeric dtype; cast to the model's).
    generator : torch.Generator or int, optional
        Source of the reparameterization noise eps ~ N(0, I), drawn as one (S, B, d)
        tensor (the same draw as :func:`elbolab.objectives.iwae` with k = S). ``None``
        uses torch's global generator.
    beta : float
        KL weight of the beta-ELBO (``>= 0``).
    n_samples : int
        S, Monte Carlo samples z_s ~ q(z | x_n) per datum.
    analytic_kl : bool
        Use the closed-form KL when it exists (standard-normal prior); otherwise, or when
        False, a Monte Carlo estimate on the same S samples.

    Returns
    -------
    dict with
        ``"elbo"`` : scalar tensor, sum_n (reconstruction_n - kl_n), differentiable;
        ``"beta_elbo"`` : sum_n (reconstruction_n - beta kl_n);
        ``"loss"`` : ``-beta_elbo`` (minimize this to train);
        ``"reconstruction"`` : sum_n E_q[log p(x_n | z)] (S-sample average);
        ``"kl"`` : sum_n KL(q(z | x_n) || p(z));
        ``"elbo_per_datum"``, ``"reconstruction_per_datum"``, ``"kl_per_datum"`` : (B,);
        ``"beta"`` : float; ``"n_samples"`` : int; ``"kl_analytic"`` : bool, whether the
        KL was computed in closed form.
    """
    if not (isinstance(beta, (int, float)) and math.isfinite(beta) and beta >= 0):
        raise ConfigError(f"beta must be a finite number >= 0, got {beta!r}")
    _check_count(n_samples, "n_samples")
    x = _as_data(model, x)
    gen = make_generator(generator)

    q = model.encode(x)
    p = model.prior()
    z = rsample(q, n_samples, gen)  # (S, B, d)
    rec = model.decode(z).log_prob(x).mean(0)  # (B,)

    kl = _analytic_kl(q, p) if analytic_kl else None
    kl_analytic = kl is not None
    if kl is None:
        kl = (q.log_prob(z) - p.log_prob(z)).mean(0)

    elbo_n = rec - kl
    beta_elbo = (rec - beta * kl).sum()
    return {
        "elbo": elbo_n.sum(),
        "beta_elbo": beta_elbo,
        "loss": -beta_elbo,
        "reconstruction": rec.sum(),
        "kl": kl.sum(),
        "elbo_per_datum": elbo_n,
        "reconstruction_per_datum": rec,
        "kl_per_datum": kl,
        "beta": float(beta),
        "n_samples": n_samples,
        "kl_analytic": kl_analytic,
    }


def elbo_loss(
    model,
    x: torch.Tensor,
    generator: torch.Generator | int | None = None,
    beta: float = 1.0,
    n_samples: int = 1,
    analytic_kl: bool = True,
) -> torch.Tensor:
    """Negative beta-ELBO summed over the batch (a loss for :func:`elbolab.models.trainer.train`).

    Same arguments as :func:`elbo`; returns ``elbo(...)["loss"]``.
    """
    return elbo(model, x, generator, beta=beta, n_samples=n_samples, analytic_kl=analytic_kl)[
        "loss"
    ]
