"""RunDir: refusing foreign or non-empty folders, atomic writes, JSON/arrays/checkpoints."""

import dataclasses
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from elbolab.errors import ConfigError
from elbolab.report import RunDir, atomic_write, new_figure, to_jsonable


def leftovers(folder):
    """Temporary files left behind by atomic_write."""
    return [p.name for p in Path(folder).rglob("*.tmp")]


# -- creating, refusing, overwriting, resuming ---------------------------------------------


def test_creates_missing_directory_with_parents(tmp_path):
    rd = RunDir(tmp_path / "a" / "b")
    assert rd.path.is_dir() and rd.figures.is_dir()
    assert rd.checkpoints == rd.path / "checkpoints"
    assert not rd.is_complete()


def test_refuses_non_empty_directory(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="--resume.*--overwrite") as err:
        RunDir(tmp_path)
    assert str(tmp_path) in str(err.value)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_refuses_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError, match="not a directory"):
        RunDir(tmp_path / "f")


def test_directory_with_only_own_empty_subfolders_counts_as_empty(tmp_path):
    first = RunDir(tmp_path / "run")  # made figures/, then "crashed"
    first.checkpoints.mkdir()
    assert sorted(p.name for p in first.path.iterdir()) == ["checkpoints", "figures"]
    again = RunDir(tmp_path / "run")  # no --resume needed: nothing in it is a result
    assert again.figures.is_dir() and not again.is_complete()
    # One file anywhere makes it a run that needs --resume or --overwrite.
    (first.figures / "a.png").write_bytes(b"png")
    with pytest.raises(ConfigError, match="--resume"):
        RunDir(tmp_path / "run")


def test_overwrite_refuses_foreign_non_empty_folder(tmp_path):
    (tmp_path / "thesis.tex").write_text("precious")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "data.csv").write_text("1,2")
    for kw in ({"overwrite": True}, {"resume": True}):
        with pytest.raises(ConfigError, match="config.json"):
            RunDir(tmp_path, **kw)
    assert (tmp_path / "thesis.tex").read_text() == "precious"
    assert (tmp_path / "sub" / "data.csv").exists()


def test_overwrite_clears_a_run_directory(tmp_path):
    rd = RunDir(tmp_path / "run")
    rd.write_json("config.json", {"seed": 1})
    rd.write_json("metrics.json", {"elbo": -1.0})
    rd.save_checkpoint("step", {"i": 3})
    rd2 = RunDir(tmp_path / "run", overwrite=True)
    assert sorted(p.name for p in rd2.path.iterdir()) == ["figures"]
    assert not rd2.is_complete()


def test_resume_keeps_content(tmp_path):
    rd = RunDir(tmp_path / "run")
    rd.write_json("config.json", {"seed": 1})
    rd.save_checkpoint("step", {"i": 3})
    rd2 = RunDir(tmp_path / "run", resume=True)
    assert rd2.read_json("config.json") == {"seed": 1}
    assert rd2.load_checkpoint("step") == {"i": 3}


def test_resume_and_overwrite_together_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="not both"):
        RunDir(tmp_path, resume=True, overwrite=True)


# -- atomicity -----------------------------------------------------------------------------


def test_failed_replace_leaves_no_target_and_no_temp_file(tmp_path, monkeypatch):
    rd = RunDir(tmp_path / "run")

    def boom(src, dst):
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk on fire"):
        rd.write_json("metrics.json", {"a": 1})
    with pytest.raises(OSError):
        rd.save_arrays({"x": np.arange(3)})
    with pytest.raises(OSError):
        rd.save_checkpoint("k", {"a": 1})
    fig, ax = new_figure()
    with pytest.raises(OSError):
        rd.save_figure(fig, "f")
    assert not rd.is_complete()
    assert sorted(p.name for p in rd.path.rglob("*")) == ["checkpoints", "figures"]
    assert leftovers(rd.path) == []


