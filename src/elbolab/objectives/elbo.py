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
from ..errors import ConfigError, DataError, NumericalError

__all__ = ["elbo", "elbo_loss"]


def _model_dtype(model) -> torch.dtype:
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.get_default_dtype()


def _check_data(model, x, name: str = "x") -> torch.Tensor:
    """x validated but not moved: a finite real (B, D) tensor in its own dtype and on its
    own device, D the model's ``data_dim`` when it has one (checks.data_matrix). Loops
    over batches of a large data set cast each batch with :func:`_to_model`."""
    width = getattr(model, "data_dim", None)
    return checks.data_matrix(
        x, name, width=width if checks.is_integer(width) else None, shape_error=ConfigError
    )


def _to_model(model, x: torch.Tensor, name: str = "x") -> torch.Tensor:
    """A validated x (or a batch of it) in the model's floating dtype (uint8 MNIST
    included); ConfigError naming both devices if x is not on the model's device,
    DataError if the cast overflows (float64 data beyond the float32 range)."""
    p = next(model.parameters(), None)
    if p is not None:
        checks.same_device(name, x.device, "the model", p.device)
    out = x.to(dtype=p.dtype if p is not None and p.is_floating_point() else _model_dtype(model))
    if out is not x and x.is_floating_point() and not bool(torch.isfinite(out).all()):
        raise DataError(f"{name} has values beyond the range of the model's dtype {out.dtype}")
    return out


def _as_data(model, x, name: str = "x") -> torch.Tensor:
    """x as a finite floating tensor in the model's dtype (uint8 MNIST included), shape
    (B, D) with D the model's ``data_dim`` when it has one (checks.data_matrix)."""
    return _to_model(model, _check_data(model, x, name), name)


def _prior(model, q):
    """model.prior() as a prior over the encoder's R^d (checks.diagonal_prior): a batch of
    d independent Normals becomes Independent(..., 1), other shapes are refused."""
    event = tuple(getattr(q, "event_shape", ()))
    if len(event) != 1:
        raise ConfigError(
            f"model.encode(x) must return a distribution with event shape (d,), got {event}"
        )
    return checks.diagonal_prior(model.prior(), event[0], "model.prior()")


def _check_terms(where: str, batch: int, **terms) -> None:
    """Each per-datum term has shape (B,) and is finite, else a clear error naming it."""
    for name, value in terms.items():
        if tuple(value.shape) != (batch,):
            raise ConfigError(
                f"{where}: the {name} term has shape {tuple(value.shape)}, expected ({batch},); "
                "the model's encode/decode/prior must follow the VAE protocol"
            )
    # One host read for all terms: any NaN or infinity makes the total non-finite.
    if not checks.value_checks_enabled() or bool(
        torch.isfinite(sum(v.detach().sum() for v in terms.values()))
    ):
        return
    for name, value in terms.items():
        if not bool(torch.isfinite(value.detach()).all()):
            raise NumericalError(
                f"{where}: the {name} term is NaN or infinite for x (the model's encoder or "
                "decoder returned non-finite values; check the parameters and the data)"
            )


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
    beta = checks.number(beta, "beta", minimum=0.0)
    n_samples = checks.integer(n_samples, "n_samples", 1)
    x = _as_data(model, x)
    gen = checks.torch_generator(generator, "generator", device=x.device)

    q = model.encode(x)
    p = _prior(model, q)
    z = rsample(q, n_samples, gen)  # (S, B, d)
    rec = model.decode(z).log_prob(x).mean(0)  # (B,)

    kl = _analytic_kl(q, p) if analytic_kl else None
    kl_analytic = kl is not None
    if kl is None:
        kl = (q.log_prob(z) - p.log_prob(z)).mean(0)
    _check_terms("elbo", x.shape[0], reconstruction=rec, kl=kl)

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
