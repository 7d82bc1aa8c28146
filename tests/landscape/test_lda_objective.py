"""LDAObjective: LDA's ELBO on flat vectors, profile (envelope gradient) and full modes.

Ground truth is elbolab's own LDA: the profile value at fitted topics is ``LDA.score``,
the full-mode value at the optimal phi is the closed-form bound of the torch reference
``elbo()`` (and ``elbo_``), the envelope gradient is autograd of that reference with
gamma held at its optimum, and finite differences of the profile value. Everything runs
on tiny synthetic corpora drawn here.
"""

import numpy as np
import pytest
import torch
from scipy import special

from elbolab.data import lda_corpus
from elbolab.errors import ConfigError, DataError
from elbolab.landscape import Optimizer, align, apply_permutation, neb
from elbolab.landscape.lda_objective import LDAObjective
from elbolab.models._lda_kernels import trigamma
from elbolab.models.lda import LDA, elbo

K, ALPHA, ETA = 4, 0.2, 0.1


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def corpus():
    return lda_corpus(60, 40, K, doc_length=30.0, alpha=ALPHA, eta=ETA, seed=1)[0]


@pytest.fixture(scope="module")
def fitted(corpus):
    """Two CAVI optima (restarts) of the small corpus."""
    return LDA(n_topics=K, alpha=ALPHA, eta=ETA, max_iter=30, tol=0, n_restarts=2, seed=3).fit(
        corpus
    )


@pytest.fixture(scope="module")
def profile(corpus):
    return LDAObjective(corpus, K, ALPHA, ETA)


@pytest.fixture(scope="module")
def full(corpus):
    return LDAObjective(corpus, K, ALPHA, ETA, mode="full")


def _off_optimum(obj, lam, seed=0, scale=0.3):
    """log lambda moved off the optimum, so that the gradient is not ~0."""
    rng = np.random.default_rng(seed)
    return obj.to_vector(lam * np.exp(scale * rng.standard_normal(lam.shape)))


def _value_and_grad(obj, x):
    x = x.detach().clone().requires_grad_(True)
    values = obj(x)
    (grad,) = torch.autograd.grad(values.sum(), x)
    return values.detach(), grad


def _reference(corpus, log_lam, gamma):
    """Torch reference ELBO and its gradient w.r.t. log lambda, gamma held fixed."""
    log_lam = log_lam.detach().clone().requires_grad_(True)
    value = elbo(corpus, log_lam.exp(), gamma, ALPHA, ETA)
    (grad,) = torch.autograd.grad(value.sum(), log_lam)
    return value.detach(), grad


# --------------------------------------------------------------------------- values
def test_profile_value_is_lda_score(corpus, fitted, profile):
    for restart in fitted.restarts_:
        model = LDA(n_topics=K, alpha=ALPHA, eta=ETA)
        model.components_, model.alpha_, model.eta_ = restart.components, ALPHA, ETA
        value = float(profile(profile.to_vector(restart.components)))
        assert value == pytest.approx(model.score(corpus), rel=1e-12)
        # A fresh E-step at the final topics: elbo_ up to the E-step tolerance.
        assert value == pytest.approx(restart.elbo, rel=1e-5)


def test_trigamma_matches_scipy():
    x = np.concatenate([np.logspace(-8, 8, 801), np.linspace(0.05, 20.0, 200)])
    got = np.array([trigamma(v) for v in x])
    np.testing.assert_allclose(got, special.polygamma(1, x), rtol=1e-14)


def test_topic_terms_match_scipy(fitted, profile):
    """The shared core's topic part (LDA and the objective both call it) against scipy."""
    lam = np.stack([r.components for r in fitted.restarts_])
    beta, term = profile._topics(lam)
    elog = special.psi(lam) - special.psi(lam.sum(-1, keepdims=True))
    v = lam.shape[-1]
    want_term = (
        ((ETA - lam) * elog).sum((1, 2))
        + K * (special.gammaln(v * ETA) - v * special.gammaln(ETA))
        - special.gammaln(lam.sum(-1)).sum(-1)
        + special.gammaln(lam).sum((1, 2))
    )
    np.testing.assert_allclose(beta, np.exp(elog).transpose(0, 2, 1), rtol=1e-12)
    np.testing.assert_allclose(term, want_term, rtol=1e-12)


