"""Corpus.from_sklearn and Corpus.from_gensim: round trips with the real libraries and every
refused input (ConfigError naming the argument, and the row/column or document)."""

import numpy as np
import pytest
import scipy.sparse as sp

from elbolab.data import Corpus
from elbolab.errors import ConfigError

SENTENCES = [
    "the cat sat on the mat",
    "the dog ate the cat food",
    "a bird sang",
    "cat and dog and cat",
]


@pytest.fixture(scope="module")
def vectorized():
    from sklearn.feature_extraction.text import CountVectorizer

    vectorizer = CountVectorizer()
    return vectorizer, vectorizer.fit_transform(SENTENCES)


def expected_counts(vocab):
    """Word counts of SENTENCES by splitting on spaces (CountVectorizer's default token
    pattern drops one-letter words such as 'a')."""
    return np.array([[s.split().count(w) for w in vocab] for s in SENTENCES])


# ------------------------------------------------------------------------- sklearn


def test_from_sklearn_round_trips_counts_and_vocabulary(vectorized):
    vectorizer, X = vectorized
    c = Corpus.from_sklearn(X, vectorizer, doc_ids=["s0", "s1", "s2", "s3"])
    assert c.vocab == list(vectorizer.get_feature_names_out())
    assert "cat" in c.vocab and "a" not in c.vocab
    np.testing.assert_array_equal(c.to_dense(), expected_counts(c.vocab))
    np.testing.assert_array_equal(c.to_dense(), X.toarray())
    assert c.doc_ids == ["s0", "s1", "s2", "s3"] and c.counts[3, c.vocab.index("cat")] == 2


def test_from_sklearn_with_a_word_list_and_dense_or_integral_float_counts(vectorized):
    vectorizer, X = vectorized
    words = list(vectorizer.get_feature_names_out())
    for matrix in (X.toarray(), X.astype(np.float64), X.toarray().tolist()):
        c = Corpus.from_sklearn(matrix, words)
        np.testing.assert_array_equal(c.to_dense(), X.toarray())
        assert c.counts.dtype.kind == "i"


def test_from_sklearn_refuses_bad_input(vectorized):
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

    vectorizer, X = vectorized
    words = list(vectorizer.get_feature_names_out())
    with pytest.raises(ConfigError, match=r"vectorizer_or_vocab: cannot read its words"):
        Corpus.from_sklearn(X, CountVectorizer())  # not fitted
    with pytest.raises(ConfigError, match=r"X has \d+ columns but vectorizer_or_vocab has"):
        Corpus.from_sklearn(X, words[:-1])
    with pytest.raises(ConfigError, match=r"vectorizer_or_vocab: the vocabulary is empty"):
        Corpus.from_sklearn(np.zeros((2, 0), dtype=int), [])
    with pytest.raises(ConfigError, match=r"word 'cat' repeats \(positions 0 and 2\)"):
        Corpus.from_sklearn(np.ones((1, 3), dtype=int), ["cat", "dog", "cat"])
    with pytest.raises(ConfigError, match=r"vectorizer_or_vocab must be a fitted vectorizer"):
        Corpus.from_sklearn(X, "cat dog")
    with pytest.raises(ConfigError, match=r"X must be a 2-D"):
        Corpus.from_sklearn(np.ones(3, dtype=int), ["a", "b", "c"])
    with pytest.raises(ConfigError, match=r"X must hold integer counts"):
        Corpus.from_sklearn(np.array([["1", "2"]]), ["a", "b"])
    with pytest.raises(ConfigError, match=r"doc_ids has 2 names for the 4 rows of X"):
        Corpus.from_sklearn(X, vectorizer, doc_ids=["x", "y"])
    with pytest.raises(ConfigError, match=r"doc_ids must be a list of names, got str"):
        Corpus.from_sklearn(X, vectorizer, doc_ids="abcd")  # 4 characters, 4 rows

    # tf-idf weights are not counts: the first offending entry is named.
    tfidf = TfidfVectorizer().fit(SENTENCES)
    weights = tfidf.transform(SENTENCES)
    with pytest.raises(ConfigError, match=r"X\[0, \d+\] = .*not tf-idf"):
        Corpus.from_sklearn(weights, tfidf)


@pytest.mark.parametrize(
    "value, pattern", [(-1, r"X\[1, 2\] = -1"), (0.5, r"X\[1, 2\] = 0.5"), (np.nan, r"X\[1, 2\]")]
)
@pytest.mark.parametrize("sparse", [False, True])
def test_from_sklearn_names_the_bad_entry(value, pattern, sparse):
    X = np.ones((3, 4))
    X[1, 2] = value
    X[2, 3] = -7  # a later bad entry: the first one is reported
    with pytest.raises(ConfigError, match=pattern):
        Corpus.from_sklearn(sp.csr_matrix(X) if sparse else X, ["a", "b", "c", "d"])


