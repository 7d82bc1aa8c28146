"""Saved LDA models on the command line: `lda fit` writes them, `--init` starts from one,
`lda transform` applies one to new documents."""

import csv
import json

import numpy as np
import pytest

from elbolab import cli
from elbolab.data import lda_corpus, write_ldac
from elbolab.models import LDA
from elbolab.studies import lda_runs

K = 3


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny corpus and the same vocabulary with two words swapped, as files."""
    corpus, _, _ = lda_corpus(
        n_docs=50, n_words=30, n_topics=K, doc_length=30, alpha=0.3, eta=0.1, seed=2
    )
    folder = tmp_path_factory.mktemp("corpus")
    write_ldac(corpus, folder / "c.dat", folder / "c.vocab")
    words = list(corpus.vocab)
    words[0], words[1] = words[1], words[0]
    (folder / "swapped.vocab").write_text("\n".join(words) + "\n")
    return folder, corpus


def run(*args):
    return cli.main([str(a) for a in args])


def fit(files, out, *extra):
    folder, _ = files
    return run(
        "lda", "fit", "--corpus", folder / "c.dat", "--vocab", folder / "c.vocab",
        "--out", out, "--scheduler", "serial", *extra,
    )  # fmt: skip


@pytest.fixture(scope="module")
def fitted(files, tmp_path_factory):
    """A 15-iteration fit from random topics, alpha not the default 1/K; its run directory."""
    out = tmp_path_factory.mktemp("runs") / "fit"
    assert fit(files, out, "--topics", K, "--iters", 15, "--alpha", 0.4) == 0
    return out


def test_fit_writes_the_model(fitted, files, capsys):
    _, corpus = files
    path = fitted / "models" / f"lda-k{K}.npz"
    model = LDA.load(path)
    assert model.vocab_ == corpus.vocab
    arrays = np.load(fitted / "arrays.npz")
    np.testing.assert_array_equal(model.components_, arrays[f"components_K{K}"])
    assert model.elbo_ == arrays[f"history_K{K}"][-1].max()


def test_fit_prints_the_model_path(files, tmp_path, capsys):
    assert fit(files, tmp_path / "run", "--topics", 2, "--iters", 2) == 0
    model = (tmp_path / "run" / "models" / "lda-k2.npz").resolve()
    assert f"model: {model}" in capsys.readouterr().out.splitlines()


def test_resumed_run_writes_the_same_model_file(
    files, fitted, tmp_path, monkeypatch, interrupt_at_checkpoint
):
    # Checkpoint every iteration and die (as ^C would) at the third checkpoint.
    monkeypatch.setattr(lda_runs, "_CHECKPOINT_SECONDS", -1.0)
    out = tmp_path / "broken"
    args = ("--topics", K, "--iters", 15, "--alpha", 0.4)
    with interrupt_at_checkpoint(3):
        assert fit(files, out, *args) == 130
    assert not (out / "models").exists()
    assert fit(files, out, *args, "--resume") == 0
    name = f"models/lda-k{K}.npz"
    assert (out / name).read_bytes() == (fitted / name).read_bytes()


def test_init_continues_the_saved_fit(files, fitted, tmp_path):
    saved = fitted / "models" / f"lda-k{K}.npz"
    out = tmp_path / "init"
    # No --topics nor --alpha: K and alpha come from the model.
    assert fit(files, out, "--init", saved, "--iters", 3) == 0
    assert json.loads((out / "metrics.json").read_text())["per_k"][str(K)]["alpha"] == 0.4
    final = LDA.load(saved).elbo_
    first_random = np.load(fitted / "arrays.npz")[f"history_K{K}"][0, 0]
    first_init = np.load(out / "arrays.npz")[f"history_K{K}"][0, 0]
    # One iteration from the saved topics lands where the saved fit ended (CAVI goes on
    # climbing, by less than the last iterations did), not where a random start's first
    # iteration is.
    assert abs(first_init - final) < 1e-4 * abs(final)
    assert abs(first_random - final) > 100 * abs(first_init - final)
    assert LDA.load(out / "models" / f"lda-k{K}.npz").elbo_ >= final


@pytest.mark.parametrize(
    "extra, message",
    [
        (("--topics", K + 1), f"K = {K} topics"),
        (("--restarts", 2), "restarts must be 1"),
        (("--vocab-file", "swapped.vocab"), "first differ at word 0"),
    ],
    ids=["wrong-K", "restarts", "wrong-vocabulary"],
)
def test_init_refuses_what_does_not_fit(files, fitted, tmp_path, capsys, extra, message):
    folder, _ = files
    saved = fitted / "models" / f"lda-k{K}.npz"
    out = tmp_path / "init"
    if extra[0] == "--vocab-file":
        code = run(
            "lda", "fit", "--init", saved, "--corpus", folder / "c.dat",
            "--vocab", folder / extra[1], "--out", out, "--scheduler", "serial",
        )  # fmt: skip
    else:
        code = fit(files, out, "--init", saved, *extra)
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and "\n" not in err
    assert not out.exists()


def transform(model, corpus, out, *extra):
    return run("lda", "transform", model, "--corpus", corpus, "--out", out, *extra)


def test_transform_writes_csv_and_npy(files, fitted, tmp_path, capsys):
    folder, corpus = files
    saved = fitted / "models" / f"lda-k{K}.npz"
    vocab = ("--vocab", folder / "c.vocab")
    assert transform(saved, folder / "c.dat", tmp_path / "t.csv", *vocab) == 0
    assert "dropped 0 of" in capsys.readouterr().out
    with open(tmp_path / "t.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["doc"] + [f"topic_{k}" for k in range(K)]
    assert [r[0] for r in rows[1:]] == [str(d) for d in range(corpus.n_docs)]
    theta = np.array([[float(x) for x in r[1:]] for r in rows[1:]])
    assert theta.shape == (corpus.n_docs, K)
    np.testing.assert_allclose(theta.sum(1), 1.0, rtol=1e-12)
    gamma = LDA.load(saved).transform(corpus)
    np.testing.assert_array_equal(theta, gamma / gamma.sum(1, keepdims=True))

    # Without --vocab the word ids are the model's: the same numbers, as .npy.
    assert transform(saved, folder / "c.dat", tmp_path / "t.npy") == 0
    np.testing.assert_array_equal(np.load(tmp_path / "t.npy"), theta)
    assert transform(saved, folder / "c.dat", tmp_path / "t.npy") == 2
    assert "--overwrite" in capsys.readouterr().err
    assert transform(saved, folder / "c.dat", tmp_path / "t.npy", "--overwrite") == 0


def test_transform_maps_words_by_name(files, fitted, tmp_path, capsys):
    # The new corpus lists its words in reverse order and has one the model never saw:
    # its counts must land on the model's columns and the new word's tokens be dropped.
    _, corpus = files
    saved = fitted / "models" / f"lda-k{K}.npz"
    reordered = corpus.subset(np.arange(10))
    counts = reordered.counts.toarray()[:, ::-1]
    extra = np.arange(10)[:, None] % 3
    new = type(corpus).from_dense(np.hstack([counts, extra]), vocab=[*corpus.vocab[::-1], "unseen"])
    write_ldac(new, tmp_path / "new.dat", tmp_path / "new.vocab")
    out = tmp_path / "t.npy"
    assert transform(saved, tmp_path / "new.dat", out, "--vocab", tmp_path / "new.vocab") == 0
    assert f"dropped {extra.sum()} of {new.n_tokens} tokens (1 distinct words" in (
        capsys.readouterr().out
    )
    gamma = LDA.load(saved).transform(reordered)
    np.testing.assert_array_equal(np.load(out), gamma / gamma.sum(1, keepdims=True))


def test_transform_bad_corpus_writes_nothing(files, fitted, tmp_path, capsys):
    folder, _ = files
    saved = fitted / "models" / f"lda-k{K}.npz"
    bad = tmp_path / "bad.dat"
    bad.write_text("2 0:1\n")  # header says two pairs, one follows
    out = tmp_path / "out" / "t.csv"
    assert transform(saved, bad, out) == 2
    err = capsys.readouterr().err.strip()
    assert str(bad) in err and "\n" not in err
    wide = tmp_path / "wide.dat"
    wide.write_text("1 30:2\n")  # word id 30: the model has ids 0..29
    assert transform(saved, wide, out) == 2
    assert "word ids up to 30" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_run_lda_writes_models_and_takes_init(files, fitted, tmp_path, capsys):
    folder, corpus = files
    saved = fitted / "models" / f"lda-k{K}.npz"
    out = tmp_path / "run"
    settings = [f"corpus={folder / 'c.dat'}", f"vocab={folder / 'c.vocab'}", f"topics={K}"]
    settings += ["restarts=1", f"init={saved}", "max_iter=2"]
    code = run(
        "run", "lda", "--preset", "smoke", *(x for s in settings for x in ("--set", s)),
        "--out", out, "--scheduler", "serial",
    )  # fmt: skip
    assert code == 0
    model = LDA.load(out / "models" / f"lda-k{K}.npz")
    assert model.vocab_ == corpus.vocab and model.elbo_ < 0
    # The smoke preset holds out 10% of the documents, so its ELBO is not the saved
    # fit's; the report says where the fit started.
    assert "saved model" in (out / "report.html").read_text()


def test_transform_reads_uci_with_its_vocabulary(files, fitted, tmp_path, capsys):
    # A UCI docword file brings vocab.NAME.txt, so words map by name without --vocab.
    _, corpus = files
    saved = fitted / "models" / f"lda-k{K}.npz"
    part = corpus.subset(np.arange(5)).counts.tocoo()
    order = np.arange(corpus.n_words)[::-1]  # the file lists the words in reverse
    lines = [str(part.shape[0]), str(corpus.n_words), str(part.nnz)]
    lines += [
        f"{d + 1} {order[w] + 1} {c}" for d, w, c in zip(part.row, part.col, part.data, strict=True)
    ]
    (tmp_path / "docword.small.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "vocab.small.txt").write_text("\n".join(corpus.vocab[::-1]) + "\n")
    out = tmp_path / "t.npy"
    assert transform(saved, tmp_path / "docword.small.txt", out) == 0
    assert "dropped 0 of" in capsys.readouterr().out
    gamma = LDA.load(saved).transform(corpus.subset(np.arange(5)))
    np.testing.assert_array_equal(np.load(out), gamma / gamma.sum(1, keepdims=True))
