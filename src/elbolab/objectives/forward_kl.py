"""The expected forward KL, the ELBO and the IWBO for amortized families, on equal terms.

For a model p(z, x) and an amortized family q(z; f(x; phi)), McNamara, Loper & Regier
(2024) minimize the expected forward (inclusive) KL

    E_{p(x)} KL(p(z | x) || q(z; f(x; phi)))
        = E_{p(z, x)}[-log q(z; f(x; phi))] - E_{p(x)} H[p(z | x)],

whose second term does not depend on phi; the first is estimated on pairs (z, x) drawn
from the joint by a simulator, as in neural posterior estimation. It needs samples of
the model, never its density. The ELBO and the importance-weighted bound (IWBO, Burda
et al. 2016) need the density ``log p(z, x)`` and samples of q instead. All three take
the same ``q_fn(x) -> distribution`` so that they are compared on one family.

Every value is in nats. ``forward_kl`` returns per-pair averages (it estimates an
expectation over the joint); ``elbo_amortized`` and ``iwbo_amortized`` return sums over
the batch of observations, like :func:`elbolab.objectives.elbo`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .. import checks
from ..distributions import rsample
from ..errors import ConfigError, DataError, NumericalError

__all__ = ["elbo_amortized", "forward_kl", "iwbo_amortized"]

Simulator = Callable[[torch.Generator, int], tuple[torch.Tensor, torch.Tensor]]


def _finite_tensor(value, name: str, where: str) -> torch.Tensor:
    """A real tensor with finite entries: DataError for inputs, naming them."""
    value = checks.real_tensor(value, f"{where}: {name}")
    if value.ndim == 0 or value.shape[0] == 0:
        raise ConfigError(
            f"{where}: {name} must be a non-empty batch, got shape {tuple(value.shape)}"
        )
    if value.is_floating_point() and not bool(torch.isfinite(value).all()):
        raise DataError(f"{where}: {name} contains NaN or infinite values")
    return value


def _finite_result(value: torch.Tensor, where: str, what: str) -> None:
    if not bool(torch.isfinite(value.detach()).all()):
        raise NumericalError(
            f"{where}: {what} is NaN or infinite (q_fn or the model returned non-finite "
            "values; check its parameters)"
        )


def forward_kl(q_fn: Callable, simulator: Simulator, n: int, generator) -> dict:
    """Expected forward KL up to its constant, on ``n`` pairs simulated from the joint.

    Parameters
    ----------
    q_fn : callable
        ``x (n, ...) -> distribution`` with batch shape (n,) whose ``log_prob(z)`` is (n,).
    simulator : callable
        ``(generator, n) -> (z, x)``: n draws z ~ p(z), x ~ p(x | z).
    n : int
        Pairs per estimate.
    generator : torch.Generator or int
        Passed to the simulator (the only randomness); a seed becomes a CPU generator.

    Returns
    -------
    dict with
        ``"loss"`` : scalar, (1/n) sum_i -log q(z_i; f(x_i)), differentiable; it equals
        E_x KL(p(z|x) || q) + E_x H[p(z|x)] in expectation;
        ``"nll_per_pair"`` : (n,) detached -log q(z_i; f(x_i));
        ``"z"``, ``"x"`` : the simulated pairs.
    """
    n = checks.integer(n, "n", 1)
    # The simulator decides where it draws: a seed gives a CPU generator, a given
    # generator (on any device) is passed through.
    where = generator.device if isinstance(generator, torch.Generator) else None
    gen = checks.torch_generator(generator, "generator", device=where)
    out = simulator(gen, n)
    if not (isinstance(out, tuple) and len(out) == 2):
        raise ConfigError("simulator(generator, n) must return a pair (z, x) of tensors")
    z, x = out
    z = _finite_tensor(z, "the simulated z", "forward_kl")
    x = _finite_tensor(x, "the simulated x", "forward_kl")
    log_q = q_fn(x).log_prob(z)
    if log_q.shape != (n,):
        raise ConfigError(f"q_fn(x).log_prob(z) must have shape ({n},), got {tuple(log_q.shape)}")
    _finite_result(log_q, "forward_kl", "log q(z; f(x))")
    return {"loss": -log_q.mean(), "nll_per_pair": -log_q.detach(), "z": z, "x": x}


def _log_weights(q, log_joint: Callable, x: torch.Tensor, k: int, gen) -> torch.Tensor:
    z = rsample(q, k, gen)  # (k, B, d)
    lw = log_joint(z, x) - q.log_prob(z)
    if lw.shape != z.shape[:2]:
        raise ConfigError(
            f"log_joint(z, x) - q.log_prob(z) must have shape {tuple(z.shape[:2])}, "
            f"got {tuple(lw.shape)}"
        )
    return lw


def elbo_amortized(
    q_fn: Callable, log_joint: Callable, x: torch.Tensor, generator, n_samples: int = 1
) -> dict:
    """ELBO of an amortized family: sum_n E_q[log p(z, x_n) - log q(z; f(x_n))] (nats).

    Parameters
    ----------
    q_fn : callable
        ``x (B, ...) -> Independent(Normal)`` with batch shape (B,) (reparameterized).
    log_joint : callable
        ``(z (S, B, d), x (B, ...)) -> (S, B)`` log p(z, x), every constant included.
    x : (B, ...) tensor
    generator : torch.Generator or int
        A seed, or a generator on x's device.
    n_samples : int
        Monte Carlo samples S per observation.

    Returns
    -------
    dict with ``"elbo"`` (scalar, differentiable), ``"elbo_per_datum"`` (B,) and
    ``"loss"`` = -elbo.
    """
    n_samples = checks.integer(n_samples, "n_samples", 1)
    x = _finite_tensor(x, "x", "elbo_amortized")
    gen = checks.torch_generator(generator, "generator", device=x.device)
    lw = _log_weights(q_fn(x), log_joint, x, n_samples, gen)
    _finite_result(lw, "elbo_amortized", "log p(z, x) - log q(z; f(x))")
    per = lw.mean(0)
    return {"elbo": per.sum(), "elbo_per_datum": per, "loss": -per.sum()}


def iwbo_amortized(q_fn: Callable, log_joint: Callable, x: torch.Tensor, k: int, generator) -> dict:
    """Importance-weighted bound with k samples: sum_n log (1/k) sum_i w_ni (nats).

    Same arguments as :func:`elbo_amortized`; with k = 1 it is the one-sample ELBO on
    the same draw. Returns ``"iwbo"``, ``"iwbo_per_datum"``, ``"loss"`` = -iwbo.
    """
    k = checks.integer(k, "k", 1)
    x = _finite_tensor(x, "x", "iwbo_amortized")
    gen = checks.torch_generator(generator, "generator", device=x.device)
    lw = _log_weights(q_fn(x), log_joint, x, k, gen)
    _finite_result(lw, "iwbo_amortized", "log p(z, x) - log q(z; f(x))")
    per = torch.logsumexp(lw, 0) - math.log(k)
    return {"iwbo": per.sum(), "iwbo_per_datum": per, "loss": -per.sum()}
