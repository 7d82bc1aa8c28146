"""Read and write the lda-c sparse bag-of-words format (Blei's lda-c, also used by gensim).

Each line of a ``.dat`` file is one document::

    N id:count id:count ...

where ``N`` is the number of ``id:count`` pairs, ids are 0-based indexes into the
vocabulary file (one word per line) and counts are positive integers. An empty document
is written ``0``.

The reader validates every line and reports the first problem as a
:class:`~elbolab.errors.DataError` naming the file and the 1-based line. It stays fast on
real corpora (AP: 2246 documents, 302k pairs, well under a second) because each line is
checked with one compiled regular expression and all numbers are then converted at once.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from elbolab import checks
from elbolab.data.corpus import Corpus
from elbolab.errors import DataError
from elbolab.files import atomic_write, reading

__all__ = ["read_ldac", "write_ldac", "read_vocab"]

# At most 18 digits so that every accepted number fits in int64 without overflow checks.
_NUM = r"[0-9]{1,18}"
_LINE_RE = re.compile(rf"[ \t]*{_NUM}(?:[ \t]+{_NUM}:{_NUM})*[ \t]*\r?", re.ASCII)
_PAIR_RE = re.compile(rf"{_NUM}:{_NUM}", re.ASCII)


def _read_bytes(path: Path, what: str) -> bytes:
    with reading(path, what):
        return path.read_bytes()


def _decode(raw: bytes, path: Path, encoding: str) -> str:
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(
            f"not valid {encoding} text (byte 0x{raw[exc.start]:02x})", path, line
        ) from None


def _split_lines(text: str) -> list[str]:
    """Split on newlines; one final newline ends the last line instead of adding one."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def read_vocab(vocab_path: str | os.PathLike) -> list[str]:
    """Read a vocabulary file: one word per line, line ``i`` (0-based) is word id ``i``.

    Leading and trailing whitespace (including a Windows ``\\r``) is stripped.

    Raises
    ------
    DataError
        Missing file, empty file, blank line or a word that repeats (with its line).
    """
    path = checks.path(vocab_path, "vocab_path")
    words = [
        w.strip()
        for w in _split_lines(_decode(_read_bytes(path, "vocabulary file"), path, "utf-8"))
    ]
    if not words:
        raise DataError("vocabulary file is empty", path)
    first_line: dict[str, int] = {}
    for lineno, word in enumerate(words, start=1):
        if not word:
            raise DataError("blank line in vocabulary (one word per line expected)", path, lineno)
        if word in first_line:
            raise DataError(
                f"word {word!r} repeats (first on line {first_line[word]})", path, lineno
            )
        first_line[word] = lineno
    return words


def _diagnose_line(line: str) -> str:
    """Explain why ``line`` (which failed the fast regular expression) is malformed."""
    toks = line.split()
    if not toks:
        return "blank line (every line must hold a document; an empty one is written '0')"
    head = toks[0]
    if ":" in head:
        return f"line must start with the number of pairs N, found {head!r}"
    if not head.isascii() or not head.isdigit():
        return f"number of pairs must be a non-negative integer, found {head!r}"
    if len(head) > 18:
        return f"number of pairs too large: {head}"
    for tok in toks[1:]:
        if _PAIR_RE.fullmatch(tok):
            continue
        parts = tok.split(":")
        if len(parts) != 2:
            return f"malformed pair {tok!r}, expected id:count"
        wid, cnt = parts
        if not (wid.isascii() and wid.isdigit()):
            return f"word id in {tok!r} must be a non-negative integer"
        if not (cnt.isascii() and cnt.isdigit()):
            return f"count in {tok!r} must be a positive integer"
        return f"number too large in {tok!r}"
    return "malformed line (unexpected characters)"


