"""Corpus: validation, canonical form, subsets and the document / token-level splits."""

import numpy as np
import pytest
import scipy.sparse as sp
from scipy import stats

from elbolab.data import Corpus, lda_corpus
from elbolab.errors import ConfigError, DataError


def small():
    dense = np.array([[2, 0, 1, 0], [0, 0, 0, 0], [1, 3, 0, 5], [0, 1, 0, 0], [4, 0, 0, 1]])
    return Corpus.from_dense(dense, vocab=list("abcd"), doc_ids=[f"d{i}" for i in range(5)])


# ------------------------------------------------------------------------- construction


def test_properties_and_dense_roundtrip():
    c = small()
    assert (c.n_docs, c.n_words, c.n_tokens, c.nnz) == (5, 4, 18, 8)
    np.testing.assert_array_equal(c.doc_lengths, [3, 0, 9, 1, 5])
    np.testing.assert_array_equal(c.to_dense()[2], [1, 3, 0, 5])
    assert c.counts.dtype in (np.int32, np.int64)
    assert "n_docs=5" in repr(c)


def test_from_dense_default_vocab():
    c = Corpus.from_dense(np.eye(3, dtype=int))
    assert c.vocab == ["w0", "w1", "w2"] and c.doc_ids is None


def test_canonical_form():
    # Unsorted indices, a duplicate (row 0, col 2) and an explicit zero.
    m = sp.csr_matrix(
        (np.array([1, 2, 3, 0]), np.array([2, 0, 2, 1]), np.array([0, 4])), shape=(1, 3)
    )
    c = Corpus(m, ["x", "y", "z"])
    assert c.counts.has_sorted_indices and c.counts.has_canonical_format
    np.testing.assert_array_equal(c.counts.indices, [0, 2])
    np.testing.assert_array_equal(c.counts.data, [2, 4])
    assert m.nnz == 4  # the caller's matrix is left alone


def test_accepts_integral_floats_and_other_sparse_formats():
    c = Corpus(sp.coo_matrix(np.array([[1.0, 0.0], [0.0, 2.0]])), ["a", "b"])
    assert c.counts.dtype.kind == "i" and isinstance(c.counts, sp.csr_matrix)
    assert c.n_tokens == 3


@pytest.mark.parametrize(
    "counts, vocab, doc_ids, match",
    [
        (np.ones((2, 3), int), ["a", "b"], None, "vocabulary has 2 words but counts have 3"),
        (np.array([[1, -1]]), ["a", "b"], None, "negative"),
        (np.array([[1.5, 0.0]]), ["a", "b"], None, "non-integer"),
        (np.ones((2, 2), int), ["a", "a"], None, "'a' repeats"),
        (np.ones((2, 2), int), ["a", "b"], ["only-one"], "1 document ids for 2 documents"),
        (np.array([["a"]]), ["a"], None, "integer dtype"),
        (sp.csr_matrix(np.ones((1, 1), complex)), ["a"], None, "integer dtype"),
        (np.ones(3, int), ["a"], None, "2-D"),
    ],
)
def test_validation_errors(counts, vocab, doc_ids, match):
    with pytest.raises(DataError, match=match):
        Corpus(counts, vocab, doc_ids)


# ------------------------------------------------------------------------------ subsets


def test_subset_order_ids_and_mask():
    c = small()
    s = c.subset([4, 0, -1])
    assert s.doc_ids == ["d4", "d0", "d4"]
    np.testing.assert_array_equal(s.to_dense(), c.to_dense()[[4, 0, 4]])
    m = c.subset(np.array([True, False, True, False, False]))
    assert m.doc_ids == ["d0", "d2"] and m.vocab == c.vocab
    assert c.subset([]).n_docs == 0


@pytest.mark.parametrize("bad", [[5], [-6], np.array([True, False]), [0.5]])
def test_subset_rejects_bad_indices(bad):
    with pytest.raises(ConfigError, match="doc_indices"):
        small().subset(bad)


