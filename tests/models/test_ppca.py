"""Probabilistic PCA: maximum likelihood against brute force, exact densities and posteriors.

Ground truth comes from outside the code under test: random perturbations and gradient
ascent (torch autograd, L-BFGS) on log p(X), scipy's dense multivariate normal, Bayes'
rule on the dense joint Gaussian of (z, x), and scikit-learn's ``PCA.score``, which
scores the same model with the covariance normalised by N - 1; the exact difference
that makes is pinned here with numbers.
"""

import math
import warnings

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn.decomposition import PCA

from elbolab.errors import ConfigError, DataError
from elbolab.models.ppca import PPCA, marginal_log_prob, posterior

D, Q, N = 5, 2, 200


def _data(n=N, d=D, q=Q, sigma2=0.3, seed=0):
    """Data from a pPCA model with a non-zero mean and well separated eigenvalues."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((d, q)) * np.linspace(2.0, 1.0, q)
    mean = rng.standard_normal(d)
    return PPCA.from_params(mean, W, sigma2).sample(n, seed=rng)


def _closed_form_per_datum(lam, q, sigma2):
    """Tipping & Bishop's maximised log-likelihood per datum (uses tr(C^-1 S) = D)."""
    d = lam.shape[0]
    return -0.5 * (
        d * math.log(2 * math.pi) + np.log(lam[:q]).sum() + (d - q) * math.log(sigma2) + d
    )


@pytest.fixture(scope="module")
def fitted():
    X = _data()
    return X, PPCA(Q).fit(X)