def read_ldac(dat_path: str | os.PathLike, vocab_path: str | os.PathLike | None = None) -> Corpus:
    """Read an lda-c ``.dat`` file (and its vocabulary) into a :class:`Corpus`.

    Parameters
    ----------
    dat_path : str or Path
        One document per line, ``N id:count ...``.
    vocab_path : str or Path, optional
        One word per line. Without it the vocabulary is ``["w0", ..., "w{M}"]`` with
        ``M`` the largest word id.

    Returns
    -------
    Corpus
        ``counts`` of shape ``(D, V)``, int64; ``doc_ids`` is None.

    Raises
    ------
    DataError
        Naming the file and 1-based line: missing or empty file, blank or malformed line,
        a header ``N`` that disagrees with the number of pairs, a count that is not a
        positive integer, a word id outside the vocabulary, or a word id repeated within a
        document.
    """
    path = checks.path(dat_path, "dat_path")
    vocab = None if vocab_path is None else read_vocab(vocab_path)
    text = _decode(_read_bytes(path, "lda-c file"), path, "ascii")
    lines = _split_lines(text)
    if not lines or all(not ln.strip() for ln in lines):
        raise DataError("no documents (empty file)", path)

    for lineno, line in enumerate(lines, start=1):
        if not _LINE_RE.fullmatch(line):
            raise DataError(_diagnose_line(line), path, lineno)

    # Every line is now "N a:b c:d ..." with plain digits: convert all numbers in one go.
    heads = []
    n_pairs = np.empty(len(lines), dtype=np.int64)
    pair_toks: list[str] = []
    for i, line in enumerate(lines):
        toks = line.split()
        heads.append(toks[0])
        n_pairs[i] = len(toks) - 1
        pair_toks.extend(toks[1:])
    header = np.array(heads, dtype=np.int64)
    bad = np.flatnonzero(header != n_pairs)
    if bad.size:
        i = int(bad[0])
        raise DataError(
            f"header says {header[i]} pairs but the line holds {n_pairs[i]}", path, i + 1
        )
    nums = np.array(":".join(pair_toks).split(":") if pair_toks else [], dtype=np.int64)
    ids, counts = nums[0::2], nums[1::2]
    rows = np.repeat(np.arange(len(lines), dtype=np.int64), n_pairs)

    bad = np.flatnonzero(counts == 0)
    if bad.size:
        j = int(bad[0])
        raise DataError(
            f"count of word id {ids[j]} is 0; counts must be positive", path, int(rows[j]) + 1
        )
    n_vocab = len(vocab) if vocab is not None else (int(ids.max()) + 1 if ids.size else 0)
    bad = np.flatnonzero(ids >= n_vocab)
    if bad.size:
        j = int(bad[0])
        raise DataError(
            f"word id {ids[j]} outside the vocabulary of {n_vocab} words "
            f"(ids run from 0 to {n_vocab - 1})",
            path,
            int(rows[j]) + 1,
        )
    _check_no_repeats(rows, ids, n_vocab, path)

    mat = sp.csr_matrix(
        (counts, ids, np.concatenate(([0], np.cumsum(n_pairs)))), shape=(len(lines), n_vocab)
    )
    if vocab is None:
        vocab = [f"w{i}" for i in range(n_vocab)]
    return Corpus(mat, vocab)


def _check_no_repeats(rows, ids, n_vocab, path) -> None:
    if ids.size < 2:
        return
    key = rows * max(n_vocab, 1) + ids
    order = np.argsort(key, kind="stable")
    dup = np.flatnonzero(np.diff(key[order]) == 0)
    if dup.size:
        j = int(order[dup].min())
        raise DataError(f"word id {ids[j]} repeats within the document", path, int(rows[j]) + 1)


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda fh: fh.write(text), text=True)


def write_ldac(
    corpus: Corpus,
    dat_path: str | os.PathLike,
    vocab_path: str | os.PathLike | None = None,
) -> None:
    """Write a corpus as an lda-c ``.dat`` file and a vocabulary file, atomically.

    Word ids are written in increasing order within each line, so
    ``read_ldac(dat_path, vocab_path)`` returns the same counts and vocabulary (the byte
    layout of a file that was read may differ if its pairs were not sorted).

    Parameters
    ----------
    corpus : Corpus
    dat_path : str or Path
    vocab_path : str or Path, optional
        Skipped when None.

    Raises
    ------
    DataError
        A word that cannot be stored one per line (empty, or with a newline or
        surrounding whitespace), or an OS error while writing.
    """
    if not isinstance(corpus, Corpus):
        raise DataError(f"corpus must be a Corpus, got {type(corpus).__name__}")
    dat_path = checks.path(dat_path, "dat_path")
    if vocab_path is not None:
        vocab_path = checks.path(vocab_path, "vocab_path")
    for i, word in enumerate(corpus.vocab):
        if not word or word != word.strip() or "\n" in word or "\r" in word:
            raise DataError(f"word {i} ({word!r}) cannot be written one word per line")
    mat = corpus.counts
    pairs = [f"{w}:{c}" for w, c in zip(mat.indices.tolist(), mat.data.tolist(), strict=True)]
    indptr = mat.indptr.tolist()
    out = []
    for d in range(mat.shape[0]):
        lo, hi = indptr[d], indptr[d + 1]
        out.append(" ".join([str(hi - lo), *pairs[lo:hi]]))
    try:
        _write_text(dat_path, "\n".join(out) + "\n")
        if vocab_path is not None:
            _write_text(vocab_path, "\n".join(corpus.vocab) + "\n")
    except OSError as exc:
        raise DataError(f"cannot write: {exc.strerror or exc}", exc.filename or dat_path) from None
