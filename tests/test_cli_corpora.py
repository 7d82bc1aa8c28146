"""`elbolab lda fit` and `elbolab run lda` on a UCI bag-of-words corpus, and the one-line
error for a broken one."""

import gzip
import json

import numpy as np
import pytest

from elbolab import cli
from elbolab.data import lda_corpus


@pytest.fixture(scope="module")
def uci_files(tmp_path_factory):
    """A small synthetic corpus as docword.tiny.txt.gz + vocab.tiny.txt, one document
    left without words (never listed, so an empty row)."""
    corpus, _, _ = lda_corpus(
        n_docs=40, n_words=30, n_topics=2, doc_length=25, alpha=0.3, eta=0.1, seed=2
    )
    coo = corpus.counts.tocoo()
    keep = coo.row != 5
    lines = [
        f"{d + 1} {w + 1} {n}"
        for d, w, n in zip(coo.row[keep], coo.col[keep], coo.data[keep], strict=True)
    ]
    text = f"{corpus.n_docs}\n{corpus.n_words}\n{len(lines)}\n" + "\n".join(lines) + "\n"
    folder = tmp_path_factory.mktemp("uci")
    docword = folder / "docword.tiny.txt.gz"
    docword.write_bytes(gzip.compress(text.encode()))
    (folder / "vocab.tiny.txt").write_text("".join(f"{w}\n" for w in corpus.vocab))
    return docword, folder / "vocab.tiny.txt", text


def main(*args):
    return cli.main([str(a) for a in args] + ["--scheduler", "serial"])


def test_lda_fit_on_a_uci_corpus(uci_files, tmp_path):
    docword, vocab, _ = uci_files
    out = tmp_path / "run"
    args = ("lda", "fit", "--topics", 2, "--iters", 3, "--out", out)
    assert main(*args, "--corpus", docword, "--vocab", vocab) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"]["n_train_docs"] == 40
    assert set(np.ravel(metrics["per_k"]["2"]["top_words"])) <= set(vocab.read_text().split())


def test_run_lda_finds_the_uci_vocabulary_beside_the_corpus(uci_files, tmp_path):
    docword, _, _ = uci_files
    out = tmp_path / "run"
    settings = ("--set", f"corpus={docword}", "--set", "max_iter=2")
    assert main("run", "lda", "--preset", "smoke", "--out", out, *settings) == 0
    assert json.loads((out / "metrics.json").read_text())["data"]["n_docs"] == 40


def test_broken_uci_corpus_is_one_line_exit_2_and_writes_nothing(uci_files, tmp_path, capsys):
    _, vocab, text = uci_files
    lines = text.splitlines()
    lines[9] = lines[9].rsplit(" ", 1)[0] + " 0"  # file line 10: a count of 0
    docword = tmp_path / "docword.tiny.txt"
    docword.write_text("\n".join(lines) + "\n")
    out = tmp_path / "run"
    code = main(
        "lda",
        "fit",
        "--topics",
        2,
        "--iters",
        3,
        "--out",
        out,
        "--corpus",
        docword,
        "--vocab",
        vocab,
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and f"{docword}:10: count is 0" in err, err
    assert not out.exists()