def test_failure_mid_write_keeps_previous_version(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")

    def half(fh):
        fh.write("new, partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, half, text=True)
    assert target.read_text() == "old"
    assert leftovers(tmp_path) == []


def test_unconvertible_json_raises_before_touching_file(tmp_path):
    rd = RunDir(tmp_path / "run")
    rd.write_json("m.json", {"a": 1})
    with pytest.raises(TypeError, match=r"\$\.b\.c"):
        rd.write_json("m.json", {"a": 2, "b": {"c": object()}})
    assert rd.read_json("m.json") == {"a": 1}


# -- JSON ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Cfg:
    k: int = 3
    lr: float = 1e-3
    root: Path = Path("/data")
    sizes: tuple = (2, 10, 20)


def test_json_round_trip_with_numpy_nan_and_dataclass(tmp_path):
    rd = RunDir(tmp_path / "run")
    obj = {
        "z": np.float32(0.5),
        "n": np.int64(7),
        "flag": np.bool_(True),
        "arr": np.array([[1.0, np.nan], [np.inf, -np.inf]]),
        "nan": float("nan"),
        "cfg": Cfg(),
        "ids": {1: "a"},
    }
    path = rd.write_json("metrics.json", obj)
    text = path.read_text()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"invalid JSON constant {c}"))
    assert list(json.loads(text)) == list(obj)  # insertion order, not sorted
    raw = rd.read_json("metrics.json")
    assert raw == to_jsonable(obj)
    assert raw["arr"] == [[1.0, "nan"], ["inf", "-inf"]]
    assert raw["cfg"] == {"k": 3, "lr": 1e-3, "root": "/data", "sizes": [2, 10, 20]}
    assert raw["ids"] == {"1": "a"}
    assert raw["z"] == 0.5 and raw["n"] == 7 and raw["flag"] is True
    dec = rd.read_json("metrics.json", decode_nonfinite=True)
    assert math.isnan(dec["nan"]) and dec["arr"][1] == [math.inf, -math.inf]
    assert not rd.is_complete()  # metrics.json alone: the report is still to come
    (rd / "report.html").write_text("<html></html>")
    assert rd.is_complete()


# -- arrays, checkpoints, figures ----------------------------------------------------------


def test_arrays_round_trip(tmp_path):
    rd = RunDir(tmp_path / "run")
    arrays = {"elbo": np.linspace(0, 1, 5), "counts": np.arange(6).reshape(2, 3)}
    assert rd.save_arrays(arrays).name == "arrays.npz"
    back = rd.load_arrays()
    assert set(back) == set(arrays)
    for k in arrays:
        np.testing.assert_array_equal(back[k], arrays[k])
        assert back[k].dtype == arrays[k].dtype


def test_checkpoint_round_trip_and_clear(tmp_path):
    rd = RunDir(tmp_path / "run")
    rd.write_json("config.json", {"k": 5})  # studies write it first; --resume needs it
    assert rd.load_checkpoint("restart-0") is None
    state = {"lam": np.random.default_rng(0).random((3, 4)), "it": 12, "cfg": Cfg(k=5)}
    rd.save_checkpoint("restart-0", state)
    assert (rd.checkpoints / "restart-0.pkl").is_file()
    back = RunDir(tmp_path / "run", resume=True).load_checkpoint("restart-0")
    np.testing.assert_array_equal(back["lam"], state["lam"])
    assert back["it"] == 12 and back["cfg"] == Cfg(k=5)
    rd.clear_checkpoints()
    assert not rd.checkpoints.exists()
    assert rd.load_checkpoint("restart-0") is None
    rd.clear_checkpoints()  # idempotent


def test_checkpoint_key_must_be_a_plain_name(tmp_path):
    rd = RunDir(tmp_path / "run")
    with pytest.raises(ValueError):
        rd.save_checkpoint("../escape", 1)


def test_corrupt_checkpoint_is_a_config_error(tmp_path):
    rd = RunDir(tmp_path / "run")
    rd.checkpoints.mkdir()
    (rd.checkpoints / "bad.pkl").write_bytes(b"not a pickle")
    with pytest.raises(ConfigError, match="--overwrite"):
        rd.load_checkpoint("bad")


def test_save_figure_writes_png(tmp_path):
    rd = RunDir(tmp_path / "run")
    fig, ax = new_figure()
    ax.plot([0, 1], [1, 0])
    path = rd.save_figure(fig, "line")
    assert path == rd.figures / "line.png"
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert rd.save_figure(new_figure()[0], "other.png").name == "other.png"
