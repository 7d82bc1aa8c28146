"""Linear VAE (Lucas et al. 2019): the closed-form ELBO against exact values and Monte Carlo.

* ELBO <= log p(x) for random parameters, and the gap is KL(q || p(z | x)) computed by
  torch.distributions from the exact posterior;
* at the pPCA maximum with the optimal encoder the ELBO *is* the maximum log-likelihood
  (and the reparameterised estimator has zero variance there); with non-orthogonal W the
  diagonal encoder leaves the Hadamard gap (sum_j log M_jj - log det M) / 2;
* the stochastic ELBO and its gradients are unbiased for the analytic ones;
* training from random init reaches the pPCA maximum;
* normalising pPCA's covariance by N - 1 makes the ELBO "exceed" the exact value by
  D / (2N) nats per datum: 0.32 for D = 784, N = 1225 (the bug in the issue).
"""

import math

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA
from torch.distributions import MultivariateNormal, kl_divergence

from elbolab.diagnostics import log_likelihood, surgery_model
from elbolab.errors import ConfigError, DataError
from elbolab.models.linear_vae import LinearVAE, fit_linear_vae
from elbolab.models.ppca import PPCA, posterior
from elbolab.objectives import elbo as elbo_objective

F64 = torch.float64


def _ppca_data(n, d, q, sigma2=0.3, seed=0):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((d, q)) * np.linspace(2.0, 1.0, q)
    return PPCA.from_params(rng.standard_normal(d), W, sigma2).sample(n, seed=rng)


def _random_model(d, q, seed):
    """A LinearVAE with every parameter random (W, mu, V, log D, log sigma^2)."""
    g = torch.Generator().manual_seed(seed)
    m = LinearVAE(d, q, generator=g)
    with torch.no_grad():
        m.W.mul_(math.exp(torch.empty(()).uniform_(-1, 1.5, generator=g).item()))
        m.V.mul_(math.exp(torch.empty(()).uniform_(-1, 1.5, generator=g).item()))
        m.mu.normal_(generator=g)
        m.log_D.uniform_(-3.0, 1.0, generator=g)
        m.log_sigma2.uniform_(-2.0, 1.0, generator=g)
    return m


def _exact_gap(m, x):
    """sum_n KL(q(z | x_n) || p(z | x_n)) with the exact Gaussian posterior."""
    with torch.no_grad():
        post_mean, post_cov = posterior(x, m.mu, m.W, m.sigma2)
        q_z = m.encode(x)
        q_mvn = MultivariateNormal(q_z.mean, torch.diag(torch.exp(m.log_D)))
        return kl_divergence(q_mvn, MultivariateNormal(post_mean, post_cov)).sum()


@pytest.fixture(scope="module")
def small():
    return torch.from_numpy(_ppca_data(20, 4, 2, seed=1))


def test_elbo_never_exceeds_log_p_and_the_gap_is_the_posterior_kl(small):
    x = small
    gaps = []
    for seed in range(200):
        m = _random_model(4, 2, seed)
        with torch.no_grad():
            elbo, lp = float(m.elbo_analytic(x)["elbo"]), float(m.log_likelihood(x))
        assert elbo <= lp
        gaps.append(lp - elbo)
        if seed < 20:
            assert lp - elbo == pytest.approx(float(_exact_gap(m, x)), rel=1e-9)
    assert min(gaps) > 0


def test_terms_add_up_and_kl_matches_torch_distributions(small):
    m = _random_model(4, 2, 7)
    with torch.no_grad():
        r = m.elbo_analytic(small)
        kl = kl_divergence(m.encode(small), m.prior()).sum()
    assert float(r["elbo"]) == pytest.approx(float(r["reconstruction"] - r["kl"]), rel=1e-15)
    assert float(r["kl"]) == pytest.approx(float(kl), rel=1e-12)
    assert set(r) == {"elbo", "reconstruction", "kl"}


@pytest.fixture(scope="module")
def at_optimum():
    X = _ppca_data(300, 6, 2, seed=2)
    p = PPCA(2).fit(X)
    return torch.from_numpy(X), p, LinearVAE(6, 2).init_from_ppca(p)


