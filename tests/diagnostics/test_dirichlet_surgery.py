"""ELBO surgery of Dirichlet posteriors (LDA's q(theta_d)): brute force, identity, bounds,
the log-space sampler at tiny concentrations, blocks and input errors."""

import math

import numpy as np
import pytest
from scipy import integrate, special, stats

from elbolab.diagnostics import best_dirichlet_prior, dirichlet_surgery
from elbolab.diagnostics.surgery import _dirichlet_kl, _log_dirichlet_sample
from elbolab.errors import ConfigError

# Three documents, two topics; concentrations below 1 put density singularities on the
# boundary, as LDA's small alpha does.
GAMMA_2 = np.array([[2.0, 3.0], [0.5, 4.0], [5.0, 1.2]])
ALPHA_2 = 0.5


def _quad(f):
    # The integrands blow up like t^(c - 1) log t at the ends: integrable, split at 1/2.
    return sum(integrate.quad(f, a, b, limit=400, epsabs=1e-11)[0] for a, b in ((0, 0.5), (0.5, 1)))


def test_two_topics_match_quadrature_on_the_simplex():
    # K = 2: theta = (t, 1 - t), Dir(g) is Beta(g_1, g_2) in t; every density is on dt.
    def log_beta_pdf(t, a, b):
        return (a - 1) * math.log(t) + (b - 1) * math.log1p(-t) - special.betaln(a, b)

    def log_qbar(t):
        return special.logsumexp([log_beta_pdf(t, a, b) for a, b in GAMMA_2]) - math.log(3)

    def qbar(t):
        return math.exp(log_qbar(t))

    def log_p(t):
        return log_beta_pdf(t, ALPHA_2, ALPHA_2)

    marginal = _quad(lambda t: qbar(t) * (log_qbar(t) - log_p(t)))
    kls = [
        _quad(
            lambda t, a=a, b=b: math.exp(log_beta_pdf(t, a, b)) * (log_beta_pdf(t, a, b) - log_p(t))
        )
        for a, b in GAMMA_2
    ]
    np.testing.assert_allclose(_dirichlet_kl(GAMMA_2, np.full(2, ALPHA_2)), kls, rtol=1e-7)

    r = dirichlet_surgery(GAMMA_2, ALPHA_2, samples_per_doc=20000, seed=1)
    assert r["average_kl"] == pytest.approx(np.mean(kls), rel=1e-7)
    # Using only the own component, or forgetting log N, is off by > 0.5 nats here.
    assert abs(r["marginal_kl"] - marginal) < 4 * r["se_marginal_kl"] + 1e-6
    assert abs(r["mutual_info"] - (np.mean(kls) - marginal)) < 4 * r["se_mutual_info"] + 1e-6
    assert r["se_marginal_kl"] < 0.002 and r["se_mutual_info"] < 0.005


def test_three_topics_match_an_independent_monte_carlo():
    # An independent plain implementation: scipy's sampler and densities, the mixture
    # drawn with uniform multinomial document counts.
    gamma = np.array([[3.0, 1.0, 0.7], [0.8, 0.9, 6.0], [1.5, 4.0, 2.0]])
    alpha = np.array([0.6, 1.0, 0.9])
    rng = np.random.default_rng(7)
    m = 100_000
    counts = rng.multinomial(m, [1 / 3] * 3)
    theta = np.concatenate([rng.dirichlet(g, size=c) for g, c in zip(gamma, counts, strict=True)])
    log_q = special.logsumexp(
        [stats.dirichlet(g).logpdf(theta.T) for g in gamma], axis=0
    ) - math.log(3)
    terms = log_q - stats.dirichlet(alpha).logpdf(theta.T)
    brute, brute_se = terms.mean(), terms.std(ddof=1) / math.sqrt(m)

    r = dirichlet_surgery(gamma, alpha, samples_per_doc=30000, seed=3)
    se = math.hypot(r["se_marginal_kl"], brute_se)
    assert se < 0.005
    assert abs(r["marginal_kl"] - brute) < 4 * se


def test_identity_and_bounds():
    rng = np.random.default_rng(0)
    gamma = rng.gamma(0.5, 4.0, size=(60, 5)) + 0.02
    r = dirichlet_surgery(gamma, 0.2, samples_per_doc=20)
    assert r["average_kl_mc"] == pytest.approx(r["mutual_info"] + r["marginal_kl"], abs=1e-10)
    assert r["kl_analytic"] and r["se_average_kl"] == 0.0
    assert abs(r["average_kl"] - r["average_kl_mc"]) < 4 * r["se_average_kl_mc"]
    assert 0.0 <= r["mutual_info"] <= r["log_n"] == math.log(60)
    assert r["mi"] == r["mutual_info"] and r["n"] == 60 and r["n_samples"] == 20
    assert r["kl_per_datum"].shape == (60,) and r["mutual_info_per_datum"].shape == (60,)
    assert r["mutual_info_per_datum"].max() <= r["log_n"]


def test_mutual_info_stays_below_log_n_for_documents_far_apart():
    # Sharp posteriors at different corners: MI is log N up to rounding, never above.
    gamma = np.full((4, 4), 0.5) + 3000.0 * np.eye(4)
    r = dirichlet_surgery(gamma, 1.0, samples_per_doc=50)
    assert r["mutual_info"] <= r["log_n"]
    assert r["mutual_info"] == pytest.approx(r["log_n"], abs=1e-9)


