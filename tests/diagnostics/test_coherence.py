"""Topic coherence (UMass, NPMI): against a brute-force count over documents, against
gensim's CoherenceModel, and its refusals of bad input."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from elbolab.data import Corpus
from elbolab.data.synthetic import lda_corpus
from elbolab.diagnostics import topic_coherence
from elbolab.errors import ConfigError, DataError, NumericalError


@pytest.fixture(scope="module")
def small():
    """30 documents over 12 words, with repeated counts and two empty documents, and 4
    random topics whose top words all occur somewhere."""
    rng = np.random.default_rng(3)
    counts = rng.poisson(0.6, size=(30, 12)) * rng.integers(1, 4, size=(30, 12))
    counts[[4, 17]] = 0
    counts[0] = np.maximum(counts[0], 1)  # every word occurs at least once
    weights = rng.dirichlet(np.full(12, 0.5), size=4)
    return Corpus.from_dense(counts), weights


def _brute(counts: np.ndarray, ids: list[int], measure: str, epsilon: float) -> float:
    """The definitions spelled out: a loop over pairs and, for each, over documents."""
    n_docs = counts.shape[0]

    def docs_with(*words):
        return sum(all(counts[d, w] > 0 for w in words) for d in range(n_docs))

    scores = []
    for i, j in itertools.combinations(range(len(ids)), 2):  # i < j: w_i ranks higher
        hi, lo = ids[i], ids[j]
        d_pair = docs_with(hi, lo)
        if measure == "umass":  # Mimno et al. in counts: log((D(lo, hi) + N eps) / D(hi))
            scores.append(math.log((d_pair + n_docs * epsilon) / docs_with(hi)))
        else:
            p_pair = d_pair / n_docs + epsilon
            p_hi, p_lo = docs_with(hi) / n_docs, docs_with(lo) / n_docs
            scores.append(math.log(p_pair / (p_hi * p_lo)) / -math.log(p_pair))
    return sum(scores) / len(scores)


@pytest.mark.parametrize("measure", ["umass", "npmi"])
def test_matches_brute_force(small, measure):
    corpus, weights = small
    dense = corpus.to_dense()
    got = topic_coherence(weights, corpus, measure=measure, top_n=5)
    order = np.argsort(-weights, axis=1)[:, :5]
    assert np.array_equal(got.word_ids, order)
    eps = 1 / corpus.n_docs if measure == "umass" else 1e-12
    assert got.epsilon == eps and got.top_n == 5 and got.n_docs == 30
    want = [_brute(dense, list(row), measure, eps) for row in order]
    np.testing.assert_allclose(got.per_topic, want, rtol=1e-12, atol=1e-12)
    assert got.mean == pytest.approx(np.mean(want), abs=1e-12)
    # Another epsilon, the same ids given directly, and a sparse reference agree too.
    other = topic_coherence(order, corpus.counts.tocoo(), measure=measure, epsilon=0.01)
    want = [_brute(dense, list(row), measure, 0.01) for row in order]
    np.testing.assert_allclose(other.per_topic, want, rtol=1e-12, atol=1e-12)
    tensor = torch.tensor(weights, requires_grad=True)
    same = topic_coherence(tensor, corpus, measure=measure, top_n=5)
    np.testing.assert_array_equal(same.per_topic, got.per_topic)


def test_sparse_product_and_duplicate_entries(small, monkeypatch):
    """The sparse product (large incidence matrices) gives the dense one's counts, and a
    (document, word) entry split in two counts the document once."""
    from elbolab.diagnostics import coherence

    corpus, weights = small
    want = topic_coherence(weights, corpus, measure="npmi", top_n=6).per_topic
    # A CSR matrix listing every entry twice (not canonical; scipy keeps both).
    coo = corpus.counts.tocoo()
    rows = np.tile(coo.row, 2)
    order = np.argsort(rows, kind="stable")
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=coo.shape[0]))])
    split = sp.csr_matrix(
        (np.tile(coo.data, 2)[order], np.tile(coo.col, 2)[order], indptr), shape=coo.shape
    )
    assert split.nnz == 2 * coo.nnz
    monkeypatch.setattr(coherence, "_DENSE_MAX_ENTRIES", 0)
    got = topic_coherence(weights, split, measure="npmi", top_n=6).per_topic
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-14)


def test_umass_is_mimnos_sum_and_depends_on_order(small):
    corpus, _ = small
    dense = corpus.to_dense() > 0
    ids = np.array([[0, 3, 5, 7]])
    umass = topic_coherence(ids, corpus).per_topic[0]
    # Mimno et al. (2011), eq. 1: sum over m = 2..M, l < m of log((D(v_m, v_l) + 1) / D(v_l)).
    v = ids[0]
    total = sum(
        math.log(((dense[:, v[m]] & dense[:, v[j]]).sum() + 1) / dense[:, v[j]].sum())
        for m in range(1, 4)
        for j in range(m)
    )
    assert umass * 6 == pytest.approx(total, abs=1e-12)
    reverse = ids[:, ::-1].copy()
    assert topic_coherence(reverse, corpus).per_topic[0] != pytest.approx(umass, abs=1e-6)
    npmi = topic_coherence(ids, corpus, measure="npmi").per_topic[0]
    assert topic_coherence(reverse, corpus, measure="npmi").per_topic[0] == pytest.approx(
        npmi, abs=1e-12
    )


def test_extreme_pairs():
    # w0, w1 always together (not in every document); w2 never with them.
    corpus = Corpus.from_dense([[1, 2, 0], [3, 1, 0], [0, 0, 4], [0, 0, 1]])
    together = topic_coherence([[0, 1]], corpus, measure="npmi").per_topic[0]
    apart = topic_coherence([[0, 2]], corpus, measure="npmi").per_topic[0]
    assert together == pytest.approx(1.0, abs=1e-9)
    assert apart == pytest.approx(-1.0, abs=0.1)  # -1 + log(1/(P P))/-log(eps)
    assert topic_coherence([[0, 1]], corpus, epsilon=1e-12).per_topic[0] == pytest.approx(
        0.0, abs=1e-9
    )


# ------------------------------------------------------------------------- gensim


def _gensim_scores(corpus: Corpus, ids: np.ndarray, coherence: str) -> np.ndarray:
    """gensim's per-topic scores of the topics' words, co-occurrence by document: the
    bag-of-words corpus for u_mass, every document as one window for c_npmi."""
    from gensim.corpora import Dictionary
    from gensim.models import CoherenceModel

    counts = corpus.counts
    bow = [
        list(zip(counts.indices[a:b].tolist(), counts.data[a:b].tolist(), strict=True))
        for a, b in itertools.pairwise(counts.indptr)
    ]
    dictionary = Dictionary.from_corpus(bow, id2word=dict(enumerate(corpus.vocab)))
    topics = [[corpus.vocab[w] for w in row] for row in ids]
    if coherence == "u_mass":
        model = CoherenceModel(
            topics=topics, corpus=bow, dictionary=dictionary, coherence="u_mass", processes=1
        )
    else:
        texts = [[corpus.vocab[w] for w, c in doc for _ in range(c)] for doc in bow]
        model = CoherenceModel(
            topics=topics,
            texts=texts,
            dictionary=dictionary,
            coherence="c_npmi",
            window_size=max(1, int(corpus.doc_lengths.max())),
            processes=1,
        )
    return np.array(model.get_coherence_per_topic())


def test_matches_gensim():
    pytest.importorskip("gensim")
    corpus, beta, _ = lda_corpus(150, 40, 4, doc_length=30.0, alpha=0.3, eta=0.1, seed=1)
    ours_u = topic_coherence(beta, corpus, measure="umass", top_n=8, epsilon=1e-12)
    ours_n = topic_coherence(beta, corpus, measure="npmi", top_n=8)
    gensim_u = _gensim_scores(corpus, ours_u.word_ids, "u_mass")
    gensim_n = _gensim_scores(corpus, ours_n.word_ids, "c_npmi")
    np.testing.assert_allclose(ours_u.per_topic, gensim_u, rtol=0, atol=1e-9)
    np.testing.assert_allclose(ours_n.per_topic, gensim_n, rtol=0, atol=1e-9)
    # Mimno's +1 (the default here) is not gensim's convention: they differ.
    mimno = topic_coherence(beta, corpus, measure="umass", top_n=8).per_topic
    assert np.abs(mimno - gensim_u).max() > 1e-3


# --------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("topics", "kwargs", "match"),
    [
        ([[0, 1]], {"measure": "cv"}, "measure"),
        ([[0, 1]], {"top_n": 1}, "top_n"),
        ([[0, 1]], {"top_n": 3}, "top_n"),
        ([[0]], {}, "at least 2 word ids"),
        (np.zeros((0, 3), dtype=int), {}, "K = 0"),
        ([[0, 3]], {}, "word id 3 .*vocabulary"),
        ([[-1, 0]], {}, "word id -1"),
        ([[0, 0]], {}, "repeats"),
        ([[0, 2]], {}, "word id 2 .*occurs in no reference document"),
        (np.ones((2, 4)), {}, "topics has 4 columns"),
        (np.array([[np.nan, 1.0, 0.5]]), {}, "NaN"),
        (np.ones(3), {}, "2-D"),
        ([[0, 1]], {"epsilon": 0.0}, "epsilon"),
        ([[0, 1]], {"epsilon": -1e-3}, "epsilon"),
    ],
)
def test_bad_input(topics, kwargs, match):
    corpus = Corpus.from_dense([[1, 1, 0], [1, 0, 0]])  # word 2 occurs nowhere
    with pytest.raises(ConfigError, match=match):
        topic_coherence(topics, corpus, **kwargs)


def test_npmi_with_a_vanishing_normalizer_is_refused():
    # Both words in every document: -log(1 + epsilon) rounds to 0 for epsilon = 1e-300.
    corpus = Corpus.from_dense([[1, 1], [2, 1]])
    assert topic_coherence([[0, 1]], corpus, measure="npmi").per_topic[0] == pytest.approx(-1.0)
    with pytest.raises(NumericalError, match="npmi score"):
        topic_coherence([[0, 1]], corpus, measure="npmi", epsilon=1e-300)


def test_bad_reference():
    with pytest.raises(ConfigError, match="reference"):
        topic_coherence([[0, 1]], np.ones((2, 2)))
    with pytest.raises(DataError, match="reference"):
        topic_coherence([[0, 1]], sp.csr_matrix(np.array([[1, -1], [1, 1]])))
    with pytest.raises(DataError, match="no documents"):
        topic_coherence([[0, 1]], sp.csr_matrix((0, 2), dtype=int))
