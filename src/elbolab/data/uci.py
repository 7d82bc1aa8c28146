"""Read the UCI "Bag of Words" format (KOS, NIPS, Enron, NYTimes, PubMed; Newman et al.).

A ``docword.NAME.txt`` file, plain or gzipped, holds three header lines and then one
``docID wordID count`` triple per line::

    D
    W
    NNZ
    1 7 2
    1 19 1
    ...

with 1-based ids (``docID`` in 1..D, ``wordID`` in 1..W) and NNZ triples. The companion
``vocab.NAME.txt`` holds W words, one per line, word ``i`` on line ``i``.

The reader checks every line and reports the first problem as one
:class:`~elbolab.errors.DataError` naming the file and the 1-based line. It parses with
numpy a few megabytes at a time, so the NYTimes file (about 1 GB of text, 70 million
triples) never sits in memory as Python objects.
"""

from __future__ import annotations

import gzip
import io
import os
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from elbolab import checks
from elbolab.data.corpus import Corpus
from elbolab.data.ldac import _read_bytes, read_vocab
from elbolab.errors import DataError

__all__ = ["read_uci"]

# Text is parsed in blocks of this many bytes (cut at line ends): large enough for numpy
# to amortize its per-call cost, small enough that the temporary arrays stay ~100 MB.
_BLOCK_BYTES = 8 << 20
_MAX_DIGITS = 18  # every accepted number fits in int64 without overflow checks
# Ids become int32 sparse indices and (doc, word) keys D * W must fit in int64.
_MAX_ID = 2**31 - 1
_FIELDS = ("docID", "wordID", "count")
_HEADER = ("D (number of documents)", "W (vocabulary size)", "NNZ (number of triples)")

_ALLOWED = np.zeros(256, dtype=bool)
_ALLOWED[np.frombuffer(b"0123456789 \t\r\n", dtype=np.uint8)] = True


def read_uci(docword_path: str | os.PathLike, vocab_path: str | os.PathLike) -> Corpus:
    """Read a UCI bag-of-words ``docword`` file and its vocabulary into a :class:`Corpus`.

    Parameters
    ----------
    docword_path : str or Path
        ``docword.NAME.txt`` or ``docword.NAME.txt.gz``; gzip is recognized by the file's
        first two bytes, not by its name.
    vocab_path : str or Path
        ``vocab.NAME.txt``, W words, one per line.

    Returns
    -------
    Corpus
        ``counts`` of shape ``(D, W)``, int64, row ``d`` is the document with
        ``docID = d + 1`` and column ``w`` the word with ``wordID = w + 1``; ``doc_ids`` is
        None. The header's D is the truth: a docID that never appears in the file is kept
        as an empty row (the UCI files drop documents that lost all their words to the
        stop-word and frequency filters, yet keep their ids).

    Raises
    ------
    DataError
        One line naming the file and the 1-based line: a missing, empty or damaged
        (gzip) file, a header line that is not one non-negative integer, D = 0, a header W
        that differs from the vocabulary's length, a line that is not three positive
        integers, a docID above D, a wordID above W, a count of 0, a (docID, wordID) pair
        listed twice, or a number of triples different from the header's NNZ. Problems
        with the vocabulary file name that file (see :func:`~elbolab.data.read_vocab`).
    """
    path = checks.path(docword_path, "docword_path")
    vocab = read_vocab(vocab_path)
    chunks = _line_chunks(_blocks(_read_bytes(path, "UCI docword file"), path))
    n_docs, n_words, nnz, rest = _read_header(chunks, path)
    if n_words != len(vocab):
        raise DataError(
            f"header says W = {n_words} words but the vocabulary {vocab_path} has {len(vocab)}",
            path,
            2,
        )

    # One array per chunk of 0-based document ids, word ids and counts; each list starts
    # with an empty array so that a file without triples concatenates too.
    docs, words, counts = [np.zeros(0, np.int32)], [np.zeros(0, np.int32)], [np.zeros(0, np.int64)]
    n_rows = 0
    last_key = -1
    ordered = True  # pairs in increasing (docID, wordID) order, as in the UCI files
    for chunk in _prepend(rest, chunks):
        first_line = 4 + n_rows  # every line after the three header lines is one triple
        rows = _parse_triples(chunk, first_line, path)
        _check_values(rows, first_line, n_rows, (n_docs, n_words, nnz), path)
        doc = (rows[:, 0] - 1).astype(np.int32)
        word = (rows[:, 1] - 1).astype(np.int32)
        if ordered and len(rows):
            key = doc.astype(np.int64) * n_words + word
            ordered = bool(key[0] > last_key and np.all(key[1:] > key[:-1]))
            last_key = int(key[-1])
        docs.append(doc)
        words.append(word)
        counts.append(rows[:, 2])
        n_rows += len(rows)
    if n_rows != nnz:
        raise DataError(
            f"header says NNZ = {nnz} but the file holds {n_rows} (docID, wordID, count) lines",
            path,
            3,
        )

    doc, word, count = np.concatenate(docs), np.concatenate(words), np.concatenate(counts)
    del docs, words, counts  # free the per-chunk copies before the matrix is built
    if ordered:
        # Sorted and without repeats: the arrays already are CSR's indices and data.
        indptr = np.zeros(n_docs + 1, dtype=np.int64)
        np.cumsum(np.bincount(doc, minlength=n_docs), out=indptr[1:])
        mat = sp.csr_matrix((count, word, indptr), shape=(n_docs, n_words))
    else:
        # tocsr adds up repeated (doc, word) entries; fewer stored entries than lines
        # means a pair was listed twice, which is an error, so only then look for where.
        mat = sp.coo_matrix((count, (doc, word)), shape=(n_docs, n_words)).tocsr()
        if mat.nnz != n_rows:
            _raise_first_repeat(doc, word, n_words, path)
    return Corpus(mat, vocab)


