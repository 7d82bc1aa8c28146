"""LDA by batch CAVI: Dirichlet expectations, the full ELBO, monotonicity, recovery, resume.

Closed forms are checked against scipy and Monte Carlo, the bound against scikit-learn's
``_approx_bound`` on the same (lambda, gamma), and the fit against a corpus drawn from
LDA with known topics. Everything runs on tiny synthetic corpora made here; the one test
on real AP data skips without ``$ELBOLAB_DATA`` and fails when it is set but wrong.
"""

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy import special, stats
from scipy.optimize import linear_sum_assignment

from elbolab.data import Corpus, lda_corpus, load_ap
from elbolab.errors import ConfigError, DataError
from elbolab.models import _lda_kernels as kernels
from elbolab.models.lda import LDA, LDAState, dirichlet_expectation, elbo

WIDE = np.concatenate([np.logspace(-8, 6, 1401), np.linspace(0.05, 12.0, 240)])


@pytest.fixture(scope="module")
def small():
    """A small synthetic corpus (60 docs, 40 words, Poisson lengths) and its priors."""
    corpus, _, _ = lda_corpus(60, 40, 4, doc_length=30.0, alpha=0.2, eta=0.1, seed=1)
    return corpus, 4, 0.2, 0.1


@pytest.fixture(scope="module")
def fitted(small):
    corpus, k, alpha, eta = small
    return LDA(n_topics=k, alpha=alpha, eta=eta, max_iter=8, tol=0, seed=3).fit(corpus)


def _topics_model(lam, alpha, eta):
    """An LDA that scores with the given topics lambda (K, V) held fixed."""
    model = LDA(n_topics=lam.shape[0], alpha=alpha, eta=eta)
    model.components_, model.alpha_, model.eta_ = np.asarray(lam, dtype=np.float64), alpha, eta
    return model


def _hellinger(p, q):
    """Pairwise Hellinger distances between the rows of p (K, V) and q (L, V): (K, L)."""
    return np.sqrt(0.5 * ((np.sqrt(p)[:, None, :] - np.sqrt(q)[None]) ** 2).sum(-1))


