"""Maxima found from paths: CAVI from the highest point of a path, and, per pair of
restarts, against random restarts given the same number of CAVI iterations
(:mod:`elbolab.landscape.polish`)."""

from __future__ import annotations

import time

from ...landscape import apply_permutation, polish, restart_baseline
from .config import Config
from .maxima import endpoint_vectors
from .paths import neb_profile, path_record


def _polish_from(cfg: Config, prof, lam, pair: dict, peak_lam, inputs: dict):
    """CAVI from the topics ``peak_lam`` to convergence, the maximum it reaches compared
    with the pair's endpoints (b aligned to a)."""
    lam_b = apply_permutation(lam[pair["b"]], pair["permutation"], 0)
    return polish(
        prof,
        peak_lam,
        lam[pair["a"]],
        lam_b,
        max_iter=cfg.max_iter,
        tol=cfg.tol,
        same_max=cfg.distinct_min,
        observed=inputs["observed"],
        heldout=inputs["heldout"],
    )


def polish_path_peak(cfg: Config, prof, lam, pair: dict, peak_lam, inputs: dict) -> dict:
    """The summary of CAVI from a path's highest point (its topics ``peak_lam``)."""
    return _polish_from(cfg, prof, lam, pair, peak_lam, inputs).summary()


def polish_pair(cfg: Config, prof, lam, pair: dict, index: int, inputs: dict, path) -> dict:
    """Path (NEB, profile mode) from a to the aligned b unless given, CAVI from its
    highest point, and random restarts given the same number of CAVI iterations."""
    start = time.perf_counter()
    if path is None:
        xa, xb, _ = endpoint_vectors(prof, lam, pair)
        path = path_record(neb_profile(prof, xa, xb, cfg, steps=cfg.polish_steps), False, prof)
    path_seconds = time.perf_counter() - start
    start = time.perf_counter()
    polished = _polish_from(cfg, prof, lam, pair, path["peak_lam"], inputs)
    polish_seconds = time.perf_counter() - start
    start = time.perf_counter()
    # Restart seeds past the fitted restarts, and a block of max_iter seeds per pair (a
    # budget of at most max_iter iterations never runs more restarts than that).
    base = restart_baseline(
        prof,
        polished.n_iter,
        lam[pair["a"]],
        lam[pair["b"]],
        seed=cfg.seed,
        first_restart=cfg.restarts + index * cfg.max_iter,
        max_iter=cfg.max_iter,
        tol=cfg.tol,
        same_max=cfg.distinct_min,
        observed=inputs["observed"],
        heldout=inputs["heldout"],
    )
    return {
        "a": pair["a"],
        "b": pair["b"],
        "mean_distance_aligned": pair["mean_distance_aligned"],
        "distinct": pair["distinct"],
        "path": {
            "steps": path["summary"]["n_iter"],
            "barrier": path["summary"]["barrier"],
            "peak_value": path["peak_value"],
            "wall_seconds": path_seconds,
        },
        "polished": {**polished.summary(), "wall_seconds": polish_seconds},
        "baseline": {**base.summary(), "wall_seconds": time.perf_counter() - start},
    }