# ------------------------------------------------------------------- byte stream


def _blocks(raw: bytes, path: Path) -> Iterator[bytes]:
    """The file's (decompressed) bytes, in blocks of about ``_BLOCK_BYTES``."""
    if raw[:2] != b"\x1f\x8b":  # gzip's magic number
        for start in range(0, len(raw), _BLOCK_BYTES):
            yield raw[start : start + _BLOCK_BYTES]
        return
    stream = gzip.GzipFile(fileobj=io.BytesIO(raw))
    while True:
        try:
            block = stream.read(_BLOCK_BYTES)
        except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
            raise DataError(f"damaged gzip file: {exc}", path) from None
        if not block:
            return
        yield block


def _line_chunks(blocks: Iterator[bytes]) -> Iterator[bytes]:
    """Regroup blocks into chunks of whole lines, each chunk ending with a newline."""
    carry = b""
    for block in blocks:
        data = carry + block
        cut = data.rfind(b"\n") + 1
        if cut:
            yield data[:cut]
        carry = data[cut:]
    if carry:  # a last line without its final newline
        yield carry + b"\n"


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


# ------------------------------------------------------------------------ parsing


def _read_header(chunks: Iterator[bytes], path: Path) -> tuple[int, int, int, bytes]:
    """Parse D, W, NNZ; return them and the bytes after the header's third line."""
    head = b""
    for chunk in chunks:
        head += chunk
        if head.count(b"\n") >= 3:
            break
    if not head.strip():
        raise DataError("empty file (a UCI docword file starts with lines D, W, NNZ)", path)
    lines = head.split(b"\n", 3)
    if len(lines) < 4:
        raise DataError(
            f"the file ends after {len(lines) - 1} of the three header lines D, W, NNZ",
            path,
            len(lines),
        )
    values = []
    for lineno, (name, line) in enumerate(zip(_HEADER, lines[:3], strict=True), start=1):
        text = line.decode("utf-8", "backslashreplace").strip()
        if not (text.isascii() and text.isdigit()) or len(text) > _MAX_DIGITS:
            raise DataError(
                f"header line {lineno} must hold {name} as one non-negative integer, "
                f"found {text!r}",
                path,
                lineno,
            )
        values.append(int(text))
    n_docs, n_words, nnz = values
    if n_docs == 0:
        raise DataError("D = 0: no documents", path, 1)
    for lineno, value in ((1, n_docs), (2, n_words)):
        if value > _MAX_ID:
            raise DataError(f"{_HEADER[lineno - 1]} = {value} is above 2**31 - 1", path, lineno)
    return n_docs, n_words, nnz, lines[3]


