"""The claims table: rows are checked, verdicts follow the numbers, and every report opens
with it."""

from __future__ import annotations

import copy

import pytest

from elbolab.report import Report
from elbolab.studies import STUDIES, claims, surgery, zoo


def test_a_claim_refuses_an_unknown_verdict_and_an_empty_field():
    fields = dict(claim="c", reference="r", measured="m", verdict="holds", reason="why")
    claims.Claim(**fields)
    with pytest.raises(ValueError, match="verdict must be one of"):
        claims.Claim(**{**fields, "verdict": "mostly"})
    with pytest.raises(ValueError, match="'reason' is empty"):
        claims.Claim(**{**fields, "reason": " "})


@pytest.mark.parametrize(
    ("holds", "partly", "expected"),
    [
        (True, False, "holds"),
        (True, True, "holds"),
        (False, True, "partly"),
        (False, False, "not at this budget"),
    ],
)
def test_verdict(holds, partly, expected):
    assert claims.verdict(holds, partly) == expected


def test_the_claims_table_opens_the_report_even_when_added_last():
    report = Report("t").heading("Body").paragraph("text")
    claims.add_table(
        report, [dict(claim="c", reference="r", measured="m", verdict="holds", reason="why")]
    )
    page = report.render()
    assert page.index("<h2>Claims</h2>") < page.index("<h2>Body</h2>")
    assert "why" in page


def test_every_study_states_its_claims():
    for name, study in STUDIES.items():
        assert callable(getattr(study, "claims", None)), name


def _vae_row(nll, kl=5.0, mi=10.0, marginal=3.0):
    return dict(
        test_nll=nll,
        test_nll_se=0.2,
        test_kl=kl,
        epochs_run=3,
        nll_k=100,
        nll_n=500,
        label="x",
        mutual_information=mi,
        marginal_kl=marginal,
        average_kl=mi + marginal,
        log_n=10.8,
    )


def test_zoo_verdicts_follow_the_numbers():
    cfg = zoo.Config(betas=(2.0,), iwae_k=50)
    metrics = {
        "zoo": {
            "vae": _vae_row(95.0, kl=25.0),
            "beta_2": _vae_row(97.0, kl=15.0),
            "iwae_k50": _vae_row(87.5),
            "vamp": _vae_row(94.9),
        }
    }
    got = {c.claim.split(" ")[0]: c.verdict for c in zoo.claims(cfg, metrics)}
    assert got["IWAE"] == "holds"  # 7.5 lower, well beyond two standard errors
    assert got["VampPrior"] == "partly"  # 0.1 lower, within the error
    assert got["a"] == "holds"  # the KL falls with beta
    worse = copy.deepcopy(metrics)
    worse["zoo"]["iwae_k50"]["test_nll"] = 96.0
    worse["zoo"]["beta_2"]["test_kl"] = 30.0
    got = {c.claim.split(" ")[0]: c.verdict for c in zoo.claims(cfg, worse)}
    assert got["IWAE"] == "not at this budget"
    assert got["a"] == "not at this budget"
    published = [c for c in zoo.claims(cfg, metrics) if "published" in c.claim]
    # VAE 89.9 (5.1 away), IWAE 87.1 (0.4 away), VampPrior 85.57 (9.3 away)
    assert [c.verdict for c in published] == ["not at this budget", "holds", "not at this budget"]


def test_surgery_verdicts_follow_the_numbers():
    cfg = surgery.Config(latents=(2, 10, 20))
    rows = {
        "2": _vae_row(0, mi=5.0, marginal=0.5),
        "10": _vae_row(0, mi=10.5, marginal=4.0),
        "20": _vae_row(0, mi=10.6, marginal=6.0),
    }
    verdicts = [c.verdict for c in surgery.claims(cfg, {"surgery": rows})]
    assert verdicts == ["holds", "holds"]
    rows["20"]["mutual_information"] = 5.0  # below 0.9 log N at one size of two
    rows["20"]["marginal_kl"] = 1.0  # no longer growing, but still >= 10% of the KL
    rows["20"]["average_kl"] = 6.0
    verdicts = [c.verdict for c in surgery.claims(cfg, {"surgery": rows})]
    assert verdicts == ["partly", "partly"]