def test_train_test_split():
    corpus, _, _ = lda_corpus(200, 30, 3, doc_length=20, seed=1)
    corpus.doc_ids = [f"doc{i}" for i in range(200)]
    train, test = corpus.train_test_split(0.25, seed=3)
    assert (train.n_docs, test.n_docs) == (150, 50)
    assert set(train.doc_ids).isdisjoint(test.doc_ids)
    assert sorted(train.doc_ids + test.doc_ids) == sorted(corpus.doc_ids)
    assert train.n_tokens + test.n_tokens == corpus.n_tokens
    # Relative order is kept.
    assert train.doc_ids == sorted(train.doc_ids, key=lambda s: int(s[3:]))
    again, _ = corpus.train_test_split(0.25, seed=3)
    other, _ = corpus.train_test_split(0.25, seed=4)
    assert again.doc_ids == train.doc_ids and other.doc_ids != train.doc_ids


@pytest.mark.parametrize("frac", [0.0, 1.0, -0.1, 2, "half", None])
def test_split_fractions_validated(frac):
    with pytest.raises(ConfigError, match="fraction"):
        small().train_test_split(frac)
    with pytest.raises(ConfigError, match="fraction"):
        small().completion_split(frac)


# --------------------------------------------------------------------- completion split


def test_completion_split_partitions_tokens_exactly():
    corpus, _, _ = lda_corpus(300, 50, 4, doc_length=30.0, seed=0)
    obs, held = corpus.completion_split(0.6, seed=0)
    assert obs.counts.shape == held.counts.shape == corpus.counts.shape
    assert (obs.counts + held.counts != corpus.counts).nnz == 0
    assert obs.counts.data.min() > 0 and held.counts.data.min() > 0  # canonical
    n = corpus.doc_lengths
    k = np.where(n < 2, n, np.clip(np.rint(0.6 * n), 1, n - 1))
    np.testing.assert_array_equal(obs.doc_lengths, k)
    assert np.all(held.doc_lengths[n >= 2] >= 1) and np.all(obs.doc_lengths[n >= 1] >= 1)
    assert abs(obs.n_tokens / corpus.n_tokens - 0.6) < 0.01


def test_completion_split_short_documents_stay_observed():
    c = Corpus.from_dense(np.array([[1, 0, 0], [0, 0, 0], [0, 2, 0], [1, 0, 1]]))
    obs, held = c.completion_split(0.5, seed=0)
    np.testing.assert_array_equal(obs.doc_lengths, [1, 0, 1, 1])
    np.testing.assert_array_equal(held.doc_lengths, [0, 0, 1, 1])
    # The word with count 2 is split 1/1: the split is by token, not by word type.
    assert obs.to_dense()[2, 1] == 1 and held.to_dense()[2, 1] == 1


def test_completion_split_seeded():
    corpus, _, _ = lda_corpus(50, 20, 2, doc_length=40, seed=2)
    a, _ = corpus.completion_split(0.5, seed=7)
    b, _ = corpus.completion_split(0.5, seed=7)
    c, _ = corpus.completion_split(0.5, seed=8)
    assert (a.counts != b.counts).nnz == 0
    assert (a.counts != c.counts).nnz > 0


def test_completion_split_is_hypergeometric():
    # 4000 copies of one document with word counts (5, 3, 2): observing 5 of its 10 tokens
    # uniformly without replacement makes word 0's observed count Hypergeom(10, 5, 5).
    c = Corpus.from_dense(np.tile([5, 3, 2], (4000, 1)))
    obs, _ = c.completion_split(0.5, seed=11)
    x = obs.to_dense()[:, 0]
    freq = np.bincount(x, minlength=6) / x.size
    pmf = stats.hypergeom(10, 5, 5).pmf(np.arange(6))
    assert np.abs(freq - pmf).max() < 0.03
    assert abs(x.mean() - 2.5) < 0.06


def test_completion_split_keeps_metadata_int32():
    m = sp.csr_matrix(np.array([[3, 1], [2, 2]], dtype=np.int32))
    c = Corpus(m, ["a", "b"], ["x", "y"])
    obs, held = c.completion_split(0.5, seed=0)
    assert obs.doc_ids == ["x", "y"] and held.vocab == ["a", "b"]
    assert obs.counts.dtype == np.int32