# --------------------------------------------------------------- Dirichlet expectations
def test_torch_dirichlet_expectation_matches_scipy_psi():
    # Rows of 3 concentrations spanning 1e-8 .. 1e6, so psi(sum) is tested over the range too.
    rng = np.random.default_rng(0)
    alpha = rng.permutation(WIDE)[: 3 * (WIDE.size // 3)].reshape(-1, 3)
    got = dirichlet_expectation(torch.from_numpy(alpha)).numpy()
    want = special.psi(alpha) - special.psi(alpha.sum(-1, keepdims=True))
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(
        torch.digamma(torch.from_numpy(WIDE)).numpy(), special.psi(WIDE), rtol=1e-14, atol=1e-14
    )


def test_numba_digamma_matches_scipy_psi():
    got = np.array([kernels.digamma(x) for x in WIDE])
    want = special.psi(WIDE)
    # The asymptotic series is cut after the x^-10 term; the next one, 691 / (32760 x^12),
    # is ~1e-11 at x = 6 where the recurrence hands over, so that is the absolute accuracy.
    err = np.abs(got - want) / np.maximum(1.0, np.abs(want))
    assert err.max() < 2e-11, (err.max(), WIDE[err.argmax()])


@pytest.mark.parametrize("alpha", [[0.5, 1.0, 2.0, 7.0], [3.0, 0.8], [1.0] * 6])
def test_expected_log_theta_matches_monte_carlo(alpha):
    alpha = np.array(alpha)
    samples = stats.dirichlet.rvs(alpha, size=200_000, random_state=np.random.RandomState(7))
    logs = np.log(samples)
    mc = logs.mean(0)
    se = logs.std(0, ddof=1) / math.sqrt(len(logs))
    exact = dirichlet_expectation(torch.from_numpy(alpha)).numpy()
    assert np.all(np.abs(mc - exact) < 5 * se), (mc, exact, se)


def test_dirichlet_expectation_gradient_is_trigamma():
    # d E[log x_k] / d alpha_j = delta_jk psi'(alpha_k) - psi'(alpha_0)
    alpha = torch.tensor([0.3, 1.5, 8.0], dtype=torch.float64, requires_grad=True)
    jac = torch.autograd.functional.jacobian(dirichlet_expectation, alpha).numpy()
    a = alpha.detach().numpy()
    want = np.diag(special.polygamma(1, a)) - special.polygamma(1, a.sum())
    np.testing.assert_allclose(jac, want, rtol=1e-8)  # torch trigamma: ~5e-10


# ----------------------------------------------------------------------------- the ELBO
def test_elbo_matches_monte_carlo_on_a_tiny_corpus():
    # The bound by sampling theta ~ q(theta), beta ~ q(beta) and summing over z exactly.
    counts = np.array([[3, 0, 1, 2], [0, 4, 1, 0], [1, 1, 0, 5]])
    alpha, eta = 0.7, 0.4
    rng = np.random.default_rng(2)
    gamma = rng.uniform(0.5, 4.0, (3, 2))
    lam = rng.uniform(0.5, 6.0, (2, 4))
    exact = elbo(
        sp.csr_matrix(counts),
        torch.from_numpy(lam)[None],
        torch.from_numpy(gamma)[None],
        alpha,
        eta,
    ).item()

    elog_theta = special.psi(gamma) - special.psi(gamma.sum(1, keepdims=True))
    elog_beta = special.psi(lam) - special.psi(lam.sum(1, keepdims=True))
    log_phi = elog_theta[:, None, :] + elog_beta.T[None]  # (D, V, K)
    log_phi -= special.logsumexp(log_phi, -1, keepdims=True)
    phi = np.exp(log_phi)

    n = 100_000
    rs = np.random.RandomState(11)
    theta = np.stack([stats.dirichlet.rvs(g, size=n, random_state=rs) for g in gamma], 1)
    beta = np.stack([stats.dirichlet.rvs(row, size=n, random_state=rs) for row in lam], 1)
    log_theta, log_beta = np.log(theta), np.log(beta)  # (n, D, K), (n, K, V)
    # sum_{d,w} n_dw sum_k phi_dwk (log theta_dk + log beta_kw - log phi_dwk)
    words = np.einsum("dw,dwk,ndk->n", counts, phi, log_theta)
    words += np.einsum("dw,dwk,nkw->n", counts, phi, log_beta)
    words -= np.einsum("dw,dwk,dwk->", counts, phi, log_phi)
    sym_theta, sym_beta = np.full(2, alpha), np.full(4, eta)
    priors = sum(stats.dirichlet.logpdf(theta[:, d].T, sym_theta) for d in range(3))
    priors += sum(stats.dirichlet.logpdf(beta[:, k].T, sym_beta) for k in range(2))
    entropy = sum(stats.dirichlet.logpdf(theta[:, d].T, gamma[d]) for d in range(3))
    entropy += sum(stats.dirichlet.logpdf(beta[:, k].T, lam[k]) for k in range(2))
    draws = words + priors - entropy
    se = draws.std(ddof=1) / math.sqrt(n)
    assert abs(draws.mean() - exact) < 5 * se, (draws.mean(), exact, se)


def _sklearn_with_topics(lam, alpha, eta):
    """scikit-learn's LDA holding our lambda, with what its ``_approx_bound`` reads."""
    from sklearn.decomposition import LatentDirichletAllocation

    sk = LatentDirichletAllocation(
        n_components=lam.shape[0], doc_topic_prior=alpha, topic_word_prior=eta
    )
    sk.components_ = lam.copy()
    elog = special.psi(lam) - special.psi(lam.sum(1, keepdims=True))
    sk.exp_dirichlet_component_ = np.exp(elog)
    sk.doc_topic_prior_, sk.topic_word_prior_ = alpha, eta
    sk.n_features_in_ = lam.shape[1]
    return sk


def test_elbo_agrees_with_sklearn_approx_bound(small, fitted):
    pytest.importorskip("sklearn")
    corpus, _, alpha, eta = small
    x_float = corpus.counts.astype(np.float64)
    sk = _sklearn_with_topics(fitted.components_, alpha, eta)
    theirs = sk._approx_bound(x_float, fitted.gamma_, sub_sampling=False)
    reference = elbo(
        corpus,
        torch.from_numpy(fitted.components_)[None],
        torch.from_numpy(fitted.gamma_)[None],
        alpha,
        eta,
    )
    assert reference.shape == (1,)
    assert fitted.elbo_ == pytest.approx(theirs, rel=1e-9)
    assert reference.item() == pytest.approx(theirs, rel=1e-9)
    assert reference.item() == pytest.approx(fitted.elbo_, rel=1e-11)
    # score: gamma re-inferred with the topics fixed, same bound for that gamma.
    gamma = fitted.transform(corpus)
    assert fitted.score(corpus) == pytest.approx(
        sk._approx_bound(x_float, gamma, sub_sampling=False), rel=1e-9
    )


def test_elbo_reference_is_batched_over_restarts(small):
    corpus, k, alpha, eta = small
    model = LDA(n_topics=k, alpha=alpha, eta=eta, max_iter=4, tol=0, n_restarts=3).fit(corpus)
    lam = torch.from_numpy(np.stack([r.components for r in model.restarts_]))
    gamma = torch.from_numpy(np.stack([r.gamma for r in model.restarts_]))
    got = elbo(corpus, lam, gamma, alpha, eta).numpy()
    np.testing.assert_allclose(got, [r.elbo for r in model.restarts_], rtol=1e-11)


def test_e_step_is_a_stationary_point_of_the_reference_elbo(small, fitted):
    # With a tight E-step tolerance, gamma from the compiled kernel zeroes the gradient of
    # the torch bound with respect to gamma: kernel and reference optimize the same thing.
    corpus, k, alpha, eta = small
    tight = _topics_model(fitted.components_, alpha, eta)
    tight.e_step_tol, tight.max_e_step_iter = 1e-13, 100_000
    gamma = torch.tensor(tight.transform(corpus)[None], requires_grad=True)
    elbo(corpus, torch.from_numpy(fitted.components_)[None], gamma, alpha, eta).sum().backward()
    assert gamma.grad.abs().max().item() < 1e-8


def test_score_on_training_corpus_is_close_to_elbo(small, fitted):
    corpus = small[0]
    assert fitted.score(corpus) == pytest.approx(fitted.elbo_, rel=1e-3)


# ------------------------------------------------------------------------ monotone CAVI
@pytest.mark.parametrize(
    "n_docs, n_words, n_topics, length, alpha, eta",
    [
        (80, 60, 5, 20.0, 0.01, 0.01),  # small priors
        (40, 50, 30, 10, 0.01, 0.01),  # K large relative to the data
        (30, 200, 40, 15.0, 0.05, 0.5),  # more topics than there is data for
        (80, 60, 10, 20.0, 1.0, 1.0),
        (100, 30, 3, 50, 3.0, 0.01),
    ],
)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_history_never_decreases(n_docs, n_words, n_topics, length, alpha, eta, seed):
    corpus, _, _ = lda_corpus(
        n_docs, n_words, min(n_topics, 10), doc_length=length, alpha=0.1, eta=0.05, seed=seed
    )
    model = LDA(
        n_topics=n_topics, alpha=alpha, eta=eta, max_iter=60, tol=0, n_restarts=2, seed=seed
    ).fit(corpus)
    assert len(model.restarts_) == 2
    for restart in model.restarts_:
        h = restart.history
        # tol=0 can still stop early: once both restarts sit at a fixed point, rounding
        # makes the relative gain of some iteration negative.
        assert h.shape == (model.n_iter_,) and np.all(np.isfinite(h))
        # Non-decreasing up to rounding in the last bits of a sum over the corpus.
        assert np.all(np.diff(h) >= -1e-12 * np.abs(h[1:])), np.diff(h).min()
        assert restart.elbo == h[-1]


# ----------------------------------------------------------------------- known topics
@pytest.mark.parametrize("seed", [0, 1])
def test_recovers_known_topics_up_to_permutation(seed):
    # 1000 documents x 100 tokens from 5 sparse topics over 100 words (true topics are
    # >= 0.75 apart in Hellinger distance). From a near-uniform start a single CAVI run
    # still merges two topics in about a quarter of corpora (a genuine local optimum:
    # starting from the truth gives a higher ELBO, and scikit-learn from the same start
    # fails alike), so take the best of 5 restarts; in 60 corpora tried this way the worst
    # matched distance was 0.072.
    corpus, truth, _ = lda_corpus(1000, 100, 5, doc_length=100, alpha=0.1, eta=0.05, seed=seed)
    true_sep = _hellinger(truth, truth) + np.eye(5)
    assert true_sep.min() > 0.75
    model = LDA(n_topics=5, alpha=0.1, eta=0.05, max_iter=300, n_restarts=5, seed=seed)
    model.fit(corpus)
    est = model.components_ / model.components_.sum(1, keepdims=True)
    dist = _hellinger(truth, est)
    rows, cols = linear_sum_assignment(dist)
    assert dist[rows, cols].max() < 0.12, dist[rows, cols]


# --------------------------------------------------------------------------- restarts
def test_restarts_are_independent_of_their_number(small):
    corpus, k, alpha, eta = small
    # tol > 0: restarts stop one by one, each at its own convergence.
    many = LDA(n_topics=k, alpha=alpha, eta=eta, max_iter=40, tol=1e-4, n_restarts=3, seed=5)
    many.fit(corpus)
    one = LDA(n_topics=k, alpha=alpha, eta=eta, max_iter=40, tol=1e-4, n_restarts=1, seed=5)
    one.fit(corpus)
    assert len(many.restarts_) == 3 and len(one.restarts_) == 1
    finals = [r.elbo for r in many.restarts_]
    assert many.best_ == int(np.argmax(finals))
    assert many.elbo_ == max(finals)
    best = many.restarts_[many.best_]
    np.testing.assert_array_equal(many.components_, best.components)
    np.testing.assert_array_equal(many.gamma_, best.gamma)
    np.testing.assert_array_equal(many.history_, best.history)
    r0 = many.restarts_[0]
    np.testing.assert_array_equal(r0.components, one.components_)
    np.testing.assert_array_equal(r0.gamma, one.gamma_)
    np.testing.assert_array_equal(r0.history, one.history_)
    # The restarts start apart and end apart.
    assert not np.allclose(many.restarts_[1].components, r0.components)


def test_one_topic_fits_to_the_exact_log_marginal_likelihood(small):
    # K = R = 1 used to hand the E-step a read-only gamma (numba TypingError).
    corpus, _, alpha, eta = small
    one = LDA(n_topics=1, alpha=alpha, eta=eta, max_iter=10, tol=1e-9, seed=2).fit(corpus)
    # With one topic theta is a point mass and phi = 1, so the first M-step gives the exact
    # posterior lambda = eta + n_w (n_w: word w's count over the corpus), the bound is
    # tight and equals log p(w) of the Dirichlet-multinomial:
    # log B(eta + n) - log B(eta), B(a) = prod Gamma(a_w) / Gamma(sum a_w).
    n = np.asarray(corpus.counts.sum(0)).ravel().astype(np.float64)
    n_words = n.size
    exact = (
        special.gammaln(n_words * eta)
        - n_words * special.gammaln(eta)
        + special.gammaln(eta + n).sum()
        - special.gammaln(n_words * eta + n.sum())
    )
    np.testing.assert_allclose(one.components_, (eta + n)[None], rtol=1e-12)
    assert one.elbo_ == pytest.approx(exact, rel=1e-12)
    np.testing.assert_allclose(one.transform(corpus), alpha + corpus.doc_lengths[:, None])
    # The same restart fitted beside another gives the same result.
    two = LDA(n_topics=1, alpha=alpha, eta=eta, max_iter=10, tol=1e-9, n_restarts=2, seed=2)
    two.fit(corpus)
    np.testing.assert_array_equal(two.restarts_[0].components, one.components_)
    np.testing.assert_array_equal(two.restarts_[0].history, one.history_)


# ------------------------------------------------------------------- inputs and outputs
def test_corpus_and_sparse_inputs_give_identical_fits(small):
    corpus, k, alpha, eta = small
    fits = [
        LDA(n_topics=k, alpha=alpha, eta=eta, max_iter=5, tol=0).fit(x)
        for x in (corpus, corpus.counts, corpus.counts.astype(np.float64).tocoo())
    ]
    for other in fits[1:]:
        np.testing.assert_array_equal(other.components_, fits[0].components_)
        np.testing.assert_array_equal(other.gamma_, fits[0].gamma_)
        np.testing.assert_array_equal(other.history_, fits[0].history_)


def test_transform_shapes_and_positivity(small, fitted):
    corpus, k, _, _ = small
    gamma = fitted.transform(corpus)
    assert gamma.shape == (corpus.n_docs, k) and np.all(gamma > 0)
    new, _, _ = lda_corpus(7, corpus.n_words, 3, doc_length=12, seed=9)
    gamma_new = fitted.transform(new.counts)
    assert gamma_new.shape == (7, k) and np.all(gamma_new > 0)
    # gamma sums to alpha K + N_d (every token's phi sums to one).
    np.testing.assert_allclose(gamma_new.sum(1), fitted.alpha_ * k + new.doc_lengths, rtol=1e-10)
    with pytest.raises(DataError, match="words"):
        fitted.transform(sp.csr_matrix(np.ones((2, corpus.n_words + 1))))


def test_completion_perplexity():
    corpus, _, _ = lda_corpus(400, 80, 4, doc_length=60, alpha=0.1, eta=0.05, seed=4)
    train, test = corpus.train_test_split(0.25, seed=0)
    observed, heldout = test.completion_split(0.5, seed=1)
    model = LDA(n_topics=4, alpha=0.1, eta=0.05, max_iter=50, n_restarts=2).fit(train)
    result = model.completion_perplexity(observed, heldout)
    assert set(result) == {
        "log_likelihood",
        "n_tokens",
        "per_token",
        "n_docs",
        "log_base",
        "perplexity",
    }
    assert result["n_tokens"] == heldout.n_tokens
    assert result["n_docs"] == test.n_docs and result["log_base"] == "e"
    assert result["per_token"] == pytest.approx(result["log_likelihood"] / heldout.n_tokens)
    assert result["perplexity"] == pytest.approx(math.exp(-result["per_token"]), rel=1e-12)
    assert 1.0 < result["perplexity"] < corpus.n_words
    lam = np.random.default_rng(0).gamma(100.0, 0.01, model.components_.shape)
    random_topics = _topics_model(lam, 0.1, 0.05).completion_perplexity(observed, heldout)
    assert result["perplexity"] < 0.8 * random_topics["perplexity"]
    # The log-likelihood variant has the same numbers, without perplexity.
    ll = model.completion_log_likelihood(observed.counts, heldout.counts)
    assert ll == {key: value for key, value in result.items() if key != "perplexity"}


# ---------------------------------------------------------------------------- resume
@pytest.mark.parametrize("n_restarts", [1, 2])
def test_resume_from_callback_state_is_bit_identical(small, n_restarts):
    corpus, k, alpha, eta = small
    params = dict(n_topics=k, alpha=alpha, eta=eta, max_iter=12, tol=0, n_restarts=n_restarts)
    captured = {}

    def callback(iteration, bound, state):
        assert bound.shape == (n_restarts,)
        assert state.history.shape == (iteration, n_restarts)
        if iteration == 5:
            captured["state"] = state

    full = LDA(**params).fit(corpus, callback=callback)
    state = captured["state"]
    assert state.lam.shape == (n_restarts, k, corpus.n_words)
    assert state.gamma.shape == (n_restarts, corpus.n_docs, k) and not state.converged.any()
    # The callback's state is a snapshot: later iterations did not write into it.
    np.testing.assert_array_equal(state.history[:, full.best_], full.history_[:5])
    assert not np.array_equal(state.lam[full.best_], full.components_)

    resumed = LDA(**params).fit(corpus, state=state)
    assert resumed.n_iter_ == full.n_iter_ == 12
    np.testing.assert_array_equal(resumed.history_, full.history_)
    np.testing.assert_array_equal(resumed.components_, full.components_)
    np.testing.assert_array_equal(resumed.gamma_, full.gamma_)
    for a, b in zip(resumed.restarts_, full.restarts_, strict=True):
        np.testing.assert_array_equal(a.history, b.history)


def _state(lam_shape, gamma_shape, n_restarts=1):
    return LDAState(
        np.ones(lam_shape),
        np.ones(gamma_shape),
        np.zeros((0, n_restarts)),
        np.zeros(n_restarts, dtype=int),
        np.zeros(n_restarts, dtype=bool),
    )


@pytest.mark.parametrize("which", ["topics", "gamma restarts", "gamma documents"])
def test_state_with_wrong_shapes_is_rejected(small, which):
    # A gamma that disagrees with lambda or the corpus once overran the kernels' buffers.
    corpus, k, _, _ = small
    d, v = corpus.n_docs, corpus.n_words
    bad = {
        "topics": _state((1, k + 1, v), (1, d, k + 1)),
        "gamma restarts": _state((1, k, v), (2, d, k)),
        "gamma documents": _state((1, k, v), (1, 5000, k)),
    }[which]
    with pytest.raises(ConfigError, match="shape"):
        LDA(n_topics=k).fit(corpus, state=bad)


def test_converged_state_without_history_is_rejected(small):
    corpus, k, _, _ = small
    state = LDA(n_topics=k).initial_state(corpus)
    state.converged[:] = True
    with pytest.raises(ConfigError, match="no iterations"):
        LDA(n_topics=k).fit(corpus, state=state)


def test_fit_leaves_the_callers_matrix_alone(small):
    corpus, k, _, _ = small
    X = corpus.counts.astype(np.float64).tocsr()
    X.data[0] = 0.0  # an explicit zero that cleaning would remove
    before = (X.indptr.copy(), X.indices.copy(), X.data.copy())
    LDA(n_topics=k, max_iter=2).fit(X)
    for a, b in zip(before, (X.indptr, X.indices, X.data), strict=True):
        np.testing.assert_array_equal(a, b)


def test_tol_zero_runs_max_iter(small):
    corpus, k, _, _ = small
    assert LDA(n_topics=k, max_iter=25, tol=0).fit(corpus).n_iter_ == 25


# ---------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"n_topics": 0}, "n_topics"),
        ({"n_topics": 2.5}, "n_topics"),
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": -1.0}, "alpha"),
        ({"eta": float("nan")}, "eta"),
        ({"eta": float("inf")}, "eta"),
        ({"n_restarts": 0}, "n_restarts"),
        ({"n_restarts": 2.5}, "n_restarts"),
        ({"n_topics": True}, "n_topics"),
        ({"max_iter": 0}, "max_iter"),
        ({"max_iter": 2.5}, "max_iter"),
    ],
)
def test_bad_settings_raise_config_error(small, kwargs, name):
    with pytest.raises(ConfigError, match=name):
        LDA(**{"n_topics": 3, **kwargs}).fit(small[0])


