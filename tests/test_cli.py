"""The elbolab command end to end on a tiny corpus made here, and its bad-input contract."""

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from elbolab import cli
from elbolab.data import lda_corpus, write_ldac
from elbolab.landscape import LDAObjective
from elbolab.studies import lda_runs


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
    """The CLI; studies and fits run serially unless a test names a scheduler."""
    args = [str(a) for a in args]
    if args[0] in ("run", "lda") and "--scheduler" not in args:
        args += ["--scheduler", "serial"]
    return cli.main(args)


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


def test_resume_after_interruption_gives_the_same_numbers(
    tiny, tmp_path, monkeypatch, interrupt_at_checkpoint
):
    clean = tmp_path / "clean"
    assert run(*fit_args(tiny, clean)) == 0

    # Checkpoint every iteration and die (as ^C would) at the third checkpoint.
    monkeypatch.setattr(lda_runs, "_CHECKPOINT_SECONDS", -1.0)
    broken = tmp_path / "broken"
    with interrupt_at_checkpoint(3):
        assert run(*fit_args(tiny, broken)) == 130
    assert not (broken / "metrics.json").exists()
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


def _corpus(text: str, vocab: str = "a\nb\nc\n"):
    """Args for `lda fit` on a corpus file holding ``text``."""

    def build(tmp: Path, real_data):
        dat, voc = _write(tmp / "bad.dat", text), _write(tmp / "bad.vocab", vocab)
        return ("lda", "fit", "--topics", 2, "--corpus", dat, "--vocab", voc)

    return build


def _truncated_mnist(tmp: Path, real_data):
    """The real MNIST training images cut off after 5000 bytes (a broken download)."""
    source = Path(real_data("mnist")) / "mnist"
    (tmp / "root" / "mnist").mkdir(parents=True)
    for f in source.iterdir():
        data = f.read_bytes()
        (tmp / "root" / "mnist" / f.name).write_bytes(
            data[:5000] if "train-images" in f.name else data
        )
    return ("run", "linear", "--preset", "smoke", "--data", tmp / "root")


def _malformed_amat(tmp: Path, real_data):
    """Binarized MNIST whose second image has 783 pixels instead of 784."""
    folder = tmp / "root" / "binarized_mnist"
    folder.mkdir(parents=True)
    lines = ["0 " * 783 + "1", "0 " * 782 + "1"]
    for split in ("train", "valid", "test"):
        with gzip.open(folder / f"binarized_mnist_{split}.amat.gz", "wt") as fh:
            fh.write("\n".join(lines) + "\n")
    return ("run", "surgery", "--preset", "smoke", "--data", tmp / "root")


def _args(*args):
    return lambda tmp, real_data: args


def _nan_in_the_path(tmp: Path, tiny_root: Path, monkeypatch):
    """The ELBO turns NaN between the maxima: NEB must stop with a message, not write NaN."""
    real = LDAObjective.__call__

    def nan_inside(self, x):
        values = real(self, x)
        # Only where the optimizer asks for gradients: the straight line stays finite.
        if x.requires_grad and values.ndim == 1 and len(values) > 2:
            values = values.clone()
            values[1:-1] = float("nan")
        return values

    monkeypatch.setattr(LDAObjective, "__call__", nan_inside)
    return ("run", "landscape", "--preset", "smoke", "--data", tiny_root)