def test_elbo_equals_the_ppca_maximum_at_the_optimal_encoder(at_optimum):
    x, p, m = at_optimum
    with torch.no_grad():
        elbo, lp = float(m.elbo_analytic(x)["elbo"]), float(m.log_likelihood(x))
    assert elbo == pytest.approx(p.log_likelihood(x.numpy()), rel=1e-8)
    assert elbo == pytest.approx(lp, rel=1e-12)
    # q(z | x) is the exact posterior, so log p(x, z) - log q(z | x) = log p(x) for every z:
    # the reparameterised estimator has zero variance.
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for _ in range(5):
            assert float(m.elbo_stochastic(x, g)["elbo"]) == pytest.approx(elbo, rel=1e-12)


def test_diagonal_encoder_gap_for_non_orthogonal_w(at_optimum):
    """W R (a rotation) has the same log p(x) but M is no longer diagonal; the best
    diagonal encoder, D = sigma^2 diag(M)^{-1}, leaves the Hadamard gap."""
    x, p, _ = at_optimum
    theta = 0.6
    R = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    m = LinearVAE(6, 2).init_from_ppca(PPCA.from_params(p.mean_, p.components_ @ R, p.sigma2_))
    with torch.no_grad():
        M = m.W.T @ m.W + m.sigma2 * torch.eye(2, dtype=F64)
        hadamard = 0.5 * (torch.log(torch.diagonal(M)).sum() - torch.logdet(M))
        lp, elbo = float(m.log_likelihood(x)), float(m.elbo_analytic(x)["elbo"])
    assert lp == pytest.approx(p.log_likelihood(x.numpy()), rel=1e-12)
    assert float(hadamard) > 1e-3
    assert lp - elbo == pytest.approx(x.shape[0] * float(hadamard), rel=1e-8)
    # The encoder is stationary (gradients w.r.t. V and log D vanish) ...
    r = m.elbo_analytic(x)
    gV, gD = torch.autograd.grad(r["elbo"], [m.V, m.log_D])
    assert float(gV.abs().max()) < 1e-8 and float(gD.abs().max()) < 1e-8
    # ... and the diagonal of the posterior covariance, sigma^2 diag(M^{-1}), is worse.
    with torch.no_grad():
        m.log_D.copy_(torch.log(m.sigma2 * torch.diagonal(torch.linalg.inv(M))))
        assert float(m.elbo_analytic(x)["elbo"]) < elbo - 1e-3


def _stochastic_values(m, x, analytic_kl, n=1000):
    g = torch.Generator().manual_seed(11)
    with torch.no_grad():
        rs = [m.elbo_stochastic(x, g, analytic_kl=analytic_kl) for _ in range(n)]
    return {k: np.array([float(r[k]) for r in rs]) for k in ("elbo", "reconstruction", "kl")}


@pytest.mark.parametrize("analytic_kl", [False, True])
def test_stochastic_elbo_is_unbiased(small, analytic_kl):
    m = _random_model(4, 2, 3)
    with torch.no_grad():
        exact = {k: float(v) for k, v in m.elbo_analytic(small).items()}
    vals = _stochastic_values(m, small, analytic_kl)
    for key in ("elbo", "reconstruction", "kl"):
        se = vals[key].std(ddof=1) / math.sqrt(vals[key].size)
        assert abs(vals[key].mean() - exact[key]) <= 4 * se + 1e-9 * abs(exact[key]), key
    assert vals["elbo"].std() > 0.1  # a real Monte Carlo check, not a degenerate one
    # Reproducible: the same generator seed gives the same estimate.
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    with torch.no_grad():
        assert float(m.elbo_stochastic(small, g1, 3)["elbo"]) == float(
            m.elbo_stochastic(small, g2, 3)["elbo"]
        )


def test_analytic_gradients_match_monte_carlo_gradients(small):
    m = _random_model(4, 2, 4)
    params = {"W": m.W, "V": m.V, "log_D": m.log_D, "mu": m.mu, "log_sigma2": m.log_sigma2}
    exact = torch.autograd.grad(m.elbo_analytic(small)["elbo"], list(params.values()))
    g = torch.Generator().manual_seed(12)
    groups = [
        torch.autograd.grad(
            m.elbo_stochastic(small, g, n_samples=100)["elbo"], list(params.values())
        )
        for _ in range(60)
    ]
    for i, name in enumerate(params):
        est = torch.stack([grads[i] for grads in groups])  # (60, *shape)
        mean, se = est.mean(0), est.std(0) / math.sqrt(est.shape[0])
        err = (mean - exact[i]).abs()
        assert bool((err <= 4 * se + 1e-9 * exact[i].abs().max()).all()), (name, err, se)
        assert float(se.max()) > 0