def test_full_value_at_optimal_phi_is_the_closed_form(corpus, fitted, full, profile):
    restart = fitted.restarts_[0]
    lam, gamma = restart.components, restart.gamma
    # At (lambda, gamma) of the fit: elbo_ itself.
    assert float(full(full.to_vector(lam, gamma))) == pytest.approx(restart.elbo, rel=1e-10)
    # At any gamma, with phi optimal for it: the closed-form reference bound.
    rng = np.random.default_rng(0)
    other = gamma * np.exp(0.5 * rng.standard_normal(gamma.shape))
    want = elbo(corpus, torch.from_numpy(lam)[None], torch.from_numpy(other)[None], ALPHA, ETA)
    assert float(full(full.to_vector(lam, other))) == pytest.approx(float(want), rel=1e-9)
    # Without gamma: the E-step's gamma, i.e. the profile value.
    want = float(profile(profile.to_vector(lam)))
    assert float(full(full.to_vector(lam))) == pytest.approx(want, rel=1e-9)
    # Any other phi is lower (the optimal phi maximizes the bound).
    phi = rng.dirichlet(np.ones(K), size=full.nnz)
    assert float(full(full.to_vector(lam, gamma, phi))) < restart.elbo


# --------------------------------------------------------------------------- gradients
def test_envelope_gradient_is_reference_autograd_with_gamma_fixed(corpus, fitted, profile):
    for x in (profile.to_vector(fitted.components_), _off_optimum(profile, fitted.components_)):
        values, grad = _value_and_grad(profile, x[None])
        gamma = profile.optimal_gamma(x[None])
        ref_value, ref_grad = _reference(corpus, x.reshape(1, K, -1), gamma)
        assert float(values[0]) == pytest.approx(float(ref_value[0]), rel=1e-12)
        scale = ref_grad.abs().max()
        torch.testing.assert_close(
            grad.reshape(ref_grad.shape), ref_grad, rtol=0, atol=1e-9 * scale
        )


def test_envelope_gradient_matches_finite_differences(corpus, fitted):
    # A tight E-step: the profile is then the true max over (gamma, phi) to ~1e-10.
    obj = LDAObjective(corpus, K, ALPHA, ETA, e_step_tol=1e-12, max_e_step_iter=100_000)
    x = _off_optimum(obj, fitted.components_, seed=1)
    _, grad = _value_and_grad(obj, x[None])
    rng = np.random.default_rng(2)
    for _ in range(3):
        u = torch.from_numpy(rng.standard_normal(obj.n))
        u /= u.norm()
        h = 1e-4
        with torch.no_grad():
            fd = (obj(x + h * u) - obj(x - h * u)) / (2 * h)
        assert float(fd) == pytest.approx(float(grad[0] @ u), rel=1e-6, abs=1e-6)


def test_full_gradient_is_reference_autograd_and_zero_in_phi(corpus, fitted, full):
    rng = np.random.default_rng(3)
    lam = fitted.components_ * np.exp(0.3 * rng.standard_normal(fitted.components_.shape))
    gamma = fitted.gamma_ * np.exp(0.3 * rng.standard_normal(fitted.gamma_.shape))
    values, grad = _value_and_grad(full, full.to_vector(lam, gamma)[None])
    assert torch.isfinite(grad).all()
    blocks = full.flattener.unflatten(grad[0])
    log_lam = torch.from_numpy(np.log(lam)).requires_grad_(True)
    log_gamma = torch.from_numpy(np.log(gamma)).requires_grad_(True)
    ref = elbo(corpus, log_lam.exp()[None], log_gamma.exp()[None], ALPHA, ETA)
    ref_lam, ref_gamma = torch.autograd.grad(ref.sum(), [log_lam, log_gamma])
    assert float(values[0]) == pytest.approx(float(ref.detach()), rel=1e-9)
    for got, want in ((blocks["log_lam"], ref_lam), (blocks["log_gamma"], ref_gamma)):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-9 * want.abs().max())
    # phi is the exact maximizer for (gamma, lambda): no force on the logits.
    assert blocks["logits"].abs().max() < 1e-10


def _random_full_point(obj, fitted, seed):
    """(lambda, gamma, phi) all away from any optimum, as a full-mode vector."""
    rng = np.random.default_rng(seed)
    lam = fitted.components_ * np.exp(0.5 * rng.standard_normal(fitted.components_.shape))
    gamma = fitted.gamma_ * np.exp(0.5 * rng.standard_normal(fitted.gamma_.shape))
    phi = rng.dirichlet(np.full(K, 0.5), size=obj.nnz)
    return obj.to_vector(lam, gamma, phi)


def test_full_closed_form_gradient_is_autograd(corpus, fitted, full):
    """The compiled closed form against torch autograd of the same explicit-phi ELBO."""
    auto = LDAObjective(corpus, K, ALPHA, ETA, mode="full", full_gradient="autograd")
    x = torch.stack([_random_full_point(full, fitted, s) for s in range(3)])
    values, grad = _value_and_grad(full, x)
    ref_values, ref_grad = _value_and_grad(auto, x)
    torch.testing.assert_close(values, ref_values, rtol=1e-12, atol=0)
    for name, got in full.flattener.unflatten(grad).items():
        want = full.flattener.unflatten(ref_grad)[name]
        # torch's float64 trigamma is good to ~1e-10 relative; ours to 1e-14 (see above).
        torch.testing.assert_close(got, want, rtol=0, atol=1e-9 * float(want.abs().max()))
        assert float(want.abs().max()) > 1.0  # away from the optimum: a real gradient


