"""The tour behind ``elbolab demo``: its presets, its index page, and its command."""

import dataclasses
import html
import json
import re
import shutil
import subprocess
import sys

import pytest

from elbolab import cli, studies
from elbolab.studies import tour

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_every_study_has_a_valid_tour_preset_between_smoke_and_default():
    assert set(tour.ORDER) == set(studies.STUDIES)
    for name in tour.ORDER:
        study = studies.get(name)
        cfg = study.PRESETS["tour"]
        studies.resolved(cfg)  # validates
        # The tour differs from both neighbours: it is its own size, not a copy.
        assert cfg != study.PRESETS["smoke"] and cfg != study.PRESETS["default"], name


@pytest.fixture(scope="module")
def tiny_runs(smoke_runs):
    return {name: smoke_runs(name, "tiny")[0] for name in tour.ORDER}


def test_index_links_every_report_and_shows_figures_and_claims(tiny_runs, tmp_path):
    index = tour.write_index(tmp_path, tiny_runs)
    assert index == tmp_path / "index.html"
    page = index.read_text()
    links = re.findall(r'<a href="([^"]+)">', page)
    assert len(links) == len(tour.ORDER)
    for name, link in zip(tour.ORDER, links, strict=True):
        assert (tmp_path / link).resolve() == (tiny_runs[name] / "report.html").resolve()
        assert f"<h2>{name}: " in page
    # One headline figure per study, embedded.
    assert page.count('<img src="data:image/png;base64,') == len(tour.ORDER)
    # Every claim of every run is in the index with its verdict.
    for rundir in tiny_runs.values():
        for row in json.loads((rundir / "metrics.json").read_text())["claims"]:
            assert html.escape(row["claim"]) in page
            assert html.escape(row["measured"]) in page


def test_a_rerun_keeps_finished_runs_and_replaces_runs_with_other_settings(tiny_runs, tmp_path):
    lda = studies.get("lda")
    rundir = tmp_path / "lda"
    shutil.copytree(tiny_runs["lda"], rundir)
    assert not tour._holds_other_run(rundir, "lda", lda.PRESETS["smoke"])
    other = dataclasses.replace(lda.PRESETS["smoke"], restarts=3)
    assert tour._holds_other_run(rundir, "lda", other)
    # A folder of another study is never taken for the tour's run.
    assert not tour._holds_other_run(rundir, "landscape", studies.get("landscape").PRESETS["smoke"])


def test_demo_without_the_data_says_where_to_put_it(tmp_path, capsys):
    out = tmp_path / "tour"
    assert cli.main(["demo", "--out", str(out), "--data", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "not found under the given root" in err and "elbolab data fetch" in err
    assert not out.exists()


def test_python_dash_m_elbolab_is_the_elbolab_command():
    done = subprocess.run(
        [sys.executable, "-m", "elbolab", "list"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    for name in tour.ORDER:
        assert re.search(rf"^{name}\s.*tour", done.stdout, re.M), name


@pytest.mark.slow
def test_run_tour_on_tiny_data_writes_the_index(tiny_data, tmp_path):
    lines = []
    index = tour.run_tour(
        tmp_path, data_root=tiny_data.root, preset="smoke", scheduler="serial", say=lines.append
    )
    assert index.is_file() and len(lines) == len(tour.ORDER)
    for name in tour.ORDER:
        assert (tmp_path / name / "report.html").is_file()
    # A second tour keeps the finished runs: nothing is recomputed.
    before = {n: (tmp_path / n / "metrics.json").read_bytes() for n in tour.ORDER}
    tour.run_tour(
        tmp_path, data_root=tiny_data.root, preset="smoke", scheduler="serial", say=lines.append
    )
    assert before == {n: (tmp_path / n / "metrics.json").read_bytes() for n in tour.ORDER}
