"""Bag-of-words corpora as sparse count matrices, with document- and token-level splits.

A :class:`Corpus` is the one currency between the readers (:mod:`elbolab.data.ldac`,
:mod:`elbolab.data.uci`, :mod:`elbolab.data.synthetic`), the other libraries' corpora
(:meth:`Corpus.from_sklearn`, :meth:`Corpus.from_gensim`) and the topic models: a CSR
matrix ``counts`` of shape ``(D, V)`` (n_dw in Blei et al. 2003: how often word ``w``
occurs in document ``d``), the vocabulary and optional document ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from elbolab import checks
from elbolab.errors import ConfigError, DataError

if TYPE_CHECKING:
    import numpy.typing as npt

    from elbolab._types import Seed

__all__ = ["Corpus"]


@dataclass(eq=False)
class Corpus:
    """A bag-of-words corpus: sparse counts, vocabulary and optional document ids.

    Parameters
    ----------
    counts : (D, V) scipy.sparse.csr_matrix of int64 or int32
        ``counts[d, w]`` = n_dw, the number of times word ``w`` occurs in document ``d``.
        Any sparse matrix or dense array of non-negative integers is accepted and stored in
        canonical CSR form (sorted indices, no duplicates, no explicit zeros; see
        :func:`elbolab.checks.count_matrix`), so that ``counts.data`` holds exactly the
        non-zero n_dw and two equal corpora have equal arrays (the token-level split and
        the writers rely on this).
    vocab : list of str, length V
        ``vocab[w]`` is the word with id ``w``. Words must be unique.
    doc_ids : list of str of length D, or None
        Optional document names (e.g. AP DOCNOs).

    Raises
    ------
    DataError
        If the shapes disagree, counts are negative or not integers, or words repeat.
    """

    counts: sp.csr_matrix
    vocab: list
    doc_ids: Sequence[str] | None = None  # stored as a list of str

    def __post_init__(self):
        self.counts = checks.count_matrix(self.counts, "counts")
        self.vocab = [str(w) for w in checks.list_of(self.vocab, "vocab", "words", DataError)]
        if self.doc_ids is not None:
            ids = checks.list_of(self.doc_ids, "doc_ids", "names", DataError)
            self.doc_ids = [str(d) for d in ids]
        n_docs, n_words = self.counts.shape
        if len(self.vocab) != n_words:
            raise DataError(
                f"vocabulary has {len(self.vocab)} words but counts have {n_words} columns"
            )
        if len(set(self.vocab)) != len(self.vocab):
            seen = set()
            dup = next(w for w in self.vocab if w in seen or seen.add(w))
            raise DataError(f"vocabulary words must be unique; {dup!r} repeats")
        if self.doc_ids is not None and len(self.doc_ids) != n_docs:
            raise DataError(f"{len(self.doc_ids)} document ids for {n_docs} documents in counts")

    # ------------------------------------------------------------------ sizes
    @property
    def n_docs(self) -> int:
        """Number of documents D."""
        return self.counts.shape[0]

    @property
    def n_words(self) -> int:
        """Vocabulary size V (number of word types, used or not)."""
        return self.counts.shape[1]

    @property
    def n_tokens(self) -> int:
        """Total number of tokens, sum over d and w of n_dw."""
        return int(self.counts.data.sum(dtype=np.int64))

    @property
    def nnz(self) -> int:
        """Number of non-zero (document, word) pairs."""
        return int(self.counts.nnz)

    @property
    def doc_lengths(self) -> np.ndarray:
        """(D,) int64 array of document lengths N_d (tokens per document)."""
        return np.asarray(self.counts.sum(axis=1, dtype=np.int64)).ravel()

    def __repr__(self) -> str:
        return (
            f"Corpus(n_docs={self.n_docs}, n_words={self.n_words}, n_tokens={self.n_tokens}, "
            f"nnz={self.nnz}, doc_ids={'yes' if self.doc_ids is not None else 'no'})"
        )

    # ------------------------------------------------------------ constructors
    @classmethod
    def from_dense(
        cls,
        array: npt.ArrayLike,
        vocab: Sequence[str] | None = None,
        doc_ids: Sequence[str] | None = None,
    ) -> Corpus:
        """Build a corpus from a dense ``(D, V)`` array of counts.

        Parameters
        ----------
        array : (D, V) array_like of non-negative integers
        vocab : list of str of length V, optional
            Defaults to ``["w0", "w1", ...]``.
        doc_ids : list of str of length D, optional
        """
        counts = checks.count_matrix(array, "counts")
        if vocab is None:
            vocab = [f"w{i}" for i in range(counts.shape[1])]
        return cls(counts, list(vocab), doc_ids)

    @classmethod
    def from_sklearn(
        cls,
        X: npt.ArrayLike | sp.spmatrix | sp.sparray,
        vectorizer_or_vocab: Any,
        doc_ids: Sequence[str] | None = None,
    ) -> Corpus:
        """Build a corpus from scikit-learn's document-term matrix.

        Parameters
        ----------
        X : (D, V) scipy sparse matrix or array_like of non-negative integers
            Counts, as returned by ``CountVectorizer.fit_transform``. Floats are accepted
            when they are whole numbers (tf-idf weights are not counts and are refused).
        vectorizer_or_vocab : fitted vectorizer, or sequence of V str
            A fitted ``CountVectorizer`` (its ``get_feature_names_out()`` gives the
            words) or the words themselves, column ``w`` of ``X`` being word ``w``.
        doc_ids : sequence of D str, optional

        Returns
        -------
        Corpus
            ``counts`` of shape ``(D, V)`` (canonical CSR, int64 or int32) and ``vocab``
            of length V.

        Raises
        ------
        ConfigError
            Naming the argument: an unfitted vectorizer, an empty vocabulary or a word
            that repeats, ``X`` not 2-D or with V columns that disagree with the
            vocabulary, an entry of ``X`` that is negative, fractional or not finite
            (with its row and column), or doc_ids of the wrong length.
        """
        vocab = _sklearn_words(vectorizer_or_vocab)
        mat = checks.count_matrix(X, "X", ConfigError)
        if mat.shape[1] != len(vocab):
            raise ConfigError(
                f"X has {mat.shape[1]} columns but vectorizer_or_vocab has {len(vocab)} words"
            )
        if doc_ids is not None:
            doc_ids = checks.list_of(doc_ids, "doc_ids", "names")
            if len(doc_ids) != mat.shape[0]:
                raise ConfigError(
                    f"doc_ids has {len(doc_ids)} names for the {mat.shape[0]} rows of X"
                )
        return cls(mat, vocab, doc_ids)

    @classmethod
    def from_gensim(
        cls, bow_corpus: Iterable[Iterable[tuple[int, float]]], dictionary: Any
    ) -> Corpus:
        """Build a corpus from gensim's bag-of-words documents and their ``Dictionary``.

        gensim itself is not needed: the dictionary is read through its ``token2id``
        mapping (word -> id), so any object with one works.

        Parameters
        ----------
        bow_corpus : iterable of D documents, each a list of (word_id, count)
            As made by ``[dictionary.doc2bow(doc) for doc in texts]`` or read by a
            gensim corpus class (whose float counts must be whole numbers). Iterated once.
        dictionary : gensim.corpora.Dictionary
            Its ids must run from 0 to V - 1 (true of a fresh or compactified one).

        Returns
        -------
        Corpus
            ``counts`` of shape ``(D, V)``, int64, row ``d`` the ``d``-th document; word
            ``w`` of ``vocab`` is the dictionary's word with id ``w``.

        Raises
        ------
        ConfigError
            Naming the argument: a dictionary without ``token2id``, empty, or with ids that
            are not 0..V-1; no documents; and, naming the document's index, a document that
            is not a list of pairs, a word id not in the dictionary, a count that is not a
            positive integer, or a word id listed twice in one document.
        """
        vocab = _gensim_words(dictionary)
        n_words = len(vocab)
        if isinstance(bow_corpus, (str, bytes)) or not hasattr(bow_corpus, "__iter__"):
            raise ConfigError(
                f"bow_corpus must be an iterable of documents, got {type(bow_corpus).__name__}"
            )
        docs = []
        for d, doc in enumerate(bow_corpus):
            try:
                pairs = np.array(list(doc), dtype=np.float64)
            except (TypeError, ValueError):  # not iterable, ragged, or not numbers
                pairs = None
            if pairs is not None and pairs.size == 0:
                pairs = pairs.reshape(0, 2)
            if pairs is None or pairs.ndim != 2 or pairs.shape[1] != 2:
                raise ConfigError(
                    f"bow_corpus: document {d} is not a list of (word_id, count) pairs"
                )
            docs.append(pairs)
        if not docs:
            raise ConfigError("bow_corpus holds no documents")
        lengths = np.array([len(p) for p in docs], dtype=np.int64)
        pairs = np.concatenate(docs)
        ids, counts = pairs[:, 0], pairs[:, 1]
        doc_of = np.repeat(np.arange(len(docs), dtype=np.int64), lengths)

        bad_id = ~((ids >= 0) & (ids < n_words) & (ids == np.floor(ids)))
        bad_count = ~(np.isfinite(counts) & (counts > 0) & (counts == np.floor(counts)))
        # Among the valid ids, a repeat is an entry whose (document, id) key equals the
        # one before it in a stable sort, so it is the later of the two in the document.
        valid = np.flatnonzero(~bad_id)
        key = doc_of[valid] * n_words + ids[valid].astype(np.int64)
        order = np.argsort(key, kind="stable")
        repeat = np.zeros(ids.size, dtype=bool)
        repeat[valid[order[1:][np.diff(key[order]) == 0]]] = True
        # Report the earliest document with any problem (its first offending pair).
        found = [
            (int(doc_of[np.argmax(m)]), int(np.argmax(m)), kind)
            for kind, m in enumerate((bad_id, bad_count, repeat))
            if m.any()
        ]
        if found:
            d, j, kind = min(found)
            what = (
                f"word id {ids[j]:g} is not in the dictionary (ids 0..{n_words - 1})",
                f"count {counts[j]:g} of word id {ids[j]:g} is not a positive integer",
                f"word id {ids[j]:g} is listed twice",
            )[kind]
            raise ConfigError(f"bow_corpus: document {d}: {what}")
        indptr = np.concatenate(([0], np.cumsum(lengths)))
        mat = sp.csr_matrix(
            (counts.astype(np.int64), ids.astype(np.int64), indptr), shape=(len(docs), n_words)
        )
        return cls(mat, vocab)

    def to_dense(self) -> np.ndarray:
        """Return the ``(D, V)`` dense count array (mind the memory for large corpora)."""
        return self.counts.toarray()

    # ----------------------------------------------------------------- splits
    def subset(self, doc_indices: npt.ArrayLike) -> Corpus:
        """Return the corpus restricted to some documents, in the order given.

        Parameters
        ----------
        doc_indices : (M,) array_like of int, or (D,) boolean mask
            Documents to keep. Integer indices may repeat and may be negative (numpy style).

        Returns
        -------
        Corpus
            ``M`` documents over the same vocabulary.
        """
        idx = np.asarray(doc_indices)
        if idx.dtype == bool:
            if idx.shape != (self.n_docs,):
                raise ConfigError(
                    f"doc_indices: boolean mask of shape {idx.shape}, expected ({self.n_docs},)"
                )
            idx = np.flatnonzero(idx)
        elif idx.size == 0:
            idx = idx.astype(np.int64)
        elif idx.dtype.kind not in "iu" or idx.ndim != 1:
            raise ConfigError("doc_indices must be a 1-D array of integers or a boolean mask")
        if idx.size and (idx.max() >= self.n_docs or idx.min() < -self.n_docs):
            raise ConfigError(
                f"doc_indices: index out of range for a corpus of {self.n_docs} documents"
            )
        idx = np.where(idx < 0, idx + self.n_docs, idx)
        doc_ids = None if self.doc_ids is None else [self.doc_ids[i] for i in idx.tolist()]
        return Corpus(self.counts[idx], list(self.vocab), doc_ids)

    def train_test_split(self, test_fraction: float = 0.1, seed: Seed = 0) -> tuple[Corpus, Corpus]:
        """Split the documents at random into a training and a test corpus.

        Parameters
        ----------
        test_fraction : float in (0, 1)
            Share of documents in the test part; ``round(test_fraction * D)`` documents,
            at least 1 and at most D - 1.
        seed : int or numpy.random.Generator
            Seed of ``numpy.random.default_rng``; the same seed gives the same split.

        Returns
        -------
        train, test : Corpus
            Both keep the documents' original relative order and the full vocabulary.
        """
        test_fraction = checks.fraction(test_fraction, "test_fraction")
        rng = checks.numpy_rng(seed, "seed")
        if self.n_docs < 2:
            raise ConfigError("train_test_split needs at least 2 documents")
        n_test = int(np.clip(round(test_fraction * self.n_docs), 1, self.n_docs - 1))
        is_test = np.zeros(self.n_docs, dtype=bool)
        is_test[rng.permutation(self.n_docs)[:n_test]] = True
        return self.subset(~is_test), self.subset(is_test)

    def completion_split(
        self, observed_fraction: float = 0.5, seed: Seed = 0
    ) -> tuple[Corpus, Corpus]:
        """Divide every document's tokens at random into an observed and a held-out part.

        This is the "document completion" protocol of held-out evaluation (Wallach et al.
        2009): fit a document's topic proportions on the observed tokens and score the
        held-out ones. The split is at the token level: a word occurring 5 times can be
        split 3/2. For a document of ``N_d >= 2`` tokens, exactly
        ``k_d = clip(round(observed_fraction * N_d), 1, N_d - 1)`` tokens, chosen uniformly
        without replacement (a multivariate hypergeometric draw over the word types), are
        observed, so both parts are non-empty. Documents with fewer than 2 tokens are put
        entirely into the observed part (their held-out row is empty).

        Parameters
        ----------
        observed_fraction : float in (0, 1)
        seed : int or numpy.random.Generator

        Returns
        -------
        observed, heldout : Corpus
            Same shape, vocabulary and doc_ids as ``self``;
            ``observed.counts + heldout.counts == self.counts`` exactly.
        """
        observed_fraction = checks.fraction(observed_fraction, "observed_fraction")
        rng = checks.numpy_rng(seed, "seed")
        mat = self.counts
        lengths = self.doc_lengths
        k = np.clip(np.rint(observed_fraction * lengths).astype(np.int64), 1, lengths - 1)
        k = np.where(lengths < 2, lengths, k)

        # Expand the counts into one entry per token (tokens stay grouped by document,
        # because CSR data is stored row by row), then shuffle within every document at
        # once by sorting on (document, uniform random key). The first k_d tokens of each
        # shuffled document are a uniform draw of k_d tokens without replacement, i.e. a
        # multivariate hypergeometric draw of the observed counts. Memory is O(tokens).
        data = mat.data.astype(np.int64)
        token_entry = np.repeat(np.arange(data.size, dtype=np.int64), data)
        entry_doc = np.repeat(np.arange(self.n_docs, dtype=np.int64), np.diff(mat.indptr))
        token_doc = entry_doc[token_entry]
        order = np.lexsort((rng.random(token_doc.size), token_doc))
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        rank = np.empty(token_doc.size, dtype=np.int64)
        rank[order] = np.arange(token_doc.size, dtype=np.int64) - starts[token_doc[order]]
        observed_token = rank < k[token_doc]
        obs_data = np.bincount(token_entry[observed_token], minlength=data.size).astype(
            mat.data.dtype
        )
        held_data = (mat.data - obs_data).astype(mat.data.dtype)

        doc_ids = None if self.doc_ids is None else list(self.doc_ids)

        def part(values):
            m = sp.csr_matrix((values, mat.indices.copy(), mat.indptr.copy()), shape=mat.shape)
            return Corpus(m, list(self.vocab), None if doc_ids is None else list(doc_ids))

        return part(obs_data), part(held_data)


def _sklearn_words(vectorizer_or_vocab) -> list[str]:
    """The words of a fitted vectorizer, or a sequence of words, checked."""
    if hasattr(vectorizer_or_vocab, "get_feature_names_out"):
        try:
            words = list(vectorizer_or_vocab.get_feature_names_out())
        except (ValueError, AttributeError) as exc:  # sklearn's NotFittedError is both
            raise ConfigError(f"vectorizer_or_vocab: cannot read its words ({exc})") from None
    elif isinstance(vectorizer_or_vocab, (str, bytes)) or not hasattr(
        vectorizer_or_vocab, "__iter__"
    ):
        raise ConfigError(
            "vectorizer_or_vocab must be a fitted vectorizer (with get_feature_names_out) "
            f"or a sequence of words, got {type(vectorizer_or_vocab).__name__}"
        )
    else:
        words = list(vectorizer_or_vocab)
    if not words:
        raise ConfigError("vectorizer_or_vocab: the vocabulary is empty")
    first: dict[str, int] = {}
    for i, word in enumerate(words):
        if not isinstance(word, str):
            raise ConfigError(
                f"vectorizer_or_vocab: word {i} is a {type(word).__name__}, not a str"
            )
        if word in first:
            raise ConfigError(
                f"vectorizer_or_vocab: word {word!r} repeats (positions {first[word]} and {i})"
            )
        first[word] = i
    return [str(w) for w in words]


def _gensim_words(dictionary) -> list[str]:
    """Words by id from a gensim ``Dictionary`` (or anything with ``token2id``)."""
    token2id = getattr(dictionary, "token2id", None)
    if not isinstance(token2id, Mapping):
        raise ConfigError(
            "dictionary must be a gensim Dictionary (an object with a token2id mapping "
            f"word -> id), got {type(dictionary).__name__}"
        )
    n_words = len(token2id)
    if n_words == 0:
        raise ConfigError("dictionary is empty")
    words: list = [None] * n_words
    for word, i in token2id.items():
        if not isinstance(i, (int, np.integer)) or not 0 <= i < n_words or words[i] is not None:
            raise ConfigError(
                f"dictionary: word {word!r} has id {i!r}, but the ids must be 0..{n_words - 1}, "
                "each once (after filter_tokens, call dictionary.compactify())"
            )
        words[i] = str(word)
    return words