# case -> (builder of the CLI arguments, a piece of the expected one-line message)
BAD_INPUTS = {
    "malformed pair": (_corpus("2 0:1 1-2\n"), "bad.dat:1"),
    "truncated document": (_corpus("2 0:1 1:1\n2 0:1\n"), "bad.dat:2"),
    "word id outside the vocabulary": (_corpus("2 0:1 9:2\n"), "bad.dat:1"),
    "zero count": (_corpus("1 0:1\n2 0:0 1:1\n"), "bad.dat:2"),
    "non-integer count": (_corpus("2 0:1 1:1.5\n"), "bad.dat:1"),
    "empty corpus": (_corpus(""), "bad.dat"),
    "empty vocabulary": (_corpus("1 0:1\n", vocab=""), "bad.vocab"),
    "missing corpus": (
        _args("lda", "fit", "--topics", 2, "--corpus", "/nonexistent/x.dat"),
        "x.dat",
    ),
    "truncated MNIST download": (_truncated_mnist, "train-images-idx3-ubyte.gz"),
    "malformed binarized MNIST": (_malformed_amat, "amat.gz:2"),
    "unknown study": (_args("run", "nope", "--preset", "smoke"), "nope"),
    "unknown preset": (_args("run", "lda", "--preset", "huge"), "huge"),
    "unknown key": (_args("run", "lda", "--preset", "smoke", "--set", "topicz=3"), "topicz"),
    "wrong type": (_args("run", "lda", "--preset", "smoke", "--set", "restarts=many"), "restarts"),
    "K below 1": (_args("lda", "fit", "--topics", 0), "topics"),
    "K below 1 in a study": (
        _args("run", "lda", "--preset", "smoke", "--set", "topics=0"),
        "topics",
    ),
    "negative alpha": (_args("lda", "fit", "--topics", 2, "--alpha", -1), "alpha"),
    "zero eta": (_args("lda", "fit", "--topics", 2, "--eta", 0), "eta"),
    "NaN learning rate": (
        _args("run", "landscape", "--preset", "smoke", "--set", "neb_lr=nan"),
        "neb_lr",
    ),
    "infinite spring": (
        _args("run", "landscape", "--preset", "smoke", "--set", "spring=inf"),
        "spring",
    ),
    "unknown scheduler": (
        _args("run", "lda", "--preset", "smoke", "--scheduler", "udp://x:1"),
        "scheduler",
    ),
    "NaN inside a path optimizer": (_nan_in_the_path, "NEB: iteration"),
}


def _build(case, tmp_path, real_data, monkeypatch, tiny_data):
    build, expected = BAD_INPUTS[case]
    if build is _nan_in_the_path:
        return build(tmp_path, tiny_data.root, monkeypatch), expected
    return build(tmp_path, real_data), expected


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(
    case, tmp_path, capsys, monkeypatch, real_data, tiny_data
):
    args, expected = _build(case, tmp_path, real_data, monkeypatch, tiny_data)
    out = tmp_path / "out"
    code = run(*args, "--out", out)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("elbolab: error:") and len(err.splitlines()) == 1, err
    assert expected in err
    assert not out.exists()


def test_bad_input_with_progress_bars_on_still_ends_in_one_error_line(
    tmp_path, capsys, monkeypatch, real_data, tiny_data
):
    """Bars asked for where stderr is no terminal: they are drawn, and the error is still
    one line of its own, the last, with no traceback."""
    monkeypatch.setenv("ELBOLAB_PROGRESS", "1")
    monkeypatch.delenv("ELBOLAB_NO_PROGRESS", raising=False)
    args, expected = _build(
        "NaN inside a path optimizer", tmp_path, real_data, monkeypatch, tiny_data
    )
    out = tmp_path / "out"
    code = run(*args, "--out", out)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.rstrip("\n").split("\n")  # a bar redraws itself with \r on one line
    assert "it/s" in err or "s/it" in err, "no progress bar was drawn"
    assert lines[-1].startswith("elbolab: error:") and expected in lines[-1], err
    assert not any("error" in line or "Traceback" in line for line in lines[:-1]), err
    assert not out.exists()


def test_no_progress_bars_when_stderr_is_not_a_terminal(tiny, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("ELBOLAB_NO_PROGRESS", raising=False)
    monkeypatch.delenv("ELBOLAB_PROGRESS", raising=False)
    assert run(*fit_args(tiny, tmp_path / "out")) == 0
    assert capsys.readouterr().err == ""


def test_data_check_on_the_mirror(capsys, real_data):
    root = real_data("ap")
    assert run("data", "check", "ap", "--root", root) == 0
    assert "FAILED" not in capsys.readouterr().out


def test_lda_smoke_preset_on_ap(tmp_path, real_data):
    root = real_data("ap")
    out = tmp_path / "smoke"
    assert run("run", "lda", "--preset", "smoke", "--out", out, "--data", root) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"]["n_words"] == 10473
    assert -9.5 < metrics["per_k"]["3"]["elbo_per_token_best"] < -7.5
