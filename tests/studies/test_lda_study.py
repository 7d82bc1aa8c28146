"""The ``lda`` study: its helpers, and the smoke preset end to end on a tiny corpus drawn
from known topics and on the AP mirror."""

import math
from types import SimpleNamespace

import numpy as np
import pytest

from elbolab.data import load_ap
from elbolab.diagnostics import topic_coherence
from elbolab.landscape import align, distance_matrix
from elbolab.studies import lda
from elbolab.studies.claims import HOLDS, NOT_AT_THIS_BUDGET, NOT_CHECKED, PARTLY
from elbolab.studies.lda.measures import largest_drop
from elbolab.studies.lda_runs import restart_histories


def test_restarts_that_stop_early_keep_their_final_value():
    # Restarts converge at different iterations: their histories differ in length.
    model = SimpleNamespace(
        n_iter_=4,
        restarts_=[
            SimpleNamespace(history=np.array([1.0, 2.0, 3.0, 4.0])),
            SimpleNamespace(history=np.array([1.5, 2.5])),
        ],
    )
    h = restart_histories(model)
    assert h.shape == (4, 2)
    assert h[:, 0].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert h[:, 1].tolist() == [1.5, 2.5, 2.5, 2.5]


def test_largest_drop_over_all_restarts():
    history = np.array([[1.0, 5.0], [2.0, 4.5], [1.75, 6.0]])
    assert largest_drop(history) == 0.5
    assert largest_drop(np.array([[1.0, 2.0], [1.0, 3.0]])) == 0.0
    assert largest_drop(np.array([[1.0, 2.0]])) == 0.0


def _metrics(
    perplexities, marginal, se=0.05, average=8.0, sklearn_rel=0.0, drop=0.0, best_marginal=3.0
):
    """A metrics dict as ``run`` returns it, with the numbers the claims read."""
    per_k = {}
    for i, (k, ppl) in enumerate(zip((5, 10), perplexities, strict=True)):
        elbo = -1000.0 - i
        per_k[str(k)] = {
            "elbo_best": elbo,
            "elbo_per_token_best": elbo / 100,
            "sklearn_elbo_best": None if sklearn_rel is None else elbo * (1 + sklearn_rel),
            "elbo_largest_drop": drop,
            "elbo_spread": 1.0,
            "n_iter": 50,
            "completion": {"perplexity": ppl},
            "surgery": {
                "average_kl": average,
                "mutual_info": average - marginal,
                "marginal_kl": marginal,
                "se_marginal_kl": se,
                "log_n": math.log(2000),
            },
            "surgery_best_prior": {"marginal_kl": best_marginal, "se_marginal_kl": se},
        }
    return {"data": {"n_train_tokens": 100}, "per_k": per_k}


def _verdicts(metrics):
    return [c.verdict for c in lda.claims(lda.Config(topics=(5, 10)), metrics)]


def test_claims_follow_the_measured_numbers():
    # sklearn agrees, no drop, restarts apart and converged, perplexity falls, big marginal KL.
    assert _verdicts(_metrics([900.0, 800.0], marginal=4.0)) == [HOLDS] * 5
    got = _verdicts(_metrics([900.0, 950.0], marginal=0.3, sklearn_rel=1e-6, drop=1.0))
    assert got == [
        NOT_AT_THIS_BUDGET,
        NOT_AT_THIS_BUDGET,
        HOLDS,
        NOT_AT_THIS_BUDGET,
        NOT_AT_THIS_BUDGET,
    ]
    # The marginal KL must clear one nat by 4 standard errors, and 10% of the average KL.
    assert _verdicts(_metrics([900.0, 800.0], marginal=1.1, se=0.05))[4] == NOT_AT_THIS_BUDGET
    assert _verdicts(_metrics([900.0, 800.0], marginal=1.5, average=20.0))[4] == NOT_AT_THIS_BUDGET
    m = _metrics([900.0, 800.0], marginal=4.0)
    m["per_k"]["10"]["surgery"]["marginal_kl"] = 0.2
    assert _verdicts(m)[4] == PARTLY
    # A Dirichlet prior fitted to the posteriors removing the mismatch: only partly.
    assert _verdicts(_metrics([900.0, 800.0], marginal=4.0, best_marginal=0.5))[4] == PARTLY
    no_sklearn = lda.claims(lda.Config(topics=(5, 10)), _metrics([9.0, 8.0], 4.0, sklearn_rel=None))
    assert no_sklearn[0].verdict == NOT_CHECKED
    assert "not installed" in no_sklearn[0].measured
    assert "pip install scikit-learn" in no_sklearn[0].reason
    # One restart cannot show separate optima.
    one = lda.claims(lda.Config(topics=(5, 10), restarts=1), _metrics([9.0, 8.0], 4.0))
    assert one[2].verdict == NOT_AT_THIS_BUDGET


