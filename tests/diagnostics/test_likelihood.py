"""Importance-sampled log p(x) against the exact marginal of a linear-Gaussian VAE."""

import pytest
import torch

from elbolab.diagnostics import log_likelihood
from elbolab.errors import ConfigError
from elbolab.models.vae import VAE
from elbolab.objectives import elbo

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _linear_gaussian():
    m = VAE(5, 2, hidden=(), likelihood="gaussian", sigma2=0.3, dtype=torch.float64, generator=7)
    x = 1.5 * torch.randn(8, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    return m, x


def test_matches_exact_log_marginal_within_standard_error():
    m, x = _linear_gaussian()
    exact = m.exact_log_marginal(x)
    r = log_likelihood(m, x, k=3000, generator=0, batch_size=3, chunk_size=700, progress=False)
    se = r["se_per_datum"]
    assert r["per_datum"].shape == (8,) and (se > 0).all() and (se < 0.5).all()
    # the estimator is biased low by about se^2 / 2: allow it on top of 4 standard errors
    assert ((r["per_datum"] - exact).abs() < 4 * se + se**2).all()
    assert abs(r["mean_log_likelihood"] - float(exact.mean())) < 4 * r["se_mean_mc"] + 0.01
    assert r["log_likelihood"] == pytest.approx(float(r["per_datum"].sum()))
    assert r["se_mean"] > 0 and r["k"] == 3000


def test_standard_error_is_honest_over_repeats():
    # the spread of independent estimates matches the delta-method standard error
    m, x = _linear_gaussian()
    x = x[:2]
    vals = torch.stack(
        [log_likelihood(m, x, k=200, generator=s, progress=False)["per_datum"] for s in range(60)]
    )
    se = log_likelihood(m, x, k=200, generator=99, progress=False)["se_per_datum"]
    ratio = vals.std(0) / se
    assert ((ratio > 0.6) & (ratio < 1.6)).all(), ratio


def test_above_the_elbo_on_average():
    m = VAE(10, 2, hidden=(8,), generator=3, dtype=torch.float64)
    x = (torch.rand(20, 10, generator=torch.Generator().manual_seed(2)) < 0.3).double()
    r = log_likelihood(m, x, k=500, generator=1, batch_size=7, progress=False)
    with torch.no_grad():
        e = elbo(m, x, generator=4, n_samples=500)
    assert r["mean_log_likelihood"] > float(e["elbo"]) / 20


def test_vamp_prior_and_float32():
    m = VAE(10, 2, hidden=(8,), prior="vamp", n_pseudo=5, generator=3)
    x = (torch.rand(6, 10, generator=torch.Generator().manual_seed(2)) < 0.3).to(torch.uint8)
    r = log_likelihood(m, x, k=50, generator=0, chunk_size=16, progress=False)
    assert torch.isfinite(r["per_datum"]).all() and r["per_datum"].dtype == torch.float64


@pytest.mark.parametrize("kwargs", [{"k": 0}, {"batch_size": 0}, {"chunk_size": 0}])
def test_bad_arguments(kwargs):
    m, x = _linear_gaussian()
    args = {"k": 10, **kwargs}
    with pytest.raises(ConfigError):
        log_likelihood(m, x, generator=0, progress=False, **args)
