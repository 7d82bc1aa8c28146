"""The elbolab command end to end on a tiny corpus made here, and its bad-input contract."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from elbolab import cli
from elbolab.data import lda_corpus, write_ldac
from elbolab.report import RunDir
from elbolab.studies import lda as lda_study


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    corpus, _, _ = lda_corpus(
        n_docs=60, n_words=40, n_topics=3, doc_length=30, alpha=0.3, eta=0.1, seed=1
    )
    folder = tmp_path_factory.mktemp("corpus")
    dat, vocab = folder / "tiny.dat", folder / "tiny.vocab"
    write_ldac(corpus, dat, vocab)
    return dat, vocab


def run(*args):
    return cli.main([str(a) for a in args])


def fit_args(tiny, out, *extra):
    dat, vocab = tiny
    return (
        "lda",
        "fit",
        "--topics",
        3,
        "--restarts",
        2,
        "--iters",
        8,
        "--out",
        out,
        "--corpus",
        dat,
        "--vocab",
        vocab,
        *extra,
    )


def test_lda_fit_writes_a_complete_run(tiny, tmp_path):
    out = tmp_path / "run"
    assert run(*fit_args(tiny, out)) == 0
    for name in ("config.json", "metrics.json", "arrays.npz", "report.html"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    result = metrics["per_k"]["3"]
    assert np.isfinite(result["elbo_best"]) and result["elbo_best"] < 0
    assert len(result["elbo_restarts"]) == 2
    assert metrics["version"] and metrics["seed"] == 0 and "total_seconds" in metrics["timings"]
    history = np.load(out / "arrays.npz")["history_K3"]
    assert history.shape[1] == 2 and np.all(np.diff(history, axis=0) >= -1e-9 * abs(history[0]))
    html = (out / "report.html").read_text()
    assert "data:image/png;base64" in html and "ELBO" in html
    assert not (out / "checkpoints").exists()


def test_report_rerenders_without_recomputing(tiny, tmp_path):
    out = tmp_path / "run"
    assert run(*fit_args(tiny, out)) == 0
    metrics_before = (out / "metrics.json").read_bytes()
    (out / "report.html").unlink()
    assert run("report", out) == 0
    assert (out / "report.html").is_file()
    assert (out / "metrics.json").read_bytes() == metrics_before


def test_second_run_into_full_directory_is_refused(tiny, tmp_path, capsys):
    out = tmp_path / "run"
    assert run(*fit_args(tiny, out)) == 0
    capsys.readouterr()
    assert run(*fit_args(tiny, out)) == 2
    err = capsys.readouterr().err.strip()
    assert "--resume" in err and "\n" not in err
    assert run(*fit_args(tiny, out, "--overwrite")) == 0


def test_resume_after_interruption_gives_the_same_numbers(tiny, tmp_path, monkeypatch):
    clean = tmp_path / "clean"
    assert run(*fit_args(tiny, clean)) == 0

    # Checkpoint every iteration and die (as ^C would) after the third checkpoint.
    monkeypatch.setattr(lda_study, "_CHECKPOINT_SECONDS", -1.0)
    saves = {"n": 0}
    original = RunDir.save_checkpoint

    def save_then_die(self, key, obj):
        original(self, key, obj)
        saves["n"] += 1
        if saves["n"] == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(RunDir, "save_checkpoint", save_then_die)
    broken = tmp_path / "broken"
    assert run(*fit_args(tiny, broken)) == 130
    assert not (broken / "metrics.json").exists()
    monkeypatch.setattr(RunDir, "save_checkpoint", original)
    assert run(*fit_args(tiny, broken, "--resume")) == 0

    a = json.loads((clean / "metrics.json").read_text())
    b = json.loads((broken / "metrics.json").read_text())
    for m in (a, b):
        m.pop("timings")
        m["per_k"]["3"].pop("fit_seconds")
    assert a == b
    arrays_a, arrays_b = np.load(clean / "arrays.npz"), np.load(broken / "arrays.npz")
    for key in arrays_a.files:
        np.testing.assert_array_equal(arrays_a[key], arrays_b[key])


def test_resume_with_different_settings_is_refused(tiny, tmp_path, capsys):
    out = tmp_path / "run"
    assert run(*fit_args(tiny, out)) == 0
    dat, vocab = tiny
    code = run(
        "lda", "fit", "--topics", 4, "--out", out, "--corpus", dat, "--vocab", vocab, "--resume"
    )
    assert code == 2 and "different" in capsys.readouterr().err


def test_run_study_with_overrides(tiny, tmp_path):
    dat, vocab = tiny
    out = tmp_path / "run"
    code = run(
        "run",
        "lda",
        "--preset",
        "smoke",
        "--set",
        f"corpus={dat}",
        "--set",
        f"vocab={vocab}",
        "--set",
        "topics=2,3",
        "--set",
        "n_docs=None",
        "--out",
        out,
    )
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["per_k"]) == {"2", "3"}
    completion = metrics["per_k"]["3"]["completion"]
    assert completion["log_base"] == "e" and completion["n_tokens"] > 0
    assert completion["n_tokens"] == metrics["data"]["n_heldout_tokens"]


def test_list_names_the_studies(capsys):
    assert run("list") == 0
    assert "lda" in capsys.readouterr().out


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


BAD_CORPORA = {
    "malformed pair": ("2 0:1 1-2\n", ":1"),
    "word id outside vocabulary": ("2 0:1 9:2\n", ":1"),
    "zero count": ("1 0:1\n2 0:0 1:1\n", ":2"),
    "non-integer count": ("2 0:1 1:1.5\n", ":1"),
    "header disagrees": ("3 0:1 1:2\n", ":1"),
}


@pytest.mark.parametrize("case", BAD_CORPORA)
def test_bad_corpus_exits_2_names_file_and_line_and_writes_nothing(case, tmp_path, capsys):
    text, line = BAD_CORPORA[case]
    dat = _write(tmp_path / "bad.dat", text)
    vocab = _write(tmp_path / "bad.vocab", "a\nb\nc\n")
    out = tmp_path / "out"
    code = run("lda", "fit", "--topics", 2, "--out", out, "--corpus", dat, "--vocab", vocab)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert "bad.dat" in err and line in err and len(err.splitlines()) == 1
    assert not out.exists()


BAD_SETTINGS = {
    "unknown study": ("run", "nope", "--preset", "smoke"),
    "unknown preset": ("run", "lda", "--preset", "huge"),
    "unknown key": ("run", "lda", "--preset", "smoke", "--set", "topicz=3"),
    "wrong type": ("run", "lda", "--preset", "smoke", "--set", "restarts=many"),
    "K below 1": ("lda", "fit", "--topics", 0),
    "negative alpha": ("lda", "fit", "--topics", 2, "--alpha", -1),
    "zero eta": ("lda", "fit", "--topics", 2, "--eta", 0),
    "missing corpus": ("lda", "fit", "--topics", 2, "--corpus", "/nonexistent/x.dat"),
}


@pytest.mark.parametrize("case", BAD_SETTINGS)
def test_bad_settings_exit_2_and_write_nothing(case, tmp_path, capsys):
    out = tmp_path / "out"
    code = run(*BAD_SETTINGS[case], "--out", out)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("elbolab: error:") and len(err.splitlines()) == 1
    assert not out.exists()


def test_data_check_on_the_mirror(capsys):
    root = os.environ.get("ELBOLAB_DATA")
    if not root or not (Path(root) / "ap" / "ap.dat").exists():
        pytest.skip("ELBOLAB_DATA does not point at the dataset mirror")
    assert run("data", "check", "ap", "--root", root) == 0
    assert "FAILED" not in capsys.readouterr().out


def test_lda_smoke_preset_on_ap(tmp_path):
    root = os.environ.get("ELBOLAB_DATA")
    if not root or not (Path(root) / "ap" / "ap.dat").exists():
        pytest.skip("ELBOLAB_DATA does not point at the dataset mirror")
    out = tmp_path / "smoke"
    assert run("run", "lda", "--preset", "smoke", "--out", out, "--data", root) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"]["n_words"] == 10473
    assert -9.5 < metrics["per_k"]["3"]["elbo_per_token_best"] < -7.5