def test_full_closed_form_gradient_matches_finite_differences(fitted, full):
    x = _random_full_point(full, fitted, 7)
    _, grad = _value_and_grad(full, x[None])
    rng = np.random.default_rng(8)
    h = 1e-5
    for name in ("log_lam", "log_gamma", "logits"):
        # A random direction within one block, so that each block's formula is checked.
        u = torch.zeros(full.n, dtype=torch.float64)
        blocks = full.flattener.unflatten(u)
        blocks[name].copy_(torch.from_numpy(rng.standard_normal(tuple(blocks[name].shape))))
        u = full.flattener.flatten(blocks)
        u /= u.norm()
        with torch.no_grad():
            fd = (full(x + h * u) - full(x - h * u)) / (2 * h)
        assert float(fd) == pytest.approx(float(grad[0] @ u), rel=1e-6, abs=1e-6)


def test_full_mode_chunked_equals_one_chunk(corpus, fitted, full):
    chunked = LDAObjective(corpus, K, ALPHA, ETA, mode="full", max_chunk_elements=full.nnz * K)
    a = full.to_vector(fitted.restarts_[0].components, fitted.restarts_[0].gamma)
    x = torch.stack([a, a + 0.01, a - 0.02])
    v1, g1 = _value_and_grad(full, x)
    v2, g2 = _value_and_grad(chunked, x)
    torch.testing.assert_close(v2, v1, rtol=1e-13, atol=0)
    torch.testing.assert_close(g2, g1, rtol=1e-12, atol=1e-12 * float(g1.abs().max()))
    with torch.no_grad():
        torch.testing.assert_close(chunked(x), v1, rtol=1e-13, atol=0)


def test_profile_rows_are_independent_and_memo_is_exact(corpus, fitted):
    obj = LDAObjective(corpus, K, ALPHA, ETA)
    a = obj.to_vector(fitted.restarts_[0].components)
    x = torch.stack([a, _off_optimum(obj, fitted.components_, seed=4), a + 0.1])
    values, grad = _value_and_grad(obj, x)
    again, grad_again = _value_and_grad(obj, x)  # served from the memo
    assert torch.equal(values, again) and torch.equal(grad, grad_again)
    fresh = LDAObjective(corpus, K, ALPHA, ETA)
    for i in range(3):
        v, g = _value_and_grad(fresh, x[i : i + 1])
        assert torch.equal(v[0], values[i]) and torch.equal(g[0], grad[i])
    with torch.no_grad():
        assert torch.equal(LDAObjective(corpus, K, ALPHA, ETA)(x), values)


def test_warm_start_stays_near_the_fresh_profile(corpus, fitted, profile):
    warm = LDAObjective(corpus, K, ALPHA, ETA, warm_start=True)
    x = torch.stack([profile.to_vector(r.components) for r in fitted.restarts_])
    v0, g0 = _value_and_grad(warm, x)  # nothing to start from yet: fresh
    fresh_v, fresh_g = _value_and_grad(profile, x)
    assert torch.equal(v0, fresh_v) and torch.equal(g0, fresh_g)
    moved = x + 0.05 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    v1, g1 = _value_and_grad(warm, moved)  # warm-started from the nearest rows of x
    fresh_v, fresh_g = _value_and_grad(profile, moved)
    torch.testing.assert_close(v1, fresh_v, rtol=1e-4, atol=0)  # the E-step tolerance
    # Not the same function: here a warm-started document settles in another local optimum
    # of its E-step (the value is 0.03 nats higher, even at e_step_tol=1e-12), and the
    # envelope gradient of that branch differs by ~4 % of its largest entry.
    assert torch.isfinite(g1).all()
    warm.clear_cache()
    assert torch.equal(warm(moved), fresh_v)
    with pytest.raises(ConfigError, match="warm_start"):
        LDAObjective(corpus, K, ALPHA, ETA, mode="full", warm_start=True)


# --------------------------------------------------------------------------- helpers
def test_vectors_round_trip(fitted, full, profile):
    lam, gamma = fitted.components_, fitted.gamma_
    x = full.to_vector(lam, gamma)
    assert x.shape == (full.n,) == (K * 40 + 60 * K + full.nnz * K,)
    params = full.from_vector(torch.stack([x, x]))
    np.testing.assert_allclose(params["lam"][1].numpy(), lam, rtol=1e-14)
    np.testing.assert_allclose(params["gamma"][0].numpy(), gamma, rtol=1e-14)
    np.testing.assert_allclose(params["phi"].sum(-1).numpy(), 1.0, rtol=1e-14)
    np.testing.assert_allclose(full.components(x).numpy(), lam, rtol=1e-14)
    xp = profile.to_vector(lam)
    assert xp.shape == (profile.n,) == (K * 40,)
    assert set(profile.from_vector(xp)) == {"lam"}
    np.testing.assert_allclose(profile.components(xp[None])[0].numpy(), lam, rtol=1e-14)