def _parse_triples(chunk: bytes, first_line: int, path: Path) -> np.ndarray:
    """Parse a chunk of whole lines, each ``docID wordID count``, into an (n, 3) int64 array.

    The checks are vectorized; when one fails, the offending line is found and explained
    in :func:`_diagnose` (``first_line`` is the file's line number of the chunk's first).
    """
    buf = np.frombuffer(chunk, dtype=np.uint8)
    newlines = np.flatnonzero(buf == ord("\n"))
    allowed = _ALLOWED[buf]
    if not allowed.all():
        _fail_at_byte(chunk, newlines, int(np.argmin(allowed)), first_line, path)

    digit = (buf - ord("0")) < 10  # uint8 arithmetic wraps the non-digits above 10
    begin = digit.copy()
    begin[1:] &= ~digit[:-1]
    end = digit.copy()
    end[:-1] &= ~digit[1:]
    starts = np.flatnonzero(begin)
    lengths = np.flatnonzero(end) + 1 - starts

    # Three numbers a line: with 3n numbers in all, it suffices that numbers 3i and 3i + 2
    # both start on line i (they are sorted, so number 3i + 1 lies between them).
    n = newlines.size
    if not (
        starts.size == 3 * n
        and np.all(starts[0::3][1:] > newlines[:-1])
        and np.all(starts[2::3] < newlines)
    ):
        n_fields = np.diff(np.searchsorted(starts, newlines), prepend=0)
        wrong = int(np.flatnonzero(n_fields != 3)[0])
        line_start = int(newlines[wrong - 1]) + 1 if wrong else 0
        _fail_at_byte(chunk, newlines, line_start, first_line, path)
    long = np.flatnonzero(lengths > _MAX_DIGITS)
    if long.size:
        _fail_at_byte(chunk, newlines, int(starts[long[0]]), first_line, path)

    # The chunk is now plain digits and blanks, three numbers of at most 18 digits a
    # line, which numpy's C text parser reads exactly (and faster than anything here).
    values = np.fromstring(chunk, dtype=np.int64, sep=" ")
    if values.size != 3 * newlines.size:  # impossible after the checks above
        raise RuntimeError(f"parsed {values.size} numbers from {newlines.size} lines")
    return values.reshape(-1, 3)


def _check_values(rows, first_line: int, n_before: int, header, path: Path) -> None:
    """Range checks of one chunk's triples; report the earliest line that fails any."""
    n_docs, n_words, nnz = header
    doc, word, count = rows[:, 0], rows[:, 1], rows[:, 2]
    problems = (
        (doc < 1) | (doc > n_docs),
        (word < 1) | (word > n_words),
        count == 0,
        np.arange(n_before, n_before + len(rows)) >= nnz,
    )
    firsts = [np.flatnonzero(p)[:1] for p in problems]
    hits = [(int(f[0]), k) for k, f in enumerate(firsts) if f.size]
    if not hits:
        return
    i, kind = min(hits)
    messages = (
        f"docID {doc[i]} outside 1..{n_docs} (header line 1 says D = {n_docs})",
        f"wordID {word[i]} outside 1..{n_words} (the vocabulary has W = {n_words} words)",
        "count is 0; counts must be positive",
        f"more triples than the header's NNZ = {nnz} (line 3)",
    )
    raise DataError(messages[kind], path, first_line + i)


def _raise_first_repeat(doc, word, n_words: int, path: Path) -> None:
    """Name the first line whose (docID, wordID) pair was already listed."""
    key = doc.astype(np.int64) * n_words + word
    order = np.argsort(key, kind="stable")  # equal keys keep their file order
    same = np.flatnonzero(np.diff(key[order]) == 0)
    later = order[same + 1]
    j = int(later.min())
    first = int(np.flatnonzero(key == key[j])[0])
    raise DataError(
        f"docID {doc[j] + 1} wordID {word[j] + 1} repeats the pair on line {first + 4}",
        path,
        j + 4,
    )


# ------------------------------------------------------------------ diagnostics


def _fail_at_byte(chunk: bytes, newlines, pos: int, first_line: int, path: Path) -> None:
    """Raise DataError for the line of ``chunk`` holding byte ``pos``, saying what is wrong."""
    index = int(np.searchsorted(newlines, pos))  # newlines before pos = line index
    lo = int(newlines[index - 1]) + 1 if index else 0
    hi = int(newlines[index])
    raise DataError(_diagnose(chunk[lo:hi]), path, first_line + index)


def _diagnose(line: bytes) -> str:
    """Explain why ``line`` is not ``docID wordID count`` with positive integers."""
    text = line.decode("utf-8", "backslashreplace").strip()
    fields = text.split()
    if not fields:
        return "blank line (every line after the header is 'docID wordID count')"
    if len(fields) != 3:
        return f"expected 3 fields 'docID wordID count', found {len(fields)}: {text!r}"
    for name, tok in zip(_FIELDS, fields, strict=True):
        if not (tok.isascii() and tok.isdigit()):
            return f"{name} must be a positive integer, found {tok!r}"
        if len(tok) > _MAX_DIGITS:
            return f"{name} has more than {_MAX_DIGITS} digits: {tok}"
    return f"unexpected character in {text!r} (fields are separated by spaces or tabs)"