def test_training_from_random_init_reaches_the_ppca_maximum():
    X = _ppca_data(300, 6, 2, seed=0)
    best = PPCA(2).fit(X).score(X)
    seen = []
    model, curves = fit_linear_vae(
        torch.from_numpy(X),
        2,
        steps=2000,
        lr=0.1,
        generator=0,
        eval_every=500,
        callback=lambda s, m, r: seen.append(s),
    )
    assert list(curves["step"]) == [0, 500, 1000, 1500, 2000] == seen
    start, end = curves["elbo_analytic_per_datum"][[0, -1]]
    assert start < best - 1.0  # a real climb from the random start
    assert end == pytest.approx(best, abs=1e-6) and end <= best + 1e-12
    with torch.no_grad():
        assert float(model.log_likelihood(torch.from_numpy(X))) / 300 == pytest.approx(
            best, abs=1e-6
        )
    # At the optimum the tracked stochastic ELBO has (near) zero variance.
    assert curves["elbo_stochastic_per_datum"][-1] == pytest.approx(end, abs=1e-4)


def test_minibatch_stochastic_training_improves_and_callback_stops():
    X = torch.from_numpy(_ppca_data(200, 5, 2, seed=3))
    model, curves = fit_linear_vae(
        X,
        2,
        300,
        0.05,
        torch.Generator().manual_seed(1),
        analytic=False,
        batch_size=32,
        n_samples=2,
        eval_every=100,
    )
    assert curves["elbo_analytic_per_datum"][-1] > curves["elbo_analytic_per_datum"][0] + 0.5
    assert curves["elbo_stochastic_per_datum"].shape == (4,)
    fixed, curves = fit_linear_vae(
        X,
        2,
        50,
        0.05,
        2,
        eval_every=10,
        learn_sigma2=False,
        sigma2=0.7,
        callback=lambda s, m, r: s >= 20,
    )
    assert list(curves["step"]) == [0, 10, 20]
    assert "log_sigma2" not in dict(fixed.named_parameters())
    assert float(fixed.sigma2) == pytest.approx(0.7, rel=1e-15)


def test_n_minus_1_normalisation_makes_the_elbo_exceed_its_exact_value():
    """The bug in the issue, reproduced with D = 784 and N = 1225.

    Fitting pPCA with S normalised by N - 1 (as scikit-learn does) and using Tipping &
    Bishop's closed form -N/2 (D log 2pi + sum log lambda_j + (D - q) log sigma^2 + D) as
    the "exact" log-likelihood assumes tr(C^-1 S) = D, but on the data the ELBO is averaged
    over tr(C^-1 S_N) = D (N - 1) / N. The linear VAE at those parameters (optimal
    encoder) then scores D / (2N) = 0.32 nats per datum above the "exact" value. With N
    normalisation the closed form is the true maximum and the ELBO stays below it.
    """
    n, d, q = 1225, 784, 20
    X = _ppca_data(n, d, q, sigma2=0.05, seed=5)
    sk = PCA(n_components=q, svd_solver="full").fit(X)
    lam_s, s2_s = sk.explained_variance_, sk.noise_variance_  # N - 1 normalisation
    W_s = sk.components_.T * np.sqrt(lam_s - s2_s)
    student = -0.5 * (
        d * math.log(2 * math.pi) + np.log(lam_s).sum() + (d - q) * math.log(s2_s) + d
    )
    vae = LinearVAE(d, q).init_from_ppca(PPCA.from_params(sk.mean_, W_s, s2_s))
    x = torch.from_numpy(X)
    with torch.no_grad():
        elbo = float(vae.elbo_analytic(x)["elbo"]) / n
        lp = float(vae.log_likelihood(x)) / n
    assert elbo - student == pytest.approx(d / (2 * n), rel=1e-6)
    assert elbo - student == pytest.approx(0.32, abs=1e-8)
    assert elbo == pytest.approx(lp, rel=1e-10)  # the ELBO is exact at those parameters
    ours = PPCA(q).fit(X)
    ml = ours.score(X)
    assert ml == pytest.approx(
        -0.5
        * (
            d * math.log(2 * math.pi)
            + np.log(ours.eigenvalues_[:q]).sum()
            + (d - q) * math.log(ours.sigma2_)
            + d
        ),
        rel=1e-12,
    )
    c = n / (n - 1)
    assert ml - elbo == pytest.approx(0.5 * d * (math.log(c) + 1 / c - 1), rel=1e-6)
    assert ml > elbo


