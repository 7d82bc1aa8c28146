"""lda-c reader and writer: round trips, every malformed input, and the real AP corpus."""

import time
from pathlib import Path

import numpy as np
import pytest

from elbolab.data import Corpus, load_ap, read_ldac, read_vocab, write_ldac
from elbolab.errors import DataError


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


VOCAB = "alpha\nbeta\ngamma\ndelta\n"


# -------------------------------------------------------------------------- good files


def test_read_small(tmp_path):
    dat = write(tmp_path, "c.dat", "2 0:3 2:1\n0\n1 3:4\n")
    c = read_ldac(dat, write(tmp_path, "v.txt", VOCAB))
    assert c.vocab == ["alpha", "beta", "gamma", "delta"]
    np.testing.assert_array_equal(c.to_dense(), [[3, 0, 1, 0], [0, 0, 0, 0], [0, 0, 0, 4]])
    assert c.doc_ids is None and c.counts.dtype == np.int64


def test_read_without_vocab_and_unsorted_pairs(tmp_path):
    c = read_ldac(write(tmp_path, "c.dat", "2 4:1 1:2\n1 0:1"))  # no final newline
    assert c.vocab == ["w0", "w1", "w2", "w3", "w4"]
    np.testing.assert_array_equal(c.to_dense(), [[0, 2, 0, 0, 1], [1, 0, 0, 0, 0]])


def test_crlf_and_extra_spaces_accepted(tmp_path):
    c = read_ldac(
        write(tmp_path, "c.dat", "2  0:3\t2:1 \r\n1 3:4\r\n"),
        write(tmp_path, "v.txt", VOCAB.replace("\n", "\r\n")),
    )
    assert c.vocab[0] == "alpha" and c.n_tokens == 8


def test_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    dense = rng.poisson(0.7, size=(40, 25)) * (rng.random((40, 25)) < 0.3)
    dense[3] = 0  # an empty document is written "0"
    c = Corpus.from_dense(dense, vocab=[f"wörd{i}" for i in range(25)])
    write_ldac(c, tmp_path / "out.dat", tmp_path / "out.vocab")
    back = read_ldac(tmp_path / "out.dat", tmp_path / "out.vocab")
    assert back.vocab == c.vocab
    assert (back.counts != c.counts).nnz == 0
    assert (tmp_path / "out.dat").read_text().splitlines()[3] == "0"
    # Writing what was read gives the same bytes.
    write_ldac(back, tmp_path / "again.dat", tmp_path / "again.vocab")
    assert (tmp_path / "again.dat").read_bytes() == (tmp_path / "out.dat").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "again.dat",
        "again.vocab",
        "out.dat",
        "out.vocab",
    ]  # no temp files left behind


def test_write_is_atomic_on_failure(tmp_path):
    dat = write(tmp_path, "keep.dat", "1 0:1\n")
    bad = Corpus.from_dense(np.ones((1, 2), int), vocab=["ok", "two words\n"])
    with pytest.raises(DataError, match="cannot be written"):
        write_ldac(bad, dat, tmp_path / "keep.vocab")
    assert dat.read_text() == "1 0:1\n"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.dat"]


def test_write_into_missing_directory_is_dataerror(tmp_path):
    blocker = write(tmp_path, "file", "x")
    c = Corpus.from_dense(np.ones((1, 1), int))
    with pytest.raises(DataError):
        write_ldac(c, blocker / "sub" / "c.dat", None)


# -------------------------------------------------------------------------- bad files