def test_fitted_parameters_follow_tipping_bishop(fitted):
    X, m = fitted
    S = np.cov(X.T, bias=True)  # normalised by N
    lam = np.linalg.eigvalsh(S)[::-1]
    np.testing.assert_allclose(m.eigenvalues_, lam, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(m.mean_, X.mean(0), rtol=0, atol=1e-14)
    assert m.sigma2_ == pytest.approx(lam[Q:].mean(), rel=1e-12)
    # W = U_q (L_q - sigma^2)^{1/2}, R = I: orthogonal columns, W W^T from S's top space.
    WtW = m.components_.T @ m.components_
    np.testing.assert_allclose(WtW, np.diag(lam[:Q] - m.sigma2_), atol=1e-12)
    np.testing.assert_allclose(S @ m.components_, m.components_ * lam[:Q], atol=1e-12)
    assert m.components_.shape == (D, Q) and not m.sigma2_clipped_


def test_score_is_the_closed_form_maximum(fitted):
    X, m = fitted
    ll = m.score_samples(X)
    assert ll.shape == (N,)
    assert m.score(X) == pytest.approx(
        _closed_form_per_datum(m.eigenvalues_, Q, m.sigma2_), rel=1e-13
    )
    assert m.log_likelihood(X) == pytest.approx(ll.sum(), rel=1e-14)


def _total_ll(X, mean, W, sigma2):
    return float(
        marginal_log_prob(
            torch.from_numpy(X), torch.from_numpy(mean), torch.from_numpy(W), sigma2
        ).sum()
    )


def test_ml_beats_random_perturbations_and_is_rotation_invariant(fitted):
    X, m = fitted
    best = m.log_likelihood(X)
    rng = np.random.default_rng(1)
    scale = np.abs(m.components_).mean()
    worse = []
    for _ in range(300):
        step = 10.0 ** rng.uniform(-4, 0)  # from tiny to large perturbations
        W = m.components_ + step * scale * rng.standard_normal((D, Q))
        s2 = m.sigma2_ * math.exp(step * rng.standard_normal())
        mean = m.mean_ + step * 0.1 * rng.standard_normal(D)
        worse.append(_total_ll(X, mean, W, s2))
    assert max(worse) < best
    # log p depends on W only through W W^T: W R scores the same for any rotation R.
    R, _ = np.linalg.qr(rng.standard_normal((Q, Q)))
    assert _total_ll(X, m.mean_, m.components_ @ R, m.sigma2_) == pytest.approx(best, rel=1e-13)


def test_ml_equals_gradient_ascent_on_log_p(fitted):
    X, m = fitted
    x = torch.from_numpy(X)
    g = torch.Generator().manual_seed(2)
    mean = torch.zeros(D, dtype=torch.float64, requires_grad=True)
    W = torch.randn(D, Q, generator=g, dtype=torch.float64).requires_grad_()
    log_s2 = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS(
        [mean, W, log_s2],
        lr=1,
        max_iter=300,
        tolerance_grad=1e-12,
        tolerance_change=1e-15,
        history_size=50,
        line_search_fn="strong_wolfe",
    )

    def closure():
        opt.zero_grad()
        loss = -marginal_log_prob(x, mean, W, torch.exp(log_s2)).mean()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        found = float(marginal_log_prob(x, mean, W, torch.exp(log_s2)).mean())
    assert found == pytest.approx(m.score(X), abs=1e-6)
    assert found <= m.score(X) + 1e-10  # the closed form is the maximum, not just near it
    assert math.exp(log_s2.item()) == pytest.approx(m.sigma2_, rel=1e-4)


def test_sklearn_score_differs_by_the_n_minus_1_normalisation(fitted):
    """scikit-learn's PCA normalises S by N - 1: eigenvalues and noise variance are
    c = N/(N-1) times ours, so its covariance is c C and its score is lower by exactly
    (D/2)(log c + 1/c - 1) nats per datum. For this data (D=5, N=200): 3.135e-5 nats.
    (sklearn's default *randomized* solver adds its own error: on 1000 MNIST images,
    q=200, it scored ~2 nats per datum below the maximum; svd_solver="full" is exact.)"""
    X, m = fitted
    sk = PCA(n_components=Q, svd_solver="full").fit(X)
    c = N / (N - 1)
    assert sk.noise_variance_ == pytest.approx(c * m.sigma2_, rel=1e-12)
    np.testing.assert_allclose(sk.get_covariance(), c * m.get_covariance(), rtol=1e-11)
    expected = 0.5 * D * (math.log(c) + 1 / c - 1)
    assert expected == pytest.approx(3.1354558e-05, rel=1e-6)
    assert m.score(X) - sk.score(X) == pytest.approx(expected, rel=1e-6)
    # Per datum: log N(x; mu, C) - log N(x; mu, cC) = (D log c - (1 - 1/c) e^T C^-1 e) / 2.
    E = X - m.mean_
    quad = np.einsum("nd,nd->n", E, np.linalg.solve(m.get_covariance(), E.T).T)
    np.testing.assert_allclose(
        m.score_samples(X) - sk.score_samples(X),
        0.5 * (D * math.log(c) - (1 - 1 / c) * quad),
        rtol=1e-7,
        atol=1e-12,
    )


@pytest.mark.parametrize("d,q", [(5, 1), (12, 4), (30, 29), (784, 1), (784, 200), (784, 783)])
def test_woodbury_log_prob_equals_dense_scipy(d, q):
    rng = np.random.default_rng(d + q)
    W = rng.standard_normal((d, q)) * rng.uniform(0.1, 3.0, q)  # not orthogonal
    mean = rng.standard_normal(d)
    sigma2 = 0.05
    X = rng.standard_normal((7, d)) * 2.0
    C = W @ W.T + sigma2 * np.eye(d)
    ref = stats.multivariate_normal(mean, C).logpdf(X)
    ours = marginal_log_prob(
        torch.from_numpy(X), torch.from_numpy(mean), torch.from_numpy(W), sigma2
    ).numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-10)


