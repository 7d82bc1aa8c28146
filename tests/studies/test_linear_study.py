"""The ``linear`` study end to end with its smoke preset on the MNIST mirror."""

import json
import os
from pathlib import Path

import pytest

from elbolab import cli


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    root = os.environ.get("ELBOLAB_DATA")
    if not root or not (Path(root) / "mnist" / "train-images-idx3-ubyte.gz").exists():
        pytest.skip("ELBOLAB_DATA does not point at the dataset mirror")
    out = tmp_path_factory.mktemp("linear") / "run"
    assert (
        cli.main(["run", "linear", "--preset", "smoke", "--out", str(out), "--scheduler", "serial"])
        == 0
    )
    return out, json.loads((out / "metrics.json").read_text())


def test_metrics_carry_the_required_numbers(smoke_run):
    _, m = smoke_run
    for key in ("ppca_log_likelihood", "elbo_analytic_final", "elbo_stochastic_final"):
        assert isinstance(m[key], float)
    assert m["data"]["normalization"] == "nats per datum"
    assert len(m["collapse"]) == 4  # two sigma^2 values, learned and fixed
    for row in m["collapse"]:
        assert 0.0 <= row["collapsed_fraction"] <= 1.0
        assert 0 <= row["active_units"] <= 4


def test_no_elbo_exceeds_the_exact_maximum(smoke_run):
    _, m = smoke_run
    assert m["elbo_analytic_final"] <= m["ppca_log_likelihood"]
    assert m["gap_analytic"] >= 0
    for row in m["latent_sweep"]:
        assert row["elbo_analytic"] <= row["ppca_log_likelihood"] + 1e-9
    encoders = m["encoders"]
    for result in encoders["encoders"].values():
        # An ELBO (up to its Monte Carlo error) stays below its own decoder's log p(x),
        # which stays below the pPCA maximum.
        assert result["exact_log_likelihood_of_decoder"] <= encoders["ppca_log_likelihood"] + 1e-6


def test_report_has_every_figure(smoke_run):
    out, _ = smoke_run
    html = (out / "report.html").read_text()
    names = (
        "linear_vs_ppca",
        "gram",
        "latent_sweep",
        "encoders",
        "collapse_summary",
        "collapse_curves",
    )
    for name in names:
        assert (out / "figures" / f"{name}.png").is_file()
    assert html.count("data:image/png;base64") == len(names)
