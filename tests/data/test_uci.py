"""UCI bag-of-words reader: good files (plain, gzip, odd spacing, small parse blocks), every
malformed input with its file and line, and read_corpus's choice of format."""

import gzip

import numpy as np
import pytest

from elbolab.data import lda_corpus, read_corpus, read_ldac, read_uci, write_ldac
from elbolab.data import uci as uci_module
from elbolab.errors import ConfigError, DataError

VOCAB = "alpha\nbeta\ngamma\ndelta\n"  # W = 4

# D = 3 (document 2 has no line: an empty row), pairs not sorted.
GOOD = "3\n4\n4\n3 4 5\n1 1 2\n1 3 1\n3 2 7\n"
GOOD_DENSE = [[2, 0, 1, 0], [0, 0, 0, 0], [0, 7, 0, 5]]


def write(tmp_path, name, text, compress=False):
    path = tmp_path / name
    data = text.encode("utf-8") if isinstance(text, str) else text
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def read(tmp_path, text, vocab=VOCAB, compress=False):
    docword = write(tmp_path, "docword.t.txt", text, compress)
    return read_uci(docword, write(tmp_path, "vocab.t.txt", vocab))


def to_uci(corpus, order) -> str:
    """A corpus as UCI text, its triples in the given order of the CSR entries."""
    coo = corpus.counts.tocoo()
    lines = [f"{coo.row[i] + 1} {coo.col[i] + 1} {coo.data[i]}" for i in order]
    return f"{corpus.n_docs}\n{corpus.n_words}\n{coo.nnz}\n" + "\n".join(lines) + "\n"


# -------------------------------------------------------------------------- good files


def test_read_small_keeps_unlisted_documents_as_empty_rows(tmp_path):
    c = read(tmp_path, GOOD)
    assert c.vocab == ["alpha", "beta", "gamma", "delta"]
    np.testing.assert_array_equal(c.to_dense(), GOOD_DENSE)
    assert c.counts.dtype == np.int64 and c.doc_ids is None and c.n_tokens == 15


@pytest.mark.parametrize("name", ["docword.t.txt.gz", "docword.t.txt"])
def test_gzip_is_recognized_by_its_bytes_not_its_name(tmp_path, name):
    docword = write(tmp_path, name, GOOD, compress=True)
    c = read_uci(docword, write(tmp_path, "vocab.t.txt", VOCAB))
    np.testing.assert_array_equal(c.to_dense(), GOOD_DENSE)


def test_plain_text_named_gz_is_read_as_text(tmp_path):
    docword = write(tmp_path, "docword.t.txt.gz", GOOD)
    c = read_uci(docword, write(tmp_path, "vocab.t.txt", VOCAB))
    np.testing.assert_array_equal(c.to_dense(), GOOD_DENSE)


def test_crlf_tabs_extra_spaces_and_no_final_newline(tmp_path):
    text = "3\r\n4\r\n 4 \r\n3\t4  5\r\n 1 1 2\r\n1 3 1 \r\n3 2 7"
    np.testing.assert_array_equal(read(tmp_path, text).to_dense(), GOOD_DENSE)


def test_no_triples_at_all(tmp_path):
    c = read(tmp_path, "2\n4\n0\n")
    assert c.counts.shape == (2, 4) and c.nnz == 0


@pytest.mark.parametrize("shuffle", [False, True], ids=["sorted", "shuffled"])
@pytest.mark.parametrize("block", [1, 7, 64, 1 << 20])
def test_round_trip_of_a_random_corpus_in_any_block_size(tmp_path, monkeypatch, block, shuffle):
    """Blocks much smaller than a line exercise the joining of lines split between reads;
    sorted triples (as UCI ships them) take the direct CSR path, shuffled ones the other."""
    monkeypatch.setattr(uci_module, "_BLOCK_BYTES", block)
    corpus, _, _ = lda_corpus(
        n_docs=30, n_words=25, n_topics=3, doc_length=20, alpha=0.3, eta=0.2, seed=3
    )
    order = np.arange(corpus.nnz)
    if shuffle:
        order = np.random.default_rng(0).permutation(corpus.nnz)
    vocab = "".join(f"{w}\n" for w in corpus.vocab)
    for compress in (False, True):
        got = read(tmp_path, to_uci(corpus, order), vocab, compress)
        assert got.vocab == corpus.vocab
        np.testing.assert_array_equal(got.to_dense(), corpus.to_dense())