def test_distributions_and_shapes(small):
    m = _random_model(4, 2, 9)
    q_z = m.encode(small)
    assert q_z.batch_shape == (20,) and q_z.event_shape == (2,)
    z = torch.zeros(3, 20, 2, dtype=F64)
    p_x = m.decode(z)
    assert p_x.batch_shape == (3, 20) and p_x.event_shape == (4,)
    assert m.log_prob(small).shape == (20,)
    assert m.W.dtype == F64 and LinearVAE(4, 2, dtype=torch.float32).W.dtype == torch.float32


def test_bad_settings_and_data():
    m = LinearVAE(4, 2)
    with pytest.raises(DataError):
        m.elbo_analytic(torch.zeros(3, 5, dtype=F64))
    with pytest.raises(DataError):
        m.elbo_stochastic(torch.zeros(3), torch.Generator())
    for kwargs in ({"latent_dim": 0}, {"data_dim": 2.5}, {"sigma2": -1.0}, {"sigma2": 0.0}):
        with pytest.raises(ConfigError):
            LinearVAE(**{"data_dim": 4, "latent_dim": 2, **kwargs})
    with pytest.raises(ConfigError):
        m.elbo_stochastic(torch.zeros(3, 4, dtype=F64), "seed")
    with pytest.raises(ConfigError):
        m.init_from_ppca(PPCA.from_params(np.zeros(4), np.ones((4, 3)), 1.0))
    with pytest.raises(ConfigError):
        m.init_from_ppca(PPCA(2))  # not fitted
    X = torch.from_numpy(_ppca_data(30, 4, 2))
    for kwargs in (
        {"steps": 0},
        {"lr": 0.0},
        {"lr_schedule": "step"},
        {"batch_size": 0},
        {"generator": None},
    ):
        with pytest.raises(ConfigError):
            fit_linear_vae(X, 2, **{"steps": 5, "lr": 0.1, "generator": 0, **kwargs})
    bad = X.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(DataError):
        fit_linear_vae(bad, 2, 5, 0.1, 0)


# --------------------------------------------------------------------------- the protocol
def test_the_elbo_objective_takes_a_linear_vae_and_agrees_with_the_closed_form(small):
    m = _random_model(4, 2, 3)
    with torch.no_grad():
        exact = m.elbo_analytic(small)
        for analytic_kl in (True, False):
            # 40 independent estimates: their mean is within 4 standard errors of the
            # closed form, and the standard error is small enough for that to mean much.
            estimates = [
                elbo_objective(m, small, seed, n_samples=25, analytic_kl=analytic_kl)["elbo"]
                for seed in range(40)
            ]
            values = np.array([float(v) for v in estimates])
            se = values.std(ddof=1) / math.sqrt(len(values))
            assert abs(values.mean() - float(exact["elbo"])) < 4 * se
            assert se < 0.01 * abs(float(exact["elbo"]))
        # With the closed-form KL, that term is exact (torch's registered formula).
        out = elbo_objective(m, small, 0)
        assert out["kl_analytic"]
        assert float(out["kl"]) == pytest.approx(float(exact["kl"]), rel=1e-12)
        # The model's own estimator makes the same draws and the same terms.
        ours = m.elbo_stochastic(small, 7, n_samples=3)
        theirs = elbo_objective(m, small, 7, n_samples=3, analytic_kl=False)
        assert torch.equal(ours["reconstruction"], theirs["reconstruction"])
        assert torch.equal(ours["kl"], theirs["kl"])


def test_the_diagnostics_take_a_linear_vae(small):
    m = _random_model(4, 2, 5)
    n = len(small)
    with torch.no_grad():
        exact = {k: float(v) / n for k, v in m.elbo_analytic(small).items()}
        log_p = float(m.log_prob(small).mean())
    out = surgery_model(m, small, generator=0, n_samples=50, progress=False)
    assert out["average_kl"] == pytest.approx(exact["kl"], rel=1e-10)
    rec_error = abs(out["average_reconstruction"] - exact["reconstruction"])
    assert rec_error < 4 * out["se_average_reconstruction"]
    assert out["mu"].shape == (n, 2)
    # Importance sampling with the encoder as proposal recovers the exact log p(x); with
    # the optimal diagonal encoder (close to the posterior) after few samples.
    m.set_optimal_encoder()
    with torch.no_grad():
        bound = float(m.elbo_analytic(small)["elbo"]) / n
    ll = log_likelihood(m, small, k=2000, generator=0, progress=False)
    assert abs(ll["mean_log_likelihood"] - log_p) < 4 * ll["se_mean_mc"] + 1e-4
    assert bound < ll["mean_log_likelihood"]