def test_one_document_has_no_mutual_information():
    r = dirichlet_surgery(np.array([[2.0, 0.3, 5.0]]), 0.5, samples_per_doc=50)
    assert r["mutual_info"] == 0.0 and r["log_n"] == 0.0
    assert r["marginal_kl"] == pytest.approx(r["average_kl_mc"], abs=1e-12)


def test_log_space_draws_at_tiny_concentrations():
    # theta_k ~ exp(-1/0.003) ~ 1e-145 typically and below 1e-308 with probability
    # ~ 1e-308^0.003 ~ 0.12: drawing theta and taking logs would give -inf there.
    gamma = np.array([[0.003, 0.003, 2.0], [0.01, 3.0, 0.004]])
    log_theta = _log_dirichlet_sample(np.random.default_rng(5), gamma, 40000)
    assert np.isfinite(log_theta).all()
    assert (log_theta < math.log(1e-308)).mean() > 0.05
    np.testing.assert_allclose(special.logsumexp(log_theta, axis=-1), 0.0, atol=1e-12)
    # E[log theta_k] = digamma(gamma_k) - digamma(sum gamma): the draws' mean within 4 SE.
    expect = special.digamma(gamma) - special.digamma(gamma.sum(1, keepdims=True))
    se = log_theta.std(0, ddof=1) / math.sqrt(log_theta.shape[0])
    assert (np.abs(log_theta.mean(0) - expect) < 4 * se).all()

    r = dirichlet_surgery(gamma, 0.005, samples_per_doc=2000)
    for key in ("average_kl", "mutual_info", "marginal_kl", "se_marginal_kl"):
        assert math.isfinite(r[key])
    assert abs(r["average_kl"] - r["average_kl_mc"]) < 4 * r["se_average_kl_mc"]
    assert r["mutual_info"] <= r["log_n"]


def test_blocks_do_not_change_the_result():
    rng = np.random.default_rng(2)
    gamma = rng.gamma(1.0, 2.0, size=(23, 4)) + 0.05
    whole = dirichlet_surgery(gamma, 0.25, samples_per_doc=3, seed=9)
    small = dirichlet_surgery(gamma, 0.25, samples_per_doc=3, seed=9, batch_size=7, column_size=5)
    for key in ("mutual_info", "marginal_kl", "average_kl_mc"):
        assert small[key] == pytest.approx(whole[key], abs=1e-12)
    other = dirichlet_surgery(gamma, 0.25, samples_per_doc=3, seed=10)
    assert other["marginal_kl"] != whole["marginal_kl"]


@pytest.mark.parametrize(
    ("gamma", "alpha", "kwargs", "name"),
    [
        (np.array([[1.0, -0.5]]), 0.5, {}, "gamma"),
        (np.array([[1.0, np.nan]]), 0.5, {}, "gamma"),
        (np.array([1.0, 2.0]), 0.5, {}, "gamma"),
        (np.array([[1.0], [2.0]]), 0.5, {}, "gamma"),
        (np.zeros((0, 3)), 0.5, {}, "gamma"),
        (np.ones((2, 3)), np.ones(2), {}, "alpha"),
        (np.ones((2, 3)), np.array([1.0, 0.0, 1.0]), {}, "alpha"),
        (np.ones((2, 3)), -1.0, {}, "alpha"),
        (np.ones((2, 3)), 0.5, {"samples_per_doc": 0}, "samples_per_doc"),
        (np.ones((2, 3)), 0.5, {"seed": -1}, "seed"),
        (np.ones((2, 3)), 0.5, {"batch_size": 0}, "batch_size"),
    ],
)
def test_bad_input_names_the_argument(gamma, alpha, kwargs, name):
    with pytest.raises(ConfigError, match=name):
        dirichlet_surgery(gamma, alpha, **kwargs)


def test_best_dirichlet_prior_of_one_repeated_posterior_is_that_posterior():
    g = np.array([0.3, 2.0, 5.0, 0.04])
    np.testing.assert_allclose(best_dirichlet_prior(np.tile(g, (5, 1))), g, rtol=1e-9)


def test_best_dirichlet_prior_minimizes_the_average_and_marginal_kl():
    rng = np.random.default_rng(4)
    gamma = rng.gamma(0.4, 10.0, size=(300, 4)) + 0.05
    best = best_dirichlet_prior(gamma)
    # Stationary: the gradient digamma(sum alpha) - digamma(alpha_k) + s_k vanishes.
    s = (special.digamma(gamma) - special.digamma(gamma.sum(1, keepdims=True))).mean(0)
    grad = special.digamma(best.sum()) - special.digamma(best) + s
    np.testing.assert_allclose(grad, 0.0, atol=1e-9)
    kl = _dirichlet_kl(gamma, best).mean()
    for step in (np.full(4, 1.05), np.array([1.0, 0.97, 1.0, 1.02]), np.full(4, 0.9)):
        assert kl < _dirichlet_kl(gamma, best * step).mean()
    # The mutual information is the prior's no matter which: the marginal KL falls by
    # exactly what the average KL falls (same draws).
    sym = dirichlet_surgery(gamma, 0.5, samples_per_doc=5, seed=1)
    fit = dirichlet_surgery(gamma, best, samples_per_doc=5, seed=1)
    assert fit["mutual_info"] == sym["mutual_info"]
    drop = sym["average_kl_mc"] - fit["average_kl_mc"]
    assert sym["marginal_kl"] - fit["marginal_kl"] == pytest.approx(drop, abs=1e-10)
    assert sym["average_kl"] - fit["average_kl"] > 0


def test_best_dirichlet_prior_refuses_bad_gamma():
    with pytest.raises(ConfigError, match="gamma"):
        best_dirichlet_prior(np.array([[1.0, 0.0]]))