# -------------------------------------------------------------------------- gensim


class DuckDictionary:
    """The one attribute of gensim's Dictionary that from_gensim reads."""

    def __init__(self, token2id):
        self.token2id = token2id


def test_from_gensim_with_a_duck_typed_dictionary():
    dictionary = DuckDictionary({"cat": 1, "dog": 0, "mat": 2})
    bow = iter([[(1, 2), (2, 1)], [], [(0, 3.0)]])  # a one-pass stream; float counts
    c = Corpus.from_gensim(bow, dictionary)
    assert c.vocab == ["dog", "cat", "mat"]
    np.testing.assert_array_equal(c.to_dense(), [[0, 2, 1], [0, 0, 0], [3, 0, 0]])
    assert c.counts.dtype == np.int64


def test_from_gensim_with_a_real_dictionary():
    gensim = pytest.importorskip("gensim")
    texts = [s.split() for s in SENTENCES]
    dictionary = gensim.corpora.Dictionary(texts)
    bow = [dictionary.doc2bow(t) for t in texts]
    c = Corpus.from_gensim(bow, dictionary)
    assert c.vocab == [dictionary[i] for i in range(len(dictionary))]
    np.testing.assert_array_equal(c.to_dense(), expected_counts(c.vocab))

    # After filter_extremes the ids are compact again and the result still agrees.
    dictionary.filter_extremes(no_below=2, no_above=1.0)
    bow = [dictionary.doc2bow(t) for t in texts]
    c = Corpus.from_gensim(bow, dictionary)
    assert sorted(c.vocab) == ["cat", "dog", "the"]
    np.testing.assert_array_equal(c.to_dense(), expected_counts(c.vocab))


BAD_DOCS = {
    "id past the dictionary": ([[(0, 1)], [(1, 1), (3, 1)]], r"document 1: word id 3 is not"),
    "negative id": ([[(0, 1)], [(-1, 1)]], r"document 1: word id -1 is not"),
    "fractional id": ([[(0.5, 1)]], r"document 0: word id 0.5 is not"),
    "zero count": ([[(0, 1)], [], [(2, 0)]], r"document 2: count 0 of word id 2"),
    "negative count": ([[(0, -2)]], r"document 0: count -2 of word id 0"),
    "fractional count": ([[(0, 1)], [(1, 1.5)]], r"document 1: count 1.5 of word id 1"),
    "repeated id": ([[(0, 1)], [(2, 1), (1, 1), (2, 4)]], r"document 1: word id 2 is listed"),
    "not pairs": ([[(0, 1)], [(0, 1, 2)]], r"document 1 is not a list of \(word_id, count\)"),
    "ragged": ([[(0, 1), (1,)]], r"document 0 is not a list of"),
    "words, not ids": ([[("cat", 1)]], r"document 0 is not a list of"),
    "flat list": ([[0, 1]], r"document 0 is not a list of"),
    "earliest problem wins": ([[(0, 1)], [(1, 1), (1, 2)], [(7, 1)]], r"document 1: word id 1"),
}


@pytest.mark.parametrize("case", list(BAD_DOCS))
def test_from_gensim_names_the_bad_document(case):
    bow, pattern = BAD_DOCS[case]
    with pytest.raises(ConfigError, match="bow_corpus: " + pattern):
        Corpus.from_gensim(bow, DuckDictionary({"a": 0, "b": 1, "c": 2}))


def test_from_gensim_refuses_bad_dictionaries_and_corpora():
    with pytest.raises(ConfigError, match=r"dictionary must be a gensim Dictionary"):
        Corpus.from_gensim([[(0, 1)]], {"a": 0})
    with pytest.raises(ConfigError, match=r"dictionary is empty"):
        Corpus.from_gensim([[(0, 1)]], DuckDictionary({}))
    with pytest.raises(ConfigError, match=r"word 'b' has id 5.*compactify"):
        Corpus.from_gensim([[(0, 1)]], DuckDictionary({"a": 0, "b": 5}))
    with pytest.raises(ConfigError, match=r"bow_corpus holds no documents"):
        Corpus.from_gensim([], DuckDictionary({"a": 0}))
    with pytest.raises(ConfigError, match=r"bow_corpus must be an iterable"):
        Corpus.from_gensim(3, DuckDictionary({"a": 0}))
