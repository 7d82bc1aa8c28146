"""Synthetic LDA corpora: shapes, seeding and agreement with the generative model."""

import numpy as np
import pytest

from elbolab.data import lda_corpus
from elbolab.errors import ConfigError


def test_shapes_and_truth():
    corpus, topics, theta = lda_corpus(40, 30, 5, doc_length=25, alpha=0.3, eta=0.2, seed=0)
    assert (corpus.n_docs, corpus.n_words) == (40, 30)
    assert corpus.vocab[:2] == ["w0", "w1"] and corpus.doc_ids is None
    assert topics.shape == (5, 30) and theta.shape == (40, 5)
    assert topics.dtype == theta.dtype == np.float64
    np.testing.assert_allclose(topics.sum(1), 1.0)
    np.testing.assert_allclose(theta.sum(1), 1.0)
    np.testing.assert_array_equal(corpus.doc_lengths, 25)
    assert corpus.counts.dtype == np.int64


def test_poisson_lengths_never_empty():
    corpus, _, _ = lda_corpus(500, 10, 2, doc_length=0.5, seed=1)
    lengths = corpus.doc_lengths
    assert lengths.min() >= 1 and lengths.max() > 1


def test_seeded():
    a = lda_corpus(20, 15, 3, doc_length=10.0, seed=5)
    b = lda_corpus(20, 15, 3, doc_length=10.0, seed=5)
    c = lda_corpus(20, 15, 3, doc_length=10.0, seed=6)
    assert (a[0].counts != b[0].counts).nnz == 0 and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_counts_follow_the_model():
    # Long documents: empirical word frequencies approach theta_d @ beta.
    corpus, topics, theta = lda_corpus(
        30, 20, 3, doc_length=20000, alpha=[1.0, 2.0, 3.0], eta=0.5, seed=3
    )
    freq = corpus.to_dense() / 20000
    assert np.abs(freq - theta @ topics).max() < 0.02


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_docs": 0}, "n_docs"),
        ({"n_topics": 2.5}, "n_topics"),
        ({"doc_length": 0}, "doc_length"),
        ({"doc_length": -3.0}, "doc_length"),
        ({"doc_length": "long"}, "doc_length"),
        ({"doc_length": True}, "doc_length"),
        ({"alpha": [1.0, 1.0]}, r"alpha must be a scalar or have shape \(3,\)"),
        ({"eta": 0.0}, "eta must be a finite real number > 0"),
    ],
)
def test_bad_parameters(kwargs, match):
    args = {"n_docs": 5, "n_words": 4, "n_topics": 3, **kwargs}
    with pytest.raises(ConfigError, match=match):
        lda_corpus(**args)
