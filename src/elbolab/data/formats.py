"""Pick the reader for a corpus file by its name: UCI bag-of-words or lda-c."""

from __future__ import annotations

import os
from pathlib import Path

from elbolab import checks
from elbolab.data.corpus import Corpus
from elbolab.data.ldac import read_ldac
from elbolab.data.uci import read_uci
from elbolab.errors import ConfigError

__all__ = ["read_corpus"]


def _uci_vocab_path(docword_path: str | os.PathLike) -> Path | None:
    """The UCI vocabulary file named like ``docword_path``, or None if it is not UCI.

    ``docword.NAME.txt`` and ``docword.NAME.txt.gz`` go with ``vocab.NAME.txt`` in the
    same folder (whether or not that file exists).
    """
    path = Path(docword_path)
    if not path.name.startswith("docword."):
        return None
    middle = path.name[len("docword.") :].removesuffix(".gz").removesuffix(".txt")
    return path.with_name(f"vocab.{middle}.txt")


def read_corpus(path: str | os.PathLike, vocab: str | os.PathLike | None = None) -> Corpus:
    """Read a corpus file in the format its name implies.

    A file named ``docword.*`` (e.g. ``docword.kos.txt`` or ``docword.nytimes.txt.gz``)
    is read as UCI bag-of-words (:func:`~elbolab.data.read_uci`); any other as lda-c
    (:func:`~elbolab.data.read_ldac`).

    Parameters
    ----------
    path : str or Path
        The corpus file.
    vocab : str or Path, optional
        Its vocabulary, one word per line. A UCI file needs one: without it,
        ``vocab.NAME.txt`` beside ``docword.NAME.txt`` is used if it exists. An lda-c file
        without it gets the words ``w0, w1, ...``.

    Returns
    -------
    Corpus
        ``counts`` of shape ``(D, V)``.

    Raises
    ------
    ConfigError
        A UCI file with no ``vocab`` given and no ``vocab.NAME.txt`` beside it.
    DataError
        A missing or malformed file (see the readers).
    """
    path = checks.path(path, "path")
    uci_vocab = _uci_vocab_path(path)
    if uci_vocab is None:
        return read_ldac(path, vocab)
    if vocab is None:
        if not uci_vocab.is_file():
            raise ConfigError(
                f"vocab: {path.name} is a UCI docword file and needs its vocabulary; "
                f"give vocab ({uci_vocab.name} is not beside it)"
            )
        vocab = uci_vocab
    return read_uci(path, vocab)