# --------------------------------------------------------------------- the study end to end


@pytest.mark.parametrize("data", ["tiny", "real"])
def test_coherence_is_the_best_topics_in_the_training_documents(
    data, smoke_runs, tiny_data, real_data
):
    out, m = smoke_runs("lda", data)  # the smoke_run fixture's run, not a new one
    cfg = lda.PRESETS["smoke"]
    train = lda.prepare(cfg, tiny_data.root if data == "tiny" else real_data("ap"))["train"]
    arrays = np.load(out / "arrays.npz")
    for k in cfg.topics:
        coh = m["per_k"][str(k)]["coherence"]
        assert coh["top_n"] == cfg.top_words
        for measure in ("umass", "npmi"):
            want = topic_coherence(
                arrays[f"components_K{k}"], train, measure=measure, top_n=cfg.top_words
            )
            assert coh[measure] == pytest.approx(want.per_topic.tolist(), abs=1e-12)
            assert coh[f"{measure}_mean"] == pytest.approx(np.mean(coh[measure]), abs=1e-12)
            assert coh[f"{measure}_epsilon"] == want.epsilon
        assert all(-1 - 1e-9 <= v <= 1 + 1e-9 for v in coh["npmi"])


@pytest.fixture(scope="module", params=["tiny", "real"])
def smoke_run(request, smoke_runs, tiny_data, real_data):
    """The smoke preset on the tiny corpus drawn from known topics, and on AP; with the
    vocabulary of the corpus it read."""
    out, m = smoke_runs("lda", request.param)
    root = tiny_data.root if request.param == "tiny" else real_data("ap")
    return out, m, load_ap(root).vocab