@pytest.mark.parametrize(
    "counts",
    [
        sp.csr_matrix(np.array([[1, -1, 0], [0, 2, 1]])),
        sp.csr_matrix(np.array([[1.0, 0.5, 0.0], [0.0, 2.0, 1.0]])),
        np.array([[1.0, np.nan, 0.0], [0.0, 2.0, 1.0]]),
    ],
    ids=["negative", "fractional", "nan"],
)
def test_bad_counts_raise_data_error(counts):
    with pytest.raises(DataError, match="non-negative integers"):
        LDA(n_topics=2).fit(counts)


def test_unfitted_model_refuses_to_score(small):
    with pytest.raises(ConfigError, match=r"LDA\.score: this LDA is not fitted yet: call fit"):
        LDA(n_topics=2).score(small[0])
    with pytest.raises(ConfigError, match=r"LDA\.transform: .*not fitted.*call fit first"):
        LDA(n_topics=2).transform(small[0])
    with pytest.raises(ConfigError, match=r"LDA\.merged: fits\[0\] is not fitted.*call fit first"):
        LDA.merged([LDA(n_topics=2)])


# ------------------------------------------------------------------------ real data
def test_ap_five_topics_five_iterations(real_data):
    ap = load_ap(real_data("ap"))
    assert isinstance(ap, Corpus)
    model = LDA(n_topics=5, max_iter=5, tol=0).fit(ap)
    per_token = model.history_ / ap.n_tokens
    assert per_token.shape == (5,) and np.all(np.isfinite(per_token))
    assert np.all(np.diff(model.history_) >= 0)
    assert np.all((per_token > -9.5) & (per_token < -7.5)), per_token