# --------------------------------------------------------------------------- bad files

# case -> (docword text, line the error must name, piece of the message)
BAD = {
    "word id past W": ("2\n4\n2\n1 1 1\n2 5 3\n", 5, "wordID 5"),
    "word id 0 (ids are 1-based)": ("2\n4\n2\n1 1 1\n2 0 3\n", 5, "wordID 0"),
    "doc id past D": ("2\n4\n3\n1 1 1\n2 2 1\n3 1 1\n", 6, "docID 3"),
    "doc id 0": ("2\n4\n1\n0 1 1\n", 4, "docID 0"),
    "zero count": ("2\n4\n2\n1 1 1\n2 2 0\n", 5, "count is 0"),
    "negative count": ("2\n4\n2\n1 1 1\n2 2 -3\n", 5, "'-3'"),
    "fractional count": ("2\n4\n2\n1 1 1.5\n2 2 1\n", 4, "'1.5'"),
    "word, not a number": ("2\n4\n2\n1 1 1\n2 beta 1\n", 5, "'beta'"),
    "two fields": ("2\n4\n2\n1 1 1\n2 2\n", 5, "found 2"),
    "four fields": ("2\n4\n2\n1 1 1 1\n2 2 1\n", 4, "found 4"),
    "two, then four fields": ("2\n4\n2\n1 1\n2 2 1 1\n", 4, "found 2"),
    "four, then two fields": ("2\n4\n2\n1 1 1 1\n2 2\n", 4, "found 4"),
    "blank line": ("2\n4\n2\n1 1 1\n\n2 2 1\n", 5, "blank line"),
    "number too long": ("2\n4\n1\n1 1 " + "9" * 19 + "\n", 4, "more than 18 digits"),
    "fewer triples than NNZ": ("2\n4\n3\n1 1 1\n2 2 1\n", 3, "NNZ = 3 but the file holds 2"),
    "more triples than NNZ": ("2\n4\n1\n1 1 1\n2 2 1\n", 5, "NNZ = 1"),
    "W differs from the vocabulary": ("2\n5\n1\n1 1 1\n", 2, "W = 5"),
    "repeated pair": ("2\n4\n3\n1 1 1\n2 3 1\n1 1 4\n", 6, "repeats the pair on line 4"),
    "repeated pair, sorted": ("2\n4\n3\n1 1 1\n1 1 4\n2 2 1\n", 5, "repeats the pair on line 4"),
    "header not a number": ("2\nfour\n1\n1 1 1\n", 2, "'four'"),
    "header with two numbers": ("2 4\n4\n1\n1 1 1\n", 1, "'2 4'"),
    "D = 0": ("0\n4\n0\n", 1, "D = 0"),
    "file ends inside the header": ("2\n4\n", 3, "2 of the three header lines"),
}


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_names_file_and_line(tmp_path, case, compress):
    text, line, piece = BAD[case]
    with pytest.raises(DataError) as info:
        read(tmp_path, text, compress=compress)
    msg = str(info.value)
    assert msg.startswith(f"{tmp_path / 'docword.t.txt'}:{line}: "), msg
    assert piece in msg and "\n" not in msg
    assert info.value.line == line