BAD_DAT = [
    ("1 0:1\n2 0:1 1:x\n", 2, "count in '1:x'"),
    ("1 0:1\n2 0:1 1\n", 2, "malformed pair '1'"),
    ("1 0:1:2\n", 1, "malformed pair"),
    ("1 0:1\n1 -1:2\n", 2, "word id in '-1:2'"),
    ("1 0:1\n1 1:-1\n", 2, "count in '1:-1'"),
    ("1 0:1\n1 0:1\n1 2:1.5\n", 3, "count in '2:1.5'"),
    ("1 0:1\n1 2:0\n", 2, "count of word id 2 is 0"),
    ("1 0:1\n3 0:1 1:1\n", 2, "header says 3 pairs but the line holds 2"),
    ("2 0:1 1:1\n0 1:1\n", 2, "header says 0 pairs"),
    ("1 0:1\n1 1:1\n2 3:1 3:2\n", 3, "word id 3 repeats"),
    ("1 0:1\n1 9:1\n", 2, "word id 9 outside the vocabulary of 4 words"),
    ("1 0:1\n\n1 1:1\n", 2, "blank line"),
    ("1 0:1\n   \n1 1:1\n", 2, "blank line"),
    ("1 0:1\n1 1:1\n\n", 3, "blank line"),
    ("x 0:1\n", 1, "number of pairs must be a non-negative integer"),
    ("0:1 1:1\n", 1, "must start with the number of pairs"),
    ("1 0:1\n1 1:1 é\n", 2, "not valid ascii"),
    ("1 0:99999999999999999999\n", 1, "number too large"),
]


@pytest.mark.parametrize("text, line, match", BAD_DAT)
def test_malformed_dat(tmp_path, text, line, match):
    dat = write(tmp_path, "bad.dat", text)
    with pytest.raises(DataError, match=match) as err:
        read_ldac(dat, write(tmp_path, "v.txt", VOCAB))
    assert f"bad.dat:{line}:" in str(err.value)
    assert err.value.line == line


@pytest.mark.parametrize("text", ["", "\n", "  \n"])
def test_empty_dat(tmp_path, text):
    with pytest.raises(DataError, match="no documents") as err:
        read_ldac(write(tmp_path, "empty.dat", text))
    assert "empty.dat" in str(err.value)


def test_missing_files(tmp_path):
    with pytest.raises(DataError, match="not found") as err:
        read_ldac(tmp_path / "nope.dat")
    assert "nope.dat" in str(err.value)
    dat = write(tmp_path, "c.dat", "1 0:1\n")
    with pytest.raises(DataError, match="nope.txt: vocabulary file not found"):
        read_ldac(dat, tmp_path / "nope.txt")
    with pytest.raises(DataError, match="directory"):
        read_ldac(tmp_path)


@pytest.mark.parametrize(
    "text, line, match",
    [
        ("a\n\nb\n", 2, "blank line"),
        ("a\nb\na\n", 3, r"word 'a' repeats \(first on line 1\)"),
        ("a\nb\n \n", 3, "blank line"),
        (b"a\n\xff\n", 2, "not valid utf-8"),
    ],
)
def test_malformed_vocab(tmp_path, text, line, match):
    vocab = write(tmp_path, "bad_vocab.txt", text)
    with pytest.raises(DataError, match=match) as err:
        read_vocab(vocab)
    assert f"bad_vocab.txt:{line}:" in str(err.value)


def test_empty_vocab(tmp_path):
    with pytest.raises(DataError, match="bad_vocab.txt: vocabulary file is empty"):
        read_vocab(write(tmp_path, "bad_vocab.txt", ""))


# ------------------------------------------------------------------------------- real AP


def test_load_ap_real(real_data):
    root = Path(real_data("ap"))
    t0 = time.perf_counter()
    c = load_ap(root)
    elapsed = time.perf_counter() - t0
    assert (c.n_docs, c.n_words, c.n_tokens, c.nnz) == (2246, 10473, 435_838, 302_031)
    lengths = c.doc_lengths
    assert (lengths.min(), int(np.median(lengths)), lengths.max()) == (2, 176, 620)
    assert c.vocab[:3] == ["i", "new", "percent"]
    assert elapsed < 2.0  # about 0.15 s on the development machine; generous for CI


def test_ap_roundtrip_real(tmp_path, real_data):
    c = read_ldac(*(Path(real_data("ap")) / "ap" / n for n in ("ap.dat", "vocab.txt")))
    write_ldac(c, tmp_path / "ap.dat", tmp_path / "vocab.txt")
    back = read_ldac(tmp_path / "ap.dat", tmp_path / "vocab.txt")
    assert back.vocab == c.vocab and (back.counts != c.counts).nnz == 0