# --------------------------------------------------------------- the shared kernels
def test_m_step_statistics_kernel_is_dense_phi(small, fitted):
    """sufficient_stats (the M-step, shared by LDA and LDAObjective) against phi formed
    densely: s_kw = sum_d n_dw phi_dwk, phi_dwk proportional to exp(E[log theta_dk] +
    E[log beta_kw])."""
    from elbolab.models.lda import _as_csr, _columns, _topics

    corpus, k, alpha, eta = small
    X = _as_csr(corpus)
    rng = np.random.default_rng(5)
    lam0, gamma0 = fitted.components_, fitted.gamma_
    lam = lam0[None] * np.exp(0.3 * rng.standard_normal((2, *lam0.shape)))
    gamma = gamma0[None] * np.exp(0.3 * rng.standard_normal((2, *gamma0.shape)))
    beta, _ = _topics(lam, eta)
    ratio = np.empty((2, X.nnz))
    kernels.doc_terms(X.indptr, X.indices, X.data, beta, gamma, alpha, ratio)
    got = np.empty_like(lam)
    kernels.sufficient_stats(*_columns(X), ratio, gamma, beta, got)
    dense = X.toarray()
    for r in range(2):
        elog_theta = special.psi(gamma[r]) - special.psi(gamma[r].sum(1, keepdims=True))
        elog_beta = special.psi(lam[r]) - special.psi(lam[r].sum(1, keepdims=True))
        log_phi = elog_theta[:, None, :] + elog_beta.T[None]  # (D, V, K)
        phi = np.exp(log_phi - special.logsumexp(log_phi, -1, keepdims=True))
        want = np.einsum("dv,dvk->kv", dense, phi)
        np.testing.assert_allclose(got[r], want, rtol=1e-10, atol=1e-12)


def test_completion_kernel_is_the_posterior_mean_formula(small, fitted):
    corpus, k, alpha, eta = small
    X = sp.csr_matrix(corpus.counts, dtype=np.float64)
    lam, gamma = fitted.components_, fitted.gamma_
    got = kernels.completion_terms(X.indptr, X.indices, X.data, gamma[None], lam[None])[0]
    theta = gamma / gamma.sum(1, keepdims=True)
    beta = lam / lam.sum(1, keepdims=True)
    want = (X.toarray() * np.log(theta @ beta)).sum(1)
    np.testing.assert_allclose(got, want, rtol=1e-12)
