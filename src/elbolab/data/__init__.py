"""Data layer: corpora, MNIST readers, dataset registry and downloads, synthetic data.

Loaders take a ``root``; without one they search ``$ELBOLAB_DATA`` and then the user
cache (see :func:`find_root`). ``elbolab data fetch NAME`` (:func:`fetch`) fills the cache.
"""

from __future__ import annotations

import os

from elbolab.data.corpus import Corpus
from elbolab.data.fetch import (
    DATASETS,
    DatasetSpec,
    Source,
    StoredFile,
    check,
    default_cache,
    fetch,
    find_root,
)
from elbolab.data.formats import read_corpus
from elbolab.data.ldac import read_ldac, read_vocab, write_ldac
from elbolab.data.mnist import load_binarized_mnist, load_mnist, read_amat, read_idx
from elbolab.data.synthetic import lda_corpus
from elbolab.data.uci import read_uci

__all__ = [
    "Corpus",
    "read_ldac",
    "write_ldac",
    "read_vocab",
    "read_uci",
    "read_corpus",
    "load_ap",
    "load_mnist",
    "load_binarized_mnist",
    "read_idx",
    "read_amat",
    "find_root",
    "fetch",
    "check",
    "default_cache",
    "DATASETS",
    "DatasetSpec",
    "Source",
    "StoredFile",
    "lda_corpus",
]


def load_ap(root: str | os.PathLike | None = None) -> Corpus:
    """Load the Associated Press corpus of lda-c (Blei, Ng & Jordan 2003).

    Parameters
    ----------
    root : str or Path, optional
        Data root holding ``ap/ap.dat`` and ``ap/vocab.txt`` (see :func:`find_root`).

    Returns
    -------
    Corpus
        2246 documents x 10473 words, 435,838 tokens; ``doc_ids`` is None (the DOCNOs
        live in ``ap/ap.txt.gz``, in the same order as the documents).
    """
    base = find_root("ap", root)
    return read_ldac(base / "ap" / "ap.dat", base / "ap" / "vocab.txt")
