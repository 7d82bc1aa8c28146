"""Corpora with known truth, drawn from the generative model of LDA (Blei et al. 2003)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from elbolab import checks
from elbolab.data.corpus import Corpus
from elbolab.errors import ConfigError

if TYPE_CHECKING:
    from elbolab._types import ArrayOrTensor, Seed

__all__ = ["lda_corpus"]


def _concentration(value, size: int, name: str) -> np.ndarray:
    if checks.is_real(value):
        value = checks.positive(value, name)
    arr = checks.real_tensor(value, name, ConfigError).detach().cpu().numpy()
    arr = arr.astype(np.float64)
    if arr.ndim == 0:
        arr = np.full(size, float(arr))
    if arr.shape != (size,):
        raise ConfigError(f"{name} must be a scalar or have shape ({size},), got {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ConfigError(f"{name} must be positive and finite")
    return arr


def _doc_lengths(doc_length, n_docs: int, rng: np.random.Generator) -> np.ndarray:
    if not checks.is_real(doc_length):  # bools excluded
        raise ConfigError(f"doc_length must be a positive int or float, got {doc_length!r}")
    if checks.is_integer(doc_length):
        if doc_length < 1:
            raise ConfigError(f"doc_length must be at least 1, got {doc_length}")
        return np.full(n_docs, int(doc_length), dtype=np.int64)
    if np.isfinite(doc_length) and doc_length > 0:
        # Poisson lengths, floored at 1 so that no document is empty.
        return np.maximum(rng.poisson(float(doc_length), size=n_docs), 1).astype(np.int64)
    raise ConfigError(f"doc_length must be a positive int or float, got {doc_length!r}")


def lda_corpus(
    n_docs: int,
    n_words: int,
    n_topics: int,
    doc_length: int | float = 100,
    alpha: float | ArrayOrTensor = 0.1,
    eta: float | ArrayOrTensor = 0.01,
    seed: Seed = 0,
) -> tuple[Corpus, np.ndarray, np.ndarray]:
    """Draw a corpus from LDA's generative model, returning the truth with it.

    topics beta_k ~ Dirichlet(eta), k = 1..K; proportions theta_d ~ Dirichlet(alpha);
    document d's counts ~ Multinomial(N_d, theta_d @ beta), which is the same as drawing
    each token's topic z ~ theta_d and then its word w ~ beta_z and counting.

    Parameters
    ----------
    n_docs, n_words, n_topics : int
        D, V and K.
    doc_length : int or float
        An int gives every document exactly that many tokens N_d. A float is a Poisson
        mean: N_d = max(1, Poisson(doc_length)), so no document is empty.
    alpha : float or (K,) array_like
        Dirichlet parameter of the topic proportions theta.
    eta : float or (V,) array_like
        Dirichlet parameter of the topics beta.
    seed : int or numpy.random.Generator

    Returns
    -------
    corpus : Corpus
        ``(D, V)`` int64 counts, vocabulary ``["w0", ...]``, no doc_ids.
    topics : (K, V) float64
        beta, rows sum to 1.
    theta : (D, K) float64
        Topic proportions, rows sum to 1.
    """
    n_docs = checks.integer(n_docs, "n_docs", 1)
    n_words = checks.integer(n_words, "n_words", 1)
    n_topics = checks.integer(n_topics, "n_topics", 1)
    rng = checks.numpy_rng(seed, "seed")
    alpha = _concentration(alpha, n_topics, "alpha")
    eta = _concentration(eta, n_words, "eta")
    topics = rng.dirichlet(eta, size=n_topics)
    theta = rng.dirichlet(alpha, size=n_docs)
    lengths = _doc_lengths(doc_length, n_docs, rng)
    probs = theta @ topics
    # Renormalise: rounding in the product can push a row's sum a hair above 1, which
    # multinomial rejects.
    probs /= probs.sum(axis=1, keepdims=True)
    counts = rng.multinomial(lengths, probs)  # (D, V), one row per document
    corpus = Corpus(sp.csr_matrix(counts.astype(np.int64)), [f"w{i}" for i in range(n_words)])
    return corpus, topics, theta
