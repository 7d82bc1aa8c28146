"""Posterior collapse: per-dimension KL, active units, (epsilon, delta)-collapse.

* Per-dimension KL of a diagonal Gaussian posterior to the standard-normal prior::

      KL(q(z_i | x) || N(0, 1)) = 0.5 (mu_i^2 + sigma_i^2 - 1) - log sigma_i.

* Active units (Burda, Grosse & Salakhutdinov 2016, Sec. 5.2): dimension i is active
  when A_i = Cov_x(E_{q(z|x)}[z_i]) = Var_x(mu_i(x)) > 0.01.
* (epsilon, delta)-collapse (Lucas, Tucker, Grosse & Norouzi 2019, "Don't blame the
  ELBO!", Def. 1): dimension i is collapsed when
  P_x[KL(q(z_i | x) || p(z_i)) < epsilon] >= 1 - delta, P_x the data distribution
  (here the empirical one over the N given points).

Device: each function computes where its input is (mu and std on one device, else a
ConfigError naming both) and returns CPU tensors and Python numbers.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from .. import checks
from ..errors import ConfigError

if TYPE_CHECKING:
    from .._types import ArrayOrTensor

__all__ = ["kl_per_dimension", "active_units", "collapse_curve", "collapsed_fraction"]


def _matrix(a, name: str, allow_inf: bool = False, check_values: bool = True) -> torch.Tensor:
    a = checks.real_tensor(checks.array_or_tensor(a, name), name, ConfigError)
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0:
        raise ConfigError(f"{name} must have shape (N, d) with N, d >= 1, got {tuple(a.shape)}")
    a = a.detach().to(torch.float64)
    if check_values:
        _check_values(a, name, allow_inf)
    return a


def _check_values(a: torch.Tensor, name: str, allow_inf: bool = False) -> None:
    if torch.isnan(a).any():
        raise ConfigError(f"{name} has NaN entries")
    if not allow_inf and torch.isinf(a).any():
        raise ConfigError(f"{name} has infinite entries")


def kl_per_dimension(mu: ArrayOrTensor, std: ArrayOrTensor) -> torch.Tensor:
    """KL(q(z_i | x_n) || N(0, 1)) for every datum n and dimension i.

    Parameters
    ----------
    mu, std : (N, d) tensors or arrays
        Posterior means mu and standard deviations sigma (> 0).

    Returns
    -------
    (N, d) float64 CPU tensor, ``0.5 (mu^2 + sigma^2 - 1) - log sigma`` (>= 0); its row
    sums are the per-datum KL terms of the ELBO.
    """
    mu = _matrix(mu, "mu", check_values=False)
    std = _matrix(std, "std", check_values=False)
    checks.same_device(mu.device, "mu", std.device, "std")
    _check_values(mu, "mu")
    _check_values(std, "std")
    if std.shape != mu.shape:
        raise ConfigError(
            f"std must have the shape of mu {tuple(mu.shape)}, got {tuple(std.shape)}"
        )
    if not (std > 0).all():
        raise ConfigError("std must be > 0 everywhere")
    return (0.5 * (mu * mu + std * std - 1.0) - std.log()).cpu()


def active_units(mu: ArrayOrTensor, threshold: float = 0.01) -> dict:
    """Active units of Burda et al. (2016): Var_x(E_q[z_i | x]) > threshold.

    Parameters
    ----------
    mu : (N, d) tensor or array
        Posterior means E_q[z | x_n] over a data set (N >= 2).
    threshold : float
        0.01 in Burda et al.

    Returns
    -------
    dict with ``"count"`` (int, number of active dimensions), ``"active"`` ((d,) bool
    CPU tensor), ``"variances"`` ((d,) float64 CPU tensor A_i, the variance over data
    points with the 1/N normalizer), ``"threshold"``.
    """
    mu = _matrix(mu, "mu")
    if mu.shape[0] < 2:
        raise ConfigError("active_units needs at least 2 data points")
    threshold = checks.number(threshold, "threshold", minimum=0.0)
    var = mu.var(0, unbiased=False).cpu()
    active = var > threshold
    return {
        "count": int(active.sum()),
        "active": active,
        "variances": var,
        "threshold": float(threshold),
    }


def collapse_curve(kl_per_dim: ArrayOrTensor, epsilons: ArrayOrTensor, delta: float = 0.01) -> dict:
    """Fraction of (epsilon, delta)-collapsed dimensions (Lucas et al. 2019) per epsilon.

    Parameters
    ----------
    kl_per_dim : (N, d) tensor or array
        KL(q(z_i | x_n) || p(z_i)), e.g. from :func:`kl_per_dimension`.
    epsilons : sequence of float or 1-D tensor/array
        KL thresholds epsilon (nats); a few settings, taken to kl_per_dim's device.
    delta : float
        Allowed fraction of data points above the threshold.

    Returns
    -------
    dict with CPU tensors ``"epsilons"`` ((E,) float64), ``"fraction"`` ((E,) float64,
    fraction of the d dimensions with P_x[KL_i < epsilon] >= 1 - delta; non-decreasing in
    epsilon), ``"prob_below"`` ((E, d), P_x[KL_i < epsilon] per dimension), and
    ``"delta"``.
    """
    kl = _matrix(kl_per_dim, "kl_per_dim", allow_inf=True)
    delta = checks.probability(delta, "delta")
    eps = checks.real_tensor(epsilons, "epsilons", ConfigError).reshape(-1)
    eps = eps.to(dtype=torch.float64, device=kl.device)
    if eps.numel() == 0 or torch.isnan(eps).any():
        raise ConfigError("epsilons must be a non-empty sequence of numbers")
    # P_x[KL_i < eps] for all eps at once by sorting each dimension's KLs.
    n = kl.shape[0]
    sorted_kl = torch.sort(kl.T.contiguous(), dim=1).values  # (d, N)
    # Number of n with KL_ni < eps (strict, as in the definition), for every (eps, i).
    counts = torch.searchsorted(
        sorted_kl, eps.expand(kl.shape[1], -1).contiguous(), right=False
    ).T  # (E, d)
    prob_below = counts.to(torch.float64) / n
    # Compare counts, not floats: collapsed iff count >= (1 - delta) N.
    need = math.ceil((1.0 - delta) * n - 1e-9)
    collapsed = counts >= need
    return {
        "epsilons": eps.cpu(),
        "fraction": collapsed.to(torch.float64).mean(1).cpu(),
        "prob_below": prob_below.cpu(),
        "delta": delta,
    }


def collapsed_fraction(
    kl_per_dim: ArrayOrTensor, epsilon: float = 0.01, delta: float = 0.01
) -> float:
    """Fraction of dimensions in (epsilon, delta)-collapse (Lucas et al. 2019).

    Parameters
    ----------
    kl_per_dim : (N, d) tensor or array
    epsilon, delta : float

    Returns
    -------
    float in [0, 1].
    """
    return float(collapse_curve(kl_per_dim, [epsilon], delta)["fraction"][0])
