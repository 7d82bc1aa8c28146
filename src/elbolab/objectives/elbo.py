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

import torch
from torch.distributions import kl_divergence

from .. import checks
from ..distributions import rsample
from .protocol import as_data, check_terms, given_posterior, model_prior

__all__ = ["elbo", "elbo_loss"]


def _analytic_kl(q, p) -> torch.Tensor | None:
    try:
        return kl_divergence(q, p)
    except NotImplementedError:
        return None


def elbo(
    model: torch.nn.Module,
    x: torch.Tensor,
    generator: torch.Generator | int,
    beta: float = 1.0,
    n_samples: int = 1,
    analytic_kl: bool = True,
    posterior: torch.distributions.Distribution | None = None,
) -> dict:
    """ELBO and beta-ELBO of a batch, in nats, summed over the batch.

    Parameters
    ----------
    model : VAE-like module
        ``encode``, ``decode``, ``prior`` as in :class:`elbolab.models.vae.VAE`.
    x : (B, D) tensor
        Data batch (any numeric dtype; cast to the model's dtype and moved to its device).
    generator : torch.Generator or int
        Source of the reparameterization noise eps ~ N(0, I), drawn as one (S, B, d)
        tensor (the same draw as :func:`elbolab.objectives.iwae` with k = S). A seed
        gives a generator on the model's device; a generator must live there.
    beta : float
        KL weight of the beta-ELBO (``>= 0``).
    n_samples : int
        S, Monte Carlo samples z_s ~ q(z | x_n) per datum.
    analytic_kl : bool
        Use the closed-form KL when it exists (standard-normal prior); otherwise, or when
        False, a Monte Carlo estimate on the same S samples.
    posterior : distribution, optional
        q(z | x) for this x when it was encoded already (the ``"posterior"`` of an earlier
        result, or rows of it): used instead of ``model.encode(x)``, so x is not encoded
        twice. Its batch shape must be (B,).

    Returns
    -------
    dict with
        ``"elbo"`` : scalar tensor, sum_n (reconstruction_n - kl_n), differentiable;
        ``"beta_elbo"`` : sum_n (reconstruction_n - beta kl_n);
        ``"loss"`` : ``-beta_elbo`` (minimize this to train);
        ``"reconstruction"`` : sum_n E_q[log p(x_n | z)] (S-sample average);
        ``"kl"`` : sum_n KL(q(z | x_n) || p(z));
        ``"elbo_per_datum"``, ``"reconstruction_per_datum"``, ``"kl_per_datum"`` : (B,);
        ``"reconstruction_per_sample"`` : (S, B), log p(x_n | z_ns);
        ``"posterior"`` : q(z | x), the distribution the samples came from; ``"prior"`` :
        p(z) as the KL saw it (over R^d, event shape (d,));
        ``"beta"`` : float; ``"n_samples"`` : int; ``"kl_analytic"`` : bool, whether the
        KL was computed in closed form.
    """
    beta = checks.number(beta, "beta", minimum=0.0)
    n_samples = checks.integer(n_samples, "n_samples", 1)
    x = as_data(model, x)
    gen = checks.torch_generator(generator, "generator", device=x.device)

    q = model.encode(x) if posterior is None else given_posterior(posterior, x.shape[0])
    p = model_prior(model, q)
    z = rsample(q, n_samples, gen)  # (S, B, d)
    rec_s = model.decode(z).log_prob(x)  # (S, B)
    rec = rec_s.mean(0)  # (B,)

    kl = _analytic_kl(q, p) if analytic_kl else None
    kl_analytic = kl is not None
    if kl is None:
        kl = (q.log_prob(z) - p.log_prob(z)).mean(0)
    check_terms("elbo", x.shape[0], reconstruction=rec, kl=kl)

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
        "reconstruction_per_sample": rec_s,
        "posterior": q,
        "prior": p,
        "beta": float(beta),
        "n_samples": n_samples,
        "kl_analytic": kl_analytic,
    }


def elbo_loss(
    model: torch.nn.Module,
    x: torch.Tensor,
    generator: torch.Generator | int,
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
