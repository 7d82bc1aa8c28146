"""The ``linear`` study's numbers: the units' results joined into ``metrics.json`` and
``arrays.npz`` (:func:`collect`); the claims are in :mod:`.claims`."""

from __future__ import annotations

import numpy as np

from .collapse import EPSILONS
from .config import Config


def collect(cfg: Config, done: dict, n_data: int, timings: dict) -> tuple[dict, dict]:
    """metrics and arrays of a run from its units' results ``done`` (unit key -> value,
    keys as in :func:`~elbolab.studies.linear.pipeline.run`); ``n_data`` images were used
    in parts 1-3 (fewer than ``cfg.n_data`` when the data set is smaller)."""
    n_settings = 2 * len(cfg.sigma2_inits)
    p1, p2, p3 = done["part1"], done["part2"], done["part3"]
    p4 = [done[f"part4_{i}"] for i in range(n_settings)]
    deep_values = [done[f"part5_deep_{i}"] for i in range(cfg.n_inits)]

    r1 = p1["result"]
    metrics = {
        "data": {
            "n_data": n_data,
            "deep_n_train": cfg.deep_n_train,
            "deep_n_eval": cfg.deep_n_eval,
            "normalization": "nats per datum",
        },
        "ppca_log_likelihood": r1["ppca_log_likelihood"],
        "ppca_sigma2": r1["ppca_sigma2"],
        "elbo_analytic_final": r1["trained_analytic"]["elbo_analytic"],
        "elbo_analytic_optimizer": r1["trained_analytic"]["optimizer"],
        "elbo_analytic_iterations": r1["trained_analytic"]["iterations"],
        "elbo_stochastic_final": r1["trained_stochastic"]["elbo_stochastic_estimate"],
        "elbo_stochastic_optimizer": r1["trained_stochastic"]["optimizer"],
        "elbo_stochastic_trained_analytic_value": r1["trained_stochastic"]["elbo_analytic"],
        "gap_analytic": r1["ppca_log_likelihood"] - r1["trained_analytic"]["elbo_analytic"],
        "gap_stochastic": r1["ppca_log_likelihood"]
        - r1["trained_stochastic"]["elbo_stochastic_estimate"],
        "latent_sweep": p2["rows"],
        "worst_sweep_gap": max(r["ppca_log_likelihood"] - r["elbo_analytic"] for r in p2["rows"]),
        "inits": {
            "n_inits": cfg.n_inits,
            "linear": done["part5_linear"],
            "deep": {
                "latent": cfg.deep_latent,
                "epochs": cfg.deep_init_epochs,
                "sigma2_init": 1.0,
                "elbo_heldout": deep_values,
                "spread": max(deep_values) - min(deep_values),
            },
        },
        "surgery_ppca": done["part6"],
        "encoders": {"logit_space": True, **p3},
        "collapse": [{k: v for k, v in r.items() if k != "collapse_curve"} for r in p4],
        "timings": timings,
    }
    arrays = {
        **p1["gram"],
        "epsilons": EPSILONS,
        "collapse_curves": np.stack([r["collapse_curve"] for r in p4]),
    }
    for name in ("analytic", "stochastic"):
        r = r1[f"trained_{name}"]
        arrays[f"curve_step_{name}"] = r["curve_step"]
        arrays[f"curve_elbo_analytic_{name}"] = r["curve_elbo_analytic"]
    return metrics, arrays
