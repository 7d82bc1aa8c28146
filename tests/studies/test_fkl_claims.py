"""The ``fkl`` study's stopping rule and claims table, on hand-made numbers."""

import copy

import numpy as np
import pytest

from elbolab.studies import fkl
from elbolab.studies.claims import HOLDS, NOT_AT_THIS_BUDGET, PARTLY
from elbolab.studies.fkl.metrics import first_step_below, spread


def test_stopping_rule_waits_for_two_windows_and_compares_their_means():
    assert not fkl.converged([5.0, 5.0, 5.0], window=2, rtol=0.01)  # needs 4 values
    assert fkl.converged([5.0, 5.0, 5.0, 5.0], window=2, rtol=0.01)  # flat
    assert not fkl.converged([2.0, 2.0, 1.0, 1.0], window=2, rtol=0.01)  # halved
    # 1% improvement of the moving average is the boundary.
    assert fkl.converged([1.0, 1.0, 0.995, 0.995], window=2, rtol=0.01)
    assert not fkl.converged([1.0, 1.0, 0.98, 0.98], window=2, rtol=0.01)
    # Only the last two windows count; a rise has converged.
    assert fkl.converged([9.0, 1.0, 1.0, 1.1, 1.1], window=2, rtol=0.01)


def _stats(values):
    return spread(values)


def _metrics(gaps, kls, drifts, start=1.0):
    """Hand-made metrics for widths 64, 256, 1024 with 2 seeds each."""
    by_width = {}
    for w, g, k, d in zip((64, 256, 1024), gaps, kls, drifts, strict=True):
        by_width[str(w)] = {
            "gap_network": _stats(g),
            "gap_linearized": _stats(g),
            "kl_network_linearized": _stats(k),
            "ntk_drift": _stats(d),
            "steps": [1000, 1000],
            "converged": [True, True],
            "start_gap": start,
        }
    rates = {"mean": {"fkl": 0.96, "elbo": 0.5}, "natural": {"fkl": 0.92, "elbo": 0.9}}
    recovered = {"mean": {"fkl": 0.96, "elbo": 0.4}, "natural": {"fkl": 0.3, "elbo": 0.2}}
    return {
        "width": {"by_width": by_width},
        "clustering": {
            "ordered_rate_by_parameterization": rates,
            "recovered_rate_by_parameterization": recovered,
            "replicates": 50,
            "shift_tolerance": 5.0,
        },
        "rotated": {
            "true_angle_deg": 260.0,
            "n_images": 20,
            "final_angle_deg": {"fkl": 262.0, "iwbo": [0.0] * 12},
            "final_angle_error_deg": {"fkl": 2.0, "iwbo": [1.0] * 6 + [90.0] * 6},
            "final_forward_kl": {"fkl": 0.5, "iwbo": [1.0] * 12},
        },
    }


CFG = fkl.Config(width_seeds=2)


def _verdicts(metrics):
    return [c.verdict for c in fkl.claims(CFG, metrics)]


def test_claims_follow_the_measured_numbers():
    m = _metrics(
        gaps=[[0.3, 0.32], [0.1, 0.11], [0.01, 0.012]],
        kls=[[1e-2, 2e-2], [1e-3, 2e-3], [1e-4, 2e-4]],
        drifts=[[0.1, 0.1], [0.05, 0.05], [0.02, 0.02]],
    )
    v = _verdicts(m)
    assert len(v) == 10
    # Convergence, both kernel-regime rows, gap against width.
    assert v[:4] == [HOLDS, HOLDS, HOLDS, HOLDS]
    # Mean-only: recovered 96% and ELBO ordered 50% against 96%.
    assert v[4:6] == [HOLDS, HOLDS]
    # Natural: ordered 92% (< 95%), ELBO 90% against 92%.
    assert v[6:8] == [NOT_AT_THIS_BUDGET, PARTLY]
    # IWBO: 6 starts stuck while 6 found the truth; forward KL within 10 degrees.
    assert v[8:] == [HOLDS, HOLDS]


def test_claims_turn_when_the_numbers_do():
    m = _metrics(
        # Widest gap 0.06 > 2% of the start; not monotone; the spread hides the fall.
        gaps=[[0.2, 0.1], [0.3, 0.2], [0.06, 0.05]],
        kls=[[1e-3, 1e-3], [1e-2, 1e-2], [1e-4, 1e-4]],
        drifts=[[0.1, 0.1], [0.2, 0.2], [0.3, 0.3]],
    )
    v = _verdicts(m)
    assert v[:4] == [PARTLY, PARTLY, NOT_AT_THIS_BUDGET, PARTLY]
    worse = copy.deepcopy(m)
    worse["width"]["by_width"]["1024"]["gap_network"] = _stats([0.2, 0.5])
    worse["rotated"]["final_angle_error_deg"] = {"fkl": 25.0, "iwbo": [90.0] * 12}
    v = _verdicts(worse)
    assert v[0] == NOT_AT_THIS_BUDGET
    # No start reached the truth: could be the budget; forward KL within 30 degrees.
    assert v[8:] == [PARTLY, PARTLY]


@pytest.mark.parametrize("rate, expected", [(0.95, HOLDS), (0.94, NOT_AT_THIS_BUDGET)])
def test_clustering_recovery_threshold_is_95_percent(rate, expected):
    m = _metrics(gaps=[[0.1, 0.1]] * 3, kls=[[1e-3, 1e-3]] * 3, drifts=[[0.1, 0.1]] * 3)
    m["clustering"]["recovered_rate_by_parameterization"]["natural"]["fkl"] = rate
    m["clustering"]["ordered_rate_by_parameterization"]["natural"]["fkl"] = 0.9
    assert _verdicts(m)[6] == expected


def test_steps_to_a_share_of_the_start_is_the_first_evaluation_below_it():
    run = {
        "steps": np.array([0, 100, 200, 300]),
        "nll_gap_network": np.array([1.0, 0.2, 0.04, 0.01]),
    }
    assert first_step_below(run, 0.05) == 200
    assert first_step_below(run, 0.005) is None