def test_the_first_of_several_problems_is_reported(tmp_path):
    # Line 5 has a count of 0 and line 6 a word id past W; line 4 repeats nothing.
    with pytest.raises(DataError, match=r"docword.t.txt:5: count is 0"):
        read(tmp_path, "2\n4\n3\n1 1 1\n1 2 0\n2 9 1\n")


@pytest.mark.parametrize("block", [3, 16])
def test_line_numbers_stay_right_across_blocks(tmp_path, monkeypatch, block):
    monkeypatch.setattr(uci_module, "_BLOCK_BYTES", block)
    lines = [f"{d} {w} 1" for d in (1, 2, 3) for w in (1, 2, 3, 4)]
    lines[9] = "3 2 x"  # file line 13
    text = "3\n4\n12\n" + "\n".join(lines) + "\n"
    with pytest.raises(DataError, match=r"docword.t.txt:13: count must be a positive integer"):
        read(tmp_path, text)
    lines[9] = "3 2 1"
    lines[11] = "1 3 1"  # repeats line 6 at file line 15
    text = "3\n4\n12\n" + "\n".join(lines) + "\n"
    with pytest.raises(DataError, match=r"docword.t.txt:15: docID 1 wordID 3 repeats .* line 6"):
        read(tmp_path, text)


def test_empty_missing_and_damaged_files(tmp_path):
    with pytest.raises(DataError, match=r"docword.t.txt: empty file"):
        read(tmp_path, "")
    vocab = write(tmp_path, "vocab.t.txt", VOCAB)
    with pytest.raises(DataError, match=r"nope.txt: UCI docword file not found"):
        read_uci(tmp_path / "nope.txt", vocab)
    truncated = gzip.compress(GOOD.encode() * 50)[:-30]
    with pytest.raises(DataError, match=r"docword.t.txt: damaged gzip file"):
        read_uci(write(tmp_path, "docword.t.txt", truncated), vocab)


def test_vocabulary_problems_name_the_vocabulary_file(tmp_path):
    with pytest.raises(DataError, match=r"vocab.t.txt:3: word 'alpha' repeats"):
        read(tmp_path, GOOD, vocab="alpha\nbeta\nalpha\ndelta\n")


def test_bad_argument_types(tmp_path):
    with pytest.raises(ConfigError, match="docword_path"):
        read_uci(None, write(tmp_path, "vocab.t.txt", VOCAB))


# ------------------------------------------------------------------------ read_corpus


def test_read_corpus_picks_uci_by_name_and_finds_its_vocabulary(tmp_path):
    write(tmp_path, "vocab.kos.txt", VOCAB)
    for name in ("docword.kos.txt", "docword.kos.txt.gz"):
        docword = write(tmp_path, name, GOOD, compress=name.endswith(".gz"))
        c = read_corpus(docword)
        assert c.vocab[0] == "alpha"
        np.testing.assert_array_equal(c.to_dense(), GOOD_DENSE)
    other = write(tmp_path, "words.txt", "a\nb\nc\nd\n")
    assert read_corpus(tmp_path / "docword.kos.txt", other).vocab == ["a", "b", "c", "d"]


def test_read_corpus_uci_without_vocabulary(tmp_path):
    docword = write(tmp_path, "docword.nips.txt", GOOD)
    with pytest.raises(ConfigError, match=r"vocab: .*vocab.nips.txt is not beside it"):
        read_corpus(docword)


def test_read_corpus_reads_other_files_as_ldac(tmp_path):
    corpus, _, _ = lda_corpus(
        n_docs=10, n_words=8, n_topics=2, doc_length=10, alpha=0.5, eta=0.5, seed=0
    )
    write_ldac(corpus, tmp_path / "c.dat", tmp_path / "c.vocab")
    got = read_corpus(tmp_path / "c.dat", tmp_path / "c.vocab")
    want = read_ldac(tmp_path / "c.dat", tmp_path / "c.vocab")
    np.testing.assert_array_equal(got.to_dense(), want.to_dense())
    assert got.vocab == want.vocab
