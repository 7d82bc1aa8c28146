"""L-BFGS on the closed-form linear-VAE ELBO: the eigenbasis form equals the data form,
and from random starts it reaches the pPCA maximum, never above it."""

import numpy as np
import pytest
import torch

from elbolab.errors import ConfigError
from elbolab.models.linear_vae import LinearVAE, fit_linear_vae_lbfgs, profiled_elbo
from elbolab.models.ppca import PPCA


def _data(n, d, q, seed):
    rng = np.random.default_rng(seed)
    # A spread spectrum (scales 3 .. 0.3) so that the problem is ill-conditioned.
    W = rng.standard_normal((d, q)) * np.geomspace(3.0, 0.3, q)
    return PPCA.from_params(rng.standard_normal(d), W, 0.05).sample(n, seed=rng)


def test_profiled_elbo_equals_the_data_form_at_the_optimal_encoder():
    x = torch.from_numpy(_data(50, 7, 3, seed=0))
    n = x.shape[0]
    g = torch.Generator().manual_seed(1)
    m = LinearVAE(7, 3, sigma2=0.4, generator=g)
    with torch.no_grad():
        m.W.mul_(3.0)  # random, non-orthogonal columns: a gap to log p(x) remains
        m.mu.copy_(x.mean(0))  # the profiled form assumes mu at the data mean
    m.set_optimal_encoder()
    xc = x - x.mean(0)
    lam, U = torch.linalg.eigh(xc.T @ xc / n)
    with torch.no_grad():
        fast = profiled_elbo(U.T @ m.W, m.log_sigma2, lam)
        slow = m.elbo_analytic(x)["elbo"] / n
        exact = m.log_likelihood(x) / n
    assert float(fast) == pytest.approx(float(slow), rel=1e-12, abs=1e-10)
    assert float(slow) < float(exact) - 1e-3  # the test is not at the tight point


@pytest.mark.parametrize("sigma2", [None, 0.3])
def test_lbfgs_reaches_the_ppca_maximum_from_random_starts_and_never_exceeds_it(sigma2):
    X = _data(200, 8, 3, seed=2)
    best = PPCA(3, sigma2=sigma2).fit(X).score(X)
    x = torch.from_numpy(X)
    finals = []
    for seed in range(3):
        model, curves = fit_linear_vae_lbfgs(
            x, 3, seed, sigma2=sigma2, learn_sigma2=sigma2 is None, chunk=20, tol=1e-10
        )
        with torch.no_grad():
            value = float(model.elbo_analytic(x)["elbo"]) / len(X)
        # The curve (eigenbasis form) and the returned model (data form) agree.
        assert curves["elbo_per_datum"][-1] == pytest.approx(value, abs=1e-9)
        assert curves["elbo_per_datum"][0] < best - 1.0  # a real climb
        assert value <= best + 1e-9  # an ELBO above the maximum likelihood is a bug
        finals.append(value)
        if sigma2 is not None:
            assert float(model.sigma2) == pytest.approx(sigma2, rel=1e-12)
    assert max(finals) - min(finals) < 1e-6
    assert min(finals) == pytest.approx(best, abs=1e-6)


def test_lbfgs_rejects_bad_settings():
    x = torch.from_numpy(_data(20, 5, 2, seed=3))
    with pytest.raises(ConfigError, match="max_iter"):
        fit_linear_vae_lbfgs(x, 2, 0, max_iter=0)
    with pytest.raises(ConfigError, match="tol"):
        fit_linear_vae_lbfgs(x, 2, 0, tol=-1.0)