def test_heldout_scores_match_lda_completion(fitted, profile):
    test, _, _ = lda_corpus(25, 40, K, doc_length=30.0, alpha=ALPHA, eta=ETA, seed=9)
    observed, heldout = test.completion_split(0.5, seed=0)
    obj = profile
    lams = [r.components for r in fitted.restarts_]
    scores = obj.heldout_scores(
        torch.stack([obj.to_vector(lam) for lam in lams]), observed, heldout
    )
    for p, lam in enumerate(lams):
        model = LDA(n_topics=K, alpha=ALPHA, eta=ETA)
        model.components_, model.alpha_, model.eta_ = lam, ALPHA, ETA
        want = model.completion_perplexity(observed, heldout)
        assert scores["log_likelihood"][p] == pytest.approx(want["log_likelihood"], rel=1e-12)
        assert scores["per_token"][p] == pytest.approx(want["per_token"], rel=1e-12)
        assert scores["perplexity"][p] == pytest.approx(want["perplexity"], rel=1e-12)
    assert scores["n_tokens"] == want["n_tokens"] and scores["n_docs"] == 25
    with pytest.raises(DataError):
        obj.heldout_scores(obj.to_vector(lams[0]), observed.counts[:, :30], heldout.counts[:, :30])


def test_bad_arguments(corpus, fitted, profile, full):
    with pytest.raises(ConfigError, match="mode"):
        LDAObjective(corpus, K, ALPHA, ETA, mode="partial")
    with pytest.raises(ConfigError, match="alpha"):
        LDAObjective(corpus, K, -1.0, ETA)
    with pytest.raises(ConfigError, match="lambda only"):
        profile.to_vector(fitted.components_, fitted.gamma_)
    with pytest.raises(ConfigError, match="shape"):
        profile(torch.zeros(2, profile.n + 1, dtype=torch.float64))
    with pytest.raises(ConfigError, match="gamma"):
        full.to_vector(fitted.components_, fitted.gamma_[:5])
    with pytest.raises(ConfigError, match="full_gradient"):
        LDAObjective(corpus, K, ALPHA, ETA, mode="full", full_gradient="numeric")
    with pytest.raises(ConfigError, match="full_gradient"):
        LDAObjective(corpus, K, ALPHA, ETA, full_gradient="autograd")
    with pytest.raises(ConfigError, match="sum to 1"):
        full.to_vector(fitted.components_, fitted.gamma_, np.full((full.nnz, K), 0.5))


# --------------------------------------------------------------------------- paths
@pytest.fixture(scope="module")
def tiny():
    corpus = lda_corpus(30, 25, 3, doc_length=20.0, alpha=0.3, eta=0.1, seed=5)[0]
    model = LDA(n_topics=3, alpha=0.3, eta=0.1, max_iter=20, tol=0, n_restarts=2, seed=0)
    return corpus, model.fit(corpus)


@pytest.mark.parametrize("mode", ["profile", "full"])
def test_neb_between_two_aligned_optima(tiny, mode):
    corpus, model = tiny
    obj = LDAObjective(corpus, 3, 0.3, 0.1, mode=mode)
    a, b = model.restarts_
    perm, _ = align(a.components, b.components)
    lam_b = apply_permutation(b.components, perm, axis=0)
    if mode == "profile":
        xa, xb = obj.to_vector(a.components), obj.to_vector(lam_b)
    else:
        xa = obj.to_vector(a.components, a.gamma)
        xb = obj.to_vector(lam_b, apply_permutation(b.gamma, perm, axis=1))
    result = neb(obj, xa, xb, n_pivots=5, steps=4, optimizer=Optimizer(lr=0.05), per_segment=2,
                 show_progress=False)  # fmt: skip
    assert torch.equal(result.pivots[0], xa) and torch.equal(result.pivots[-1], xb)
    assert torch.isfinite(result.pivots).all() and torch.isfinite(result.history).all()
    assert torch.isfinite(result.dense_values).all()
    assert result.n_iter == 4 and result.history.shape == (5, 5)
    with torch.no_grad():
        assert result.f_a == pytest.approx(float(obj(xa)), rel=1e-14)
    if mode == "full":
        phi = obj.from_vector(result.pivots)["phi"]
        torch.testing.assert_close(phi.sum(-1), torch.ones(5, obj.nnz, dtype=phi.dtype))
        assert float(obj(xa)) == pytest.approx(a.elbo, rel=1e-10)
