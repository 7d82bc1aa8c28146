"""Study fixtures: each study's smoke preset run once per session, on the tiny data
root of ``tests/conftest.py`` or on the mirror."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

# The dataset each study reads from the mirror.
from elbolab.studies.tour import DATASET as STUDY_DATASET


@pytest.fixture(scope="session")
def smoke_runs(tmp_path_factory, tiny_data, real_data):
    """``run(study, data, *settings)``: the study's smoke preset run once per session.

    ``data`` is ``"tiny"`` (the :func:`tiny_data` root: always runs) or ``"real"`` (the
    mirror: skips without ``ELBOLAB_DATA``, fails when it is set and wrong). ``settings``
    are ``--set key=value`` overrides. Runs in this process with the serial scheduler
    through the CLI, ``--data`` naming the root; returns ``(rundir, metrics)``.
    """
    from elbolab import cli

    cache = {}

    def run(study: str, data: str, *settings: str):
        key = (study, data, settings)
        if key not in cache:
            if data == "tiny":
                root = tiny_data.root
            elif data == "real":
                root = Path(real_data(STUDY_DATASET[study]))
            else:
                raise ValueError(f"data must be 'tiny' or 'real', got {data!r}")
            out = tmp_path_factory.mktemp(f"{study}_{data}") / "run"
            args = ["run", study, "--preset", "smoke", "--out", str(out), "--data", str(root)]
            args += ["--scheduler", "serial"]
            for setting in settings:
                args += ["--set", setting]
            assert cli.main(args) == 0
            cache[key] = (out, json.loads((out / "metrics.json").read_text()))
        return cache[key]

    return run


def _assert_finite(obj, where="metrics"):
    """Every number in a (nested) metrics dict is finite (non-finite ones are written as
    the strings "nan", "inf", "-inf", which are refused too)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            _assert_finite(v, f"{where}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _assert_finite(v, f"{where}[{i}]")
    elif isinstance(obj, bool) or obj is None:
        pass
    elif isinstance(obj, (int, float)):
        assert np.isfinite(obj), where
    else:
        assert obj not in ("nan", "inf", "-inf"), where


@pytest.fixture(scope="session")
def assert_finite():
    """``assert_finite(metrics)``: every number of a nested metrics dict is finite."""
    return _assert_finite