def test_log_prob_for_large_d_small_q_without_dense_matrices():
    """D = 200000, q = 2: a D x D matrix would take 320 GB. Reference: the density in the
    eigenbasis of C for W = U diag(s) with orthonormal U."""
    d, q = 200_000, 2
    rng = np.random.default_rng(5)
    U, _ = np.linalg.qr(rng.standard_normal((d, q)))
    s, sigma2 = np.array([30.0, 4.0]), 0.7
    W, mean = U * s, rng.standard_normal(d)
    X = mean + rng.standard_normal((3, d))
    E = X - mean
    proj = E @ U
    quad = (E * E).sum(1) / sigma2 - (proj**2 * (s**2 / (sigma2 * (s**2 + sigma2)))).sum(1)
    logdet = np.log(s**2 + sigma2).sum() + (d - q) * math.log(sigma2)
    ref = -0.5 * (d * math.log(2 * math.pi) + logdet + quad)
    ours = marginal_log_prob(
        torch.from_numpy(X), torch.from_numpy(mean), torch.from_numpy(W), sigma2
    ).numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-12)


def test_posterior_is_bayes_rule_on_the_joint_gaussian():
    rng = np.random.default_rng(3)
    d, q = 6, 3
    W = rng.standard_normal((d, q))
    mean, sigma2 = rng.standard_normal(d), 0.4
    X = rng.standard_normal((5, d))
    # (z, x) ~ N((0, mu), [[I, W^T], [W, C]]): condition z on x with dense algebra.
    C = W @ W.T + sigma2 * np.eye(d)
    gain = np.linalg.solve(C, W).T  # W^T C^{-1}
    ref_mean = (X - mean) @ gain.T
    ref_cov = np.eye(q) - gain @ W
    m, c = posterior(torch.from_numpy(X), torch.from_numpy(mean), torch.from_numpy(W), sigma2)
    np.testing.assert_allclose(m.numpy(), ref_mean, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(c.numpy(), ref_cov, rtol=1e-11, atol=1e-13)
    est = PPCA.from_params(mean, W, sigma2)
    pm, pc = est.posterior(X)
    np.testing.assert_allclose(pm, ref_mean, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(pc, ref_cov, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(est.transform(X), pm, rtol=0)


def test_fixed_sigma2_clips_small_eigenvalues_and_maximises_over_w(fitted):
    X, m = fitted
    lam = m.eigenvalues_
    s2 = 0.5 * (lam[0] + lam[1])  # between the top two eigenvalues
    fixed = PPCA(Q, sigma2=s2).fit(X)
    assert fixed.sigma2_ == s2
    norms = np.linalg.norm(fixed.components_, axis=0)
    assert norms[0] == pytest.approx(math.sqrt(lam[0] - s2), rel=1e-12) and norms[1] == 0.0
    # Given sigma^2, W is the maximum: gradient ascent over (mu, W) does not beat it.
    x = torch.from_numpy(X)
    g = torch.Generator().manual_seed(4)
    W = torch.randn(D, Q, generator=g, dtype=torch.float64).requires_grad_()
    mean = torch.zeros(D, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS(
        [mean, W],
        max_iter=300,
        tolerance_grad=1e-12,
        tolerance_change=1e-15,
        line_search_fn="strong_wolfe",
    )

    def closure():
        opt.zero_grad()
        loss = -marginal_log_prob(x, mean, W, s2).mean()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        found = float(marginal_log_prob(x, mean, W, s2).mean())
    assert found <= fixed.score(X) + 1e-10
    assert found == pytest.approx(fixed.score(X), abs=1e-6)
    # Fixing sigma^2 at the ML value reproduces the full maximum.
    again = PPCA(Q, sigma2=m.sigma2_).fit(X)
    np.testing.assert_allclose(again.components_, m.components_, rtol=0, atol=1e-15)


def test_large_d_small_n_uses_the_svd_path():
    X = _data(n=40, d=3000, q=3, seed=6)
    m = PPCA(3).fit(X)
    Xc = X - X.mean(0)
    gram = np.linalg.eigvalsh(Xc @ Xc.T / 40)[::-1]  # the N non-zero-able eigenvalues
    np.testing.assert_allclose(m.eigenvalues_[:40], gram, rtol=1e-9, atol=1e-12)
    assert np.all(m.eigenvalues_[40:] == 0.0) and m.eigenvalues_.shape == (3000,)
    assert m.sigma2_ == pytest.approx(gram[3:].sum() / (3000 - 3), rel=1e-10)
    assert m.score(X) == pytest.approx(
        _closed_form_per_datum(m.eigenvalues_, 3, m.sigma2_), rel=1e-11
    )


def test_q_at_or_above_the_rank_clips_sigma2_with_a_warning():
    X = _data(n=4, d=6, q=2, seed=7)  # centred rank 3
    with pytest.warns(RuntimeWarning, match="clipped to the floor"):
        m = PPCA(3).fit(X)
    assert m.sigma2_clipped_ and m.sigma2_ == m.sigma2_floor_
    assert m.sigma2_floor_ == pytest.approx(1e-12 * m.eigenvalues_[0])
    assert np.all(np.isfinite(m.score_samples(X)))
    with pytest.warns(RuntimeWarning):
        m5 = PPCA(5).fit(X)  # q > N: the columns past the data's rank are zero
    assert np.all(m5.components_[:, 3:] == 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # floor 0 is the user's choice: roundoff, no warning
        raw = PPCA(3, sigma2_floor=0.0).fit(X)
    assert raw.sigma2_ == raw.sigma2_ml_ < 1e-25 * raw.eigenvalues_[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a user floor below the ML sigma^2: no warning
        PPCA(1, sigma2_floor=1e-30).fit(X)


def test_sample_is_reproducible_and_recovers_the_model():
    true = PPCA.from_params(np.array([1.0, -2.0, 0.5]), np.array([[2.0], [1.0], [0.0]]), 0.25)
    a, b = true.sample(20000, seed=8), true.sample(20000, seed=8)
    np.testing.assert_array_equal(a, b)
    refit = PPCA(1).fit(a)
    np.testing.assert_allclose(refit.get_covariance(), true.get_covariance(), atol=0.1)


def test_inputs_torch_and_float32_are_scored_in_float64(fitted):
    X, m = fitted
    np.testing.assert_allclose(m.score_samples(torch.from_numpy(X)), m.score_samples(X), rtol=0)
    X32 = X.astype(np.float32)
    m32 = PPCA(Q).fit(X32)
    assert m32.components_.dtype == np.float64
    assert m32.score(X32) == pytest.approx(
        _closed_form_per_datum(m32.eigenvalues_, Q, m32.sigma2_), rel=1e-12
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_components": 0},
        {"n_components": -1},
        {"n_components": 2.0},
        {"n_components": True},
        {"n_components": 2, "sigma2": 0.0},
        {"n_components": 2, "sigma2": float("nan")},
        {"n_components": 2, "sigma2_floor": -1.0},
    ],
)
def test_bad_settings_raise_config_error(kwargs):
    with pytest.raises(ConfigError):
        PPCA(**kwargs)


def test_bad_settings_and_data_at_fit_and_score(fitted):
    X, m = fitted
    with pytest.raises(ConfigError, match="n_components must be < D"):
        PPCA(D).fit(X)
    with pytest.raises(ConfigError, match="not fitted"):
        PPCA(2).score(X)
    for bad in (X[0], X[:1], np.full((3, D), np.nan), np.zeros((0, D)), [["a"] * D] * 3):
        with pytest.raises(DataError):
            PPCA(2).fit(bad)
    with pytest.raises(DataError, match="identical"):
        PPCA(2).fit(np.ones((10, D)))
    with pytest.raises(DataError, match="features"):
        m.score(X[:, :3])
    with pytest.raises(ConfigError):
        m.sample(0, seed=1)
