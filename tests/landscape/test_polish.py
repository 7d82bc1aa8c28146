"""polish and restart_baseline: CAVI from a point between two maxima, and the restart
baseline with the same iteration budget, on a tiny corpus drawn from known topics."""

import numpy as np
import pytest

from elbolab.data import lda_corpus
from elbolab.errors import ConfigError
from elbolab.landscape import LDAObjective, apply_permutation, polish, restart_baseline
from elbolab.models.lda import LDA

K, ALPHA, ETA = 3, 0.2, 0.1

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def corpus():
    return lda_corpus(60, 40, K, doc_length=30.0, alpha=ALPHA, eta=ETA, seed=2)[0]


@pytest.fixture(scope="module")
def prof(corpus):
    return LDAObjective(corpus, K, ALPHA, ETA)


@pytest.fixture(scope="module")
def fits(corpus):
    return LDA(n_topics=K, alpha=ALPHA, eta=ETA, max_iter=300, tol=1e-7, n_restarts=3).fit(corpus)


def _pair(fits):
    return fits.restarts_[0].components, fits.restarts_[1].components


def test_polish_from_an_endpoint_returns_that_endpoint(prof, fits):
    lam_a, lam_b = _pair(fits)
    # From a's relabelled topics: the same maximum, so "a" with distance ~0, although the
    # rows are in another order.
    start = apply_permutation(lam_a, np.roll(np.arange(K), 1), 0)
    out = polish(prof, start, lam_a, lam_b, tol=1e-7)
    assert out.identity == "a"
    assert out.distance_a < 1e-3 < out.distance_b
    assert out.elbo == pytest.approx(out.elbo_a, abs=1e-4 * abs(out.elbo_a))
    assert out.converged and out.n_iter >= 1


def test_polish_climbs_and_scores_on_one_scale(prof, fits, corpus):
    lam_a, lam_b = _pair(fits)
    # A point between the two maxima (geometric mean of the topics, unaligned so it sits
    # low): CAVI never lowers the ELBO, so the maximum is above the start.
    start = np.sqrt(lam_a * lam_b)
    observed, heldout = corpus.completion_split(0.5, seed=0)
    out = polish(prof, start, lam_a, lam_b, tol=1e-7, observed=observed, heldout=heldout)
    assert out.elbo > out.elbo_start
    assert out.gain == pytest.approx(out.elbo - max(out.elbo_a, out.elbo_b))
    # The endpoints' ELBOs are the profile ELBOs the objective gives their topics.
    values = prof(np.stack([prof.to_vector(lam_a), prof.to_vector(lam_b)]))
    np.testing.assert_allclose([out.elbo_a, out.elbo_b], values.numpy(), rtol=1e-12)
    want = prof.heldout_scores(
        np.stack([prof.to_vector(x) for x in (lam_a, lam_b, out.lam)]), observed, heldout
    )["per_token"]
    got = [out.heldout_per_token[k] for k in ("a", "b", "polished")]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert out.identity in ("a", "b", "new")
    if out.identity == "new":
        assert min(out.distance_a, out.distance_b) > 0.01


def test_polish_with_one_iteration_is_not_converged(prof, fits):
    lam_a, lam_b = _pair(fits)
    out = polish(prof, np.sqrt(lam_a * lam_b), lam_a, lam_b, max_iter=1)
    assert out.n_iter == 1 and not out.converged


def test_baseline_spends_exactly_the_budget(prof, fits):
    lam_a, lam_b = _pair(fits)
    base = restart_baseline(prof, 25, lam_a, lam_b, first_restart=5, max_iter=10, tol=1e-7)
    assert sum(base.n_iters) == 25
    assert len(base.elbos) >= 3  # max_iter 10 caps each restart
    assert base.elbo == max(base.elbos) == base.elbos[base.best]
    # The first restart is restart 5 of LDA(seed=0): fitting it alone gives its ELBO.
    ref = LDA(n_topics=K, alpha=ALPHA, eta=ETA, max_iter=10, tol=1e-7)
    ref.fit(prof.X, state=ref.initial_state(prof.X, restarts=[5]))
    first = prof(prof.to_vector(ref.components_)[None]).item()
    assert base.elbos[0] == pytest.approx(first, rel=1e-12)
    assert base.heldout_per_token is None


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"lam_start": np.ones((K + 1, 40))}, "lam_start"),
        ({"lam_a": -np.ones((K, 40))}, "lam_a"),
        ({"lam_b": np.full((K, 40), np.nan)}, "lam_b"),
        ({"max_iter": 0}, "max_iter"),
        ({"same_max": 1.5}, "same_max"),
        ({"tol": -1.0}, "tol"),
        ({"observed": "x"}, "observed and heldout"),
    ],
)
def test_polish_refuses_bad_input_by_name(prof, kwargs, name):
    args = {"lam_start": np.ones((K, 40)), "lam_a": np.ones((K, 40)), "lam_b": np.ones((K, 40))}
    args.update(kwargs)
    with pytest.raises(ConfigError, match=name):
        polish(prof, args.pop("lam_start"), args.pop("lam_a"), args.pop("lam_b"), **args)


def test_objective_must_be_profile_mode(corpus, prof):
    lam = np.ones((K, 40))
    full = LDAObjective(corpus, K, ALPHA, ETA, mode="full")
    with pytest.raises(ConfigError, match="profile mode"):
        polish(full, lam, lam, lam)
    with pytest.raises(ConfigError, match="objective must be an LDAObjective"):
        restart_baseline("prof", 3, lam, lam)
    with pytest.raises(ConfigError, match="budget"):
        restart_baseline(prof, 0, lam, lam)