def test_metrics_are_finite_and_consistent(smoke_run, assert_finite):
    out, m, vocab = smoke_run
    assert_finite(m)
    d = m["data"]
    cfg = lda.PRESETS["smoke"]
    assert d["n_docs"] == cfg.n_docs and d["n_words"] == len(vocab)
    assert d["n_train_docs"] + d["n_test_docs"] == d["n_docs"]
    assert d["n_train_tokens"] + d["n_heldout_tokens"] < d["n_tokens"]
    assert set(m["per_k"]) == {str(k) for k in cfg.topics}
    arrays = np.load(out / "arrays.npz")
    for k in cfg.topics:
        r = m["per_k"][str(k)]
        finals = r["elbo_restarts"]
        assert len(finals) == cfg.restarts
        # Word counts are discrete: log p(w) <= 0, and the ELBO is below it.
        assert max(finals) <= 0
        assert r["elbo_best"] == max(finals) == finals[r["best_restart"]]
        assert r["elbo_spread"] == pytest.approx(max(finals) - min(finals), abs=1e-9)
        assert r["elbo_per_token_best"] == pytest.approx(r["elbo_best"] / d["n_train_tokens"])
        history = arrays[f"history_K{k}"]
        assert history.shape == (r["n_iter"], cfg.restarts)
        # CAVI never lowers the bound, and the curves end at the reported optima.
        assert (np.diff(history, axis=0) >= -1e-9 * np.abs(history[1:])).all()
        assert history[-1].tolist() == finals
        # The top words are the largest entries of the saved topics, most probable first.
        lam = arrays[f"components_K{k}"]
        assert lam.shape == (k, len(vocab)) and (lam > 0).all()
        for topic, words in zip(lam, r["top_words"], strict=True):
            assert len(words) == cfg.top_words
            values = [topic[vocab.index(w)] for w in words]
            assert values == sorted(topic)[::-1][: len(words)]
        c = r["completion"]
        assert c["n_tokens"] == d["n_heldout_tokens"] and c["n_docs"] == d["n_test_docs"]
        assert c["per_token"] == pytest.approx(c["log_likelihood"] / c["n_tokens"])
        assert c["log_likelihood"] < 0
        assert c["perplexity"] == pytest.approx(np.exp(-c["per_token"]))
        assert r["elbo_largest_drop"] == largest_drop(history) == 0.0
        if r["sklearn_elbo_best"] is not None:
            assert r["sklearn_elbo_best"] == pytest.approx(r["elbo_best"], rel=1e-9)
        # ELBO surgery of the training documents' posteriors, nats per document.
        s = r["surgery"]
        assert s["n"] == d["n_train_docs"] and s["n_samples"] == cfg.surgery_samples
        assert s["log_n"] == pytest.approx(math.log(d["n_train_docs"]))
        assert 0 < s["mutual_info"] <= s["log_n"]
        assert s["average_kl_mc"] == pytest.approx(s["mutual_info"] + s["marginal_kl"], abs=1e-9)
        assert abs(s["average_kl"] - s["average_kl_mc"]) < 5 * s["se_average_kl_mc"]
        assert s["marginal_kl"] > 0
        # The closest Dirichlet prior: same draws and MI, average and marginal KL no larger.
        b = r["surgery_best_prior"]
        assert len(b["alpha"]) == k and b["mutual_info"] == s["mutual_info"]
        assert b["average_kl"] <= s["average_kl"]
        assert b["marginal_kl"] == pytest.approx(
            s["marginal_kl"] - (s["average_kl_mc"] - b["average_kl_mc"]), abs=1e-9
        )
    rows = m["claims"]
    assert [row["claim"] for row in rows] == [c.claim for c in lda.claims(cfg, m)]


def test_report_has_every_figure(smoke_run):
    out, m, _ = smoke_run
    names = ("elbo_curves", "optima_spread", "perplexity")
    for name in names:
        assert (out / "figures" / f"{name}.png").is_file()
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64") == len(names)
    for words in m["per_k"]["3"]["top_words"]:
        assert " ".join(words) in html
    assert "document-topic posteriors, nats per training document" in html
    coh = m["per_k"]["3"]["coherence"]
    for key in ("umass_mean", "npmi_mean"):
        assert f"{coh[key]:.3f}" in html
    assert all(f"{v:.3f}" in html for v in coh["umass"] + coh["npmi"])
    assert f"{m['per_k']['3']['surgery']['marginal_kl']:.3f}" in html
    for row in m["claims"]:
        assert row["verdict"] in html


def test_recovers_the_topics_the_corpus_was_drawn_from(smoke_runs, tiny_data):
    truth = tiny_data.topics
    true_gap = distance_matrix(truth, truth)[~np.eye(len(truth), dtype=bool)].min()
    assert true_gap > 0.5  # the true topics are far apart
    smoke_out, smoke = smoke_runs("lda", "tiny")
    # Five iterations already find every topic; run to convergence, much closer still.
    long_out, long = smoke_runs("lda", "tiny", "max_iter=100")
    for out, bound in ((smoke_out, 0.2), (long_out, 0.08)):
        lam = np.load(out / "arrays.npz")["components_K3"]
        _, dist = align(truth, lam)
        assert dist.max() < bound, dist
    # The long run is the smoke run continued: the same first iterations, then higher.
    assert long["per_k"]["3"]["n_iter"] < 100  # it converged
    short_h = np.load(smoke_out / "arrays.npz")["history_K3"]
    long_h = np.load(long_out / "arrays.npz")["history_K3"]
    np.testing.assert_array_equal(long_h[: len(short_h)], short_h)
    assert long["per_k"]["3"]["elbo_best"] > smoke["per_k"]["3"]["elbo_best"]
