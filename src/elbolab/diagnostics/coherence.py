"""Topic coherence of top words by document co-occurrence: UMass and NPMI.

Both measures score the ``n`` top words ``w_1, ..., w_n`` of a topic (most probable
first) by how often they occur together in the documents of a reference corpus. Counts
are by document: ``D(w)`` is the number of documents in which ``w`` occurs at least
once, ``D(w_i, w_j)`` the number in which both do, and with ``N`` documents (empty ones
included) ``P(w) = D(w) / N`` and ``P(w_i, w_j) = D(w_i, w_j) / N``. Every score is the
mean over the ``n (n - 1) / 2`` pairs of the topic's top words, in nats.

UMass (Mimno, Wallach, Talley, Leenders & McCallum 2011, "Optimizing semantic coherence
in topic models", EMNLP, eq. 1): each later word is scored given each earlier, more
probable one::

    UMass = mean over i > j of  log( (P(w_i, w_j) + epsilon) / P(w_j) )

Mimno et al. add 1 to the co-document count and sum over the pairs; here the smoothing
is ``epsilon`` in probability units, by default ``1 / N`` (their +1, since
``(D(w_i, w_j) + 1) / D(w_j) = (P(w_i, w_j) + 1/N) / P(w_j)``), and the pairs are
averaged as in gensim and Röder et al. (2015), so the paper's sum is the mean times
``n (n - 1) / 2``. The score is <= log(1 + epsilon / P(w_j)) per pair, ~0 for words
that always occur together; more negative is less coherent.

NPMI (Bouma 2009, "Normalized (pointwise) mutual information in collocation
extraction"; used for topics by Aletras & Stevenson 2013 and Röder, Both & Hinneburg
2015, "Exploring the space of topic coherence measures", WSDM)::

    PMI(w_i, w_j)  = log( (P(w_i, w_j) + epsilon) / (P(w_i) P(w_j)) )
    NPMI(w_i, w_j) = PMI(w_i, w_j) / -log(P(w_i, w_j) + epsilon)
    NPMI           = mean over pairs i < j of NPMI(w_i, w_j)   (symmetric in i, j)

with ``epsilon = 1e-12`` by default (Röder et al.; gensim). It lies in about [-1, 1]:
-1 for words that never share a document, 0 for independent ones, 1 for words that
always occur together. One artifact of the epsilon convention, shared with gensim: a
pair present in *every* document has PMI ~ epsilon and normalizer ~ -epsilon, so it
scores about -1, not 1.

Agreement with gensim (``gensim.models.CoherenceModel``, checked in
tests/diagnostics/test_coherence.py and benchmarks/coherence_gensim.py):

* ``coherence="u_mass"`` on the bag-of-words corpus is UMass here with
  ``epsilon=1e-12`` (gensim computes ``log((D(w_i, w_j) / N + 1e-12) / (D(w_j) / N))``
  over its "one_pre" pairs, i > j, and averages them): without Mimno's +1.
* ``coherence="c_npmi"`` counts co-occurrence in sliding windows of ``window_size``
  tokens (default 10), each window a virtual document. With ``window_size`` at least
  the longest document's length every document is one window, and it is NPMI here with
  the default epsilon (its "one_one" pairs, both orders, give the same mean since NPMI
  is symmetric).
* gensim's topic score is the arithmetic mean over pairs, as here; its model score
  the mean over topics, as :attr:`Coherence.mean`.
* Where gensim scores a pair with an unseen conditioning word as 0 (u_mass) or
  produces infinities (c_npmi), this function refuses: a top word that occurs in no
  reference document makes both measures undefined (``P(w) = 0`` in a denominator), and
  a score silently set to 0 would look like a coherent topic. ConfigError names it.

Cost: the columns of all topics' distinct top words are taken and binarized together
(one pass over the reference's index array) and one product of that incidence matrix
with itself gives every co-document count (no loop over documents, topics or pairs).
To score many sets of topics (the pivots of a path), stack them into one ``topics``
array: the reference is then read once. AP (2,246 documents, 10 topics of 10 words):
a few milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
import torch

from .. import checks
from ..data import Corpus
from ..errors import ConfigError, DataError

if TYPE_CHECKING:
    from .._types import ArrayOrTensor, Counts

__all__ = ["Coherence", "MEASURES", "topic_coherence"]

MEASURES = ("umass", "npmi")

# Röder et al. (2015) and gensim: small enough to leave any observed probability intact.
NPMI_EPSILON = 1e-12

_DEFAULT_TOP_N = 10

# Largest (documents x distinct top words) incidence multiplied as a dense array (32 MB);
# BLAS beats scipy's sparse product there, whose output is dense anyway.
_DENSE_MAX_ENTRIES = 2**22


@dataclass(frozen=True)
class Coherence:
    """Per-topic coherence of top words (see the module docstring for the definitions).

    Attributes
    ----------
    per_topic : (K,) float64 array
        Each topic's score: the mean over its top words' pairs (nats).
    mean : float
        Mean of ``per_topic`` over the K topics.
    measure : {"umass", "npmi"}
    top_n : int
        Top words scored per topic (n).
    epsilon : float
        Smoothing added to P(w_i, w_j), in probability units.
    n_docs : int
        Documents N in the reference.
    word_ids : (K, n) int64 array
        The scored words of every topic, most probable first.
    """

    per_topic: np.ndarray
    mean: float
    measure: str
    top_n: int
    epsilon: float
    n_docs: int
    word_ids: np.ndarray


def _counts(reference) -> sp.csr_matrix:
    """The (N, V) counts of ``reference`` as CSR (a Corpus's own matrix, not copied)."""
    if isinstance(reference, Corpus):
        counts = reference.counts
    elif sp.issparse(reference):
        # Checked, as a new canonical CSR (a word listed twice for a document summed).
        counts = checks.count_matrix(reference, "reference")
    else:
        raise ConfigError(
            "reference must be an elbolab.data.Corpus or a scipy.sparse document-term "
            f"matrix, got {type(reference).__name__}"
        )
    if counts.shape[0] == 0:
        raise DataError("reference has no documents")
    return counts


def _co_documents(counts: sp.csr_matrix, words: np.ndarray) -> np.ndarray:
    """(U, U) float64 co-document counts of the distinct ``words``: entry (a, b) is the
    number of documents holding both, the diagonal each word's document frequency.

    Only the words' columns are taken (scipy's column indexing reads the index array
    once) and binarized; then one product of the (N, U) incidence with itself. It is
    done by BLAS on a dense copy when that copy is small (the usual case: K topics of
    10 words on a corpus of thousands of documents), else as a sparse product; both
    sum 0/1 values in float64, exactly.
    """
    present = counts[:, words]
    present.data = (present.data > 0).astype(np.float64)
    if present.shape[0] * present.shape[1] <= _DENSE_MAX_ENTRIES:
        dense = present.toarray()
        return dense.T @ dense
    return (present.T @ present).toarray()


def _word_ids(topics, top_n, n_words: int) -> np.ndarray:
    """(K, n) word ids from a topic-word matrix (its top_n columns per row, largest first)
    or from ordered ids (their first top_n columns)."""
    if sp.issparse(topics):
        topics = topics.toarray()
    elif isinstance(topics, torch.Tensor):
        topics = topics.detach().cpu().numpy()  # lambda read off a path, say
    arr = np.asarray(topics)
    if arr.ndim != 2:
        raise ConfigError(
            f"topics must be a 2-D (K, V) topic-word matrix or (K, n) word ids, got shape "
            f"{arr.shape}"
        )
    if arr.shape[0] == 0:
        raise ConfigError("topics has no rows (K = 0)")
    if top_n is not None:
        top_n = checks.integer(top_n, "top_n", minimum=2)
    if arr.dtype.kind in "iu":
        n = arr.shape[1] if top_n is None else top_n
        if n > arr.shape[1]:
            raise ConfigError(f"top_n = {n} but topics gives {arr.shape[1]} word ids per topic")
        if n < 2:
            raise ConfigError(f"topics must give at least 2 word ids per topic, got {n}")
        ids = arr[:, :n].astype(np.int64)
        bad = (ids < 0) | (ids >= n_words)
        if bad.any():
            k, i = np.argwhere(bad)[0]
            raise ConfigError(
                f"topics: word id {ids[k, i]} (topic {k}) is outside the reference's "
                f"vocabulary of {n_words} words"
            )
        for k in range(ids.shape[0]):
            if np.unique(ids[k]).size != n:
                raise ConfigError(f"topics: topic {k} repeats a word id")
        return ids
    if arr.dtype.kind != "f":
        raise ConfigError(
            f"topics must be real (topic-word weights) or integer ids, got {arr.dtype}"
        )
    if arr.shape[1] != n_words:
        raise ConfigError(
            f"topics has {arr.shape[1]} columns but the reference has {n_words} words"
        )
    if not np.all(np.isfinite(arr)):
        raise ConfigError("topics has NaN or infinite weights")
    n = _DEFAULT_TOP_N if top_n is None else top_n
    if n > n_words:
        raise ConfigError(f"top_n = {n} is more than the {n_words} words of the vocabulary")
    # Stable, so tied weights keep vocabulary order (as a reader of the table expects).
    return np.argsort(-arr, axis=1, kind="stable")[:, :n].astype(np.int64)


def topic_coherence(
    topics: ArrayOrTensor | sp.spmatrix | sp.sparray,
    reference: Counts,
    *,
    measure: str = "umass",
    top_n: int | None = None,
    epsilon: float | None = None,
) -> Coherence:
    """Coherence of every topic's top words in a reference corpus (UMass or NPMI).

    Parameters
    ----------
    topics : (K, V) array (or tensor) of topic-word weights, or (K, n) integer word ids
        Real weights (lambda of Blei et al. 2003, or topic-word probabilities beta): the
        ``top_n`` largest of each row are scored, largest first. Integer ids: each row
        is a topic's words already ordered, most probable first (UMass depends on the
        order, NPMI does not).
    reference : elbolab.data.Corpus or (N, V) scipy.sparse matrix of counts
        The documents co-occurrence is counted in (the training corpus in the studies).
        Only whether a word occurs in a document matters, not how often.
    measure : {"umass", "npmi"}
    top_n : int >= 2, optional
        Words per topic; default 10 for weights, every column for ids.
    epsilon : float > 0, optional
        Added to P(w_i, w_j) (probability units). Default: ``1 / N`` for UMass
        (Mimno et al.'s +1 co-document), 1e-12 for NPMI (Röder et al.; gensim).
        ``epsilon=1e-12`` with UMass gives gensim's ``u_mass``.

    Returns
    -------
    Coherence
        ``per_topic`` (K,), ``mean`` and the settings used.

    Raises
    ------
    ConfigError
        Unknown ``measure``; ``top_n`` < 2; no topics; a word id outside the reference's
        vocabulary; a topic's top word that occurs in no reference document (named); a
        reference that is neither a Corpus nor a scipy.sparse matrix.
    DataError
        A sparse reference that is not a 2-D matrix of counts (non-negative integers),
        or a reference with no documents.
    NumericalError
        An NPMI pair whose normalizer -log(P(w_i, w_j) + epsilon) is 0 (an epsilon so
        small that it vanishes beside a pair present in every document).

    Examples
    --------
    >>> from elbolab.data import Corpus
    >>> corpus = Corpus.from_dense([[1, 1, 0], [1, 0, 2], [0, 1, 1]])
    >>> c = topic_coherence([[0, 1], [0, 2]], corpus, measure="umass")
    >>> bool(c.per_topic[0] == c.per_topic[1])  # each pair shares 1 of w0's 2 documents
    True
    """
    if measure not in MEASURES:
        raise ConfigError(f"measure must be one of {', '.join(MEASURES)}, got {measure!r}")
    counts = _counts(reference)
    n_docs, n_words = counts.shape
    ids = _word_ids(topics, top_n, n_words)
    if epsilon is None:
        epsilon = 1.0 / n_docs if measure == "umass" else NPMI_EPSILON
    epsilon = checks.positive(epsilon, "epsilon")

    # One product for every pair of every topic: the distinct top words' columns only.
    unique, pos = np.unique(ids, return_inverse=True)
    pos = pos.reshape(ids.shape)
    co = _co_documents(counts, unique)
    doc_freq = np.diag(co).copy()
    unseen = doc_freq[pos] == 0
    if unseen.any():
        k, i = np.argwhere(unseen)[0]
        raise ConfigError(
            f"topics: word id {ids[k, i]} (topic {k}, rank {i}) occurs in no reference "
            f"document, where {measure} is undefined; score the topics against a corpus "
            "that contains their top words"
        )

    p_joint = co[pos[:, :, None], pos[:, None, :]] / n_docs  # (K, n, n): P(w_i, w_j)
    p_word = doc_freq[pos] / n_docs  # (K, n): P(w_i)
    n = ids.shape[1]
    rows, cols_ = np.tril_indices(n, k=-1)  # i > j: w_j ranks above w_i
    joint = p_joint[:, rows, cols_] + epsilon
    if measure == "umass":
        pair = np.log(joint) - np.log(p_word[:, cols_])
    else:
        pmi = np.log(joint) - np.log(p_word[:, rows]) - np.log(p_word[:, cols_])
        with np.errstate(divide="ignore", invalid="ignore"):  # refused just below
            pair = pmi / -np.log(joint)
    per_topic = pair.mean(axis=1)
    checks.finite(per_topic, "topic_coherence", f"the {measure} score of a topic")
    return Coherence(
        per_topic=per_topic,
        mean=float(per_topic.mean()),
        measure=measure,
        top_n=n,
        epsilon=epsilon,
        n_docs=int(n_docs),
        word_ids=ids,
    )
