"""The ``linear`` study end to end with its smoke preset, on a tiny fake MNIST (always)
and on the MNIST mirror."""

import numpy as np
import pytest

from elbolab.studies import linear

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module", params=["tiny", "real"])
def smoke_run(request, smoke_runs):
    return smoke_runs("linear", request.param)


def test_metrics_carry_the_required_numbers(smoke_run, assert_finite):
    _, m = smoke_run
    assert_finite(m)
    cfg = linear.PRESETS["smoke"]
    for key in ("ppca_log_likelihood", "elbo_analytic_final", "elbo_stochastic_final"):
        assert isinstance(m[key], float)
    assert m["data"]["normalization"] == "nats per datum"
    assert m["data"]["n_data"] == cfg.n_data
    assert len(m["collapse"]) == 2 * len(cfg.sigma2_inits)  # learned and fixed
    assert [(r["sigma2_init"], r["sigma2_learned"]) for r in m["collapse"]] == [
        (s, learned) for learned in (True, False) for s in cfg.sigma2_inits
    ]
    for row in m["collapse"]:
        assert 0 <= row["active_units"] <= cfg.deep_latent
        assert row["kl"] >= 0  # closed-form KL to N(0, I)
        assert row["elbo"] == pytest.approx(row["reconstruction"] - row["kl"], rel=1e-5)
        assert row["epochs"] == cfg.deep_epochs
        if not row["sigma2_learned"]:
            assert row["sigma2_final"] == pytest.approx(row["sigma2_init"], rel=1e-6)


def test_no_elbo_exceeds_the_exact_maximum(smoke_run):
    _, m = smoke_run
    assert m["elbo_analytic_final"] <= m["ppca_log_likelihood"]
    assert m["gap_analytic"] == pytest.approx(m["ppca_log_likelihood"] - m["elbo_analytic_final"])
    assert m["gap_stochastic"] == pytest.approx(
        m["ppca_log_likelihood"] - m["elbo_stochastic_final"]
    )
    assert m["gap_analytic"] >= 0
    for row in m["latent_sweep"]:
        assert row["elbo_analytic"] <= row["ppca_log_likelihood"] + 1e-9
    rows = {(r["latent"], r["sigma2"]): r for r in m["latent_sweep"]}
    sizes = linear.PRESETS["smoke"].latent_sizes
    assert set(rows) == {(q, mode) for q in sizes for mode in ("learned", "fixed")}
    for q in sizes:
        # Maximum likelihood over sigma^2 is at least the likelihood at a fixed sigma^2.
        assert (
            rows[q, "learned"]["ppca_log_likelihood"]
            >= rows[q, "fixed"]["ppca_log_likelihood"] - 1e-9
        )
    learned = [rows[q, "learned"]["ppca_log_likelihood"] for q in sorted(sizes)]
    assert learned == sorted(learned)  # more latent dimensions never fit worse
    # Part 1 and part 2 fit the same pPCA when their latent sizes agree.
    q1 = linear.PRESETS["smoke"].latent
    if q1 in sizes:
        assert rows[q1, "learned"]["ppca_log_likelihood"] == m["ppca_log_likelihood"]
    encoders = m["encoders"]
    for name, result in encoders["encoders"].items():
        # An ELBO (up to its Monte Carlo error) stays below its own decoder's log p(x),
        # which stays below the pPCA maximum.
        exact = result["exact_log_likelihood_of_decoder"]
        assert result["elbo"] <= exact + 1e-3 * abs(exact), name
        assert exact <= encoders["ppca_log_likelihood"] + 1e-6, name


def test_collapse_curves_agree_with_the_collapsed_fractions(smoke_run):
    out, m = smoke_run
    arrays = np.load(out / "arrays.npz")
    eps, curves = arrays["epsilons"], arrays["collapse_curves"]
    assert curves.shape == (len(m["collapse"]), len(eps))
    # More dimensions count as collapsed as the threshold grows.
    assert (np.diff(curves, axis=1) >= 0).all()
    at = int(np.argmin(np.abs(eps - 0.01)))
    assert eps[at] == pytest.approx(0.01)
    for row, curve in zip(m["collapse"], curves, strict=True):
        assert row["collapsed_fraction"] == pytest.approx(curve[at])


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


def test_claims_are_stored_and_follow_the_numbers(smoke_run):
    _, m = smoke_run
    cfg = linear.PRESETS["smoke"]
    rows = m["claims"]
    assert len(rows) == 4
    assert [c.verdict for c in linear.claims(cfg, m)] == [r["verdict"] for r in rows]
    inits = m["inits"]
    assert len(inits["linear"]["elbo"]) == len(inits["deep"]["elbo_heldout"]) == cfg.n_inits
    for value in inits["linear"]["elbo"]:
        assert value <= inits["linear"]["ppca_log_likelihood"] + 1e-9
    sg = m["surgery_ppca"]
    assert sg["mutual_info"] <= sg["log_n"] + 1e-12
    assert sg["average_kl_mc"] == pytest.approx(sg["mutual_info"] + sg["marginal_kl"], abs=1e-9)


def test_claim_verdicts_change_with_the_measured_numbers(smoke_run):
    _, m = smoke_run
    cfg = linear.PRESETS["smoke"]

    def verdicts(**changes):
        metrics = {**m, **changes}
        return [c.verdict for c in linear.claims(cfg, metrics)]

    # An ELBO above the exact maximum is never "holds".
    assert verdicts(gap_analytic=-0.01)[0] == "not at this budget"
    assert verdicts(gap_analytic=0.0, worst_sweep_gap=0.0, latent_sweep=[])[0] == "holds"
    assert verdicts(gap_analytic=0.5, worst_sweep_gap=0.0, latent_sweep=[])[0] == "partly"
    spread = {**m["inits"], "linear": {**m["inits"]["linear"], "spread": 3.0}}
    assert verdicts(inits=spread)[1] == "not at this budget"
    low = {**m["surgery_ppca"], "marginal_kl": 0.2, "se_marginal_kl": 0.01}
    assert verdicts(surgery_ppca=low)[3] == "holds"
    high = {**low, "marginal_kl": 50.0}
    assert verdicts(surgery_ppca=high)[3] != "holds"
