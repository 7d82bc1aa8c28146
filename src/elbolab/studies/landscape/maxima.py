"""The maxima the paths join: CAVI restarts, the pair of distinct maxima chosen among
them and its alignment, and further pairs for the polish."""

from __future__ import annotations

import numpy as np
import torch

from ...landscape import LDAObjective, align, apply_permutation, distance_matrix
from ..lda_runs import CaviSettings, fit_restarts, restart_histories
from .config import Config


def fit_maxima(cfg: Config, k: int, restarts: int, max_iter: int, train, rundir, key: str) -> dict:
    """``restarts`` CAVI fits of K topics (at most ``max_iter`` iterations, the other
    settings from ``cfg``), run as units under ``key``: their topics lambda (R, K, V),
    ELBO histories, and the priors."""
    settings = CaviSettings(
        restarts=restarts,
        max_iter=max_iter,
        tol=cfg.tol,
        alpha=cfg.alpha,
        eta=cfg.eta,
        seed=cfg.seed,
    )
    model = fit_restarts(settings, k, train, rundir, key)
    return {
        "lam": np.stack([r.components for r in model.restarts_]),
        "history": restart_histories(model),
        "n_iter": [len(r.history) for r in model.restarts_],
        "converged": [len(r.history) < max_iter for r in model.restarts_],
        "alpha": model.alpha_,
        "eta": model.eta_,
    }


def choose_pair(obj: LDAObjective, lam: np.ndarray, distinct_min: float) -> dict:
    """Best maximum a, and the best other maximum that differs from a after alignment."""
    with torch.no_grad():
        values = obj(torch.from_numpy(np.log(lam).reshape(lam.shape[0], -1))).numpy()
    order = np.argsort(-values)
    a = int(order[0])
    candidates = []
    for r in order[1:]:
        perm, dist = align(lam[a], lam[r])
        candidates.append((int(r), perm, dist))
        if dist.mean() > distinct_min:
            break
    b, perm, dist = max(candidates, key=lambda c: (c[2].mean() > distinct_min, -values[c[0]]))
    unaligned = np.diag(distance_matrix(lam[a], lam[b]))
    return {
        "a": a,
        "b": b,
        "profile_elbo_restarts": values.tolist(),
        "permutation": perm.tolist(),
        "distances_aligned": dist.tolist(),
        "distances_unaligned": unaligned.tolist(),
        "mean_distance_aligned": float(dist.mean()),
        "mean_distance_unaligned": float(unaligned.mean()),
        "distinct": bool(dist.mean() > distinct_min),
    }


def more_pairs(lam: np.ndarray, first: dict, n: int, distinct_min: float) -> list[dict]:
    """``n`` more pairs of restarts, besides ``first``, best first.

    Pairs are ranked by their lower endpoint's profile ELBO (then the higher one's); a
    pair of distinct maxima goes before any pair of label-switched copies. In each pair
    a is the higher maximum and b is aligned to it.
    """
    values = np.asarray(first["profile_elbo_restarts"])
    taken = {frozenset((first["a"], first["b"]))}
    found = []
    for i in range(len(values)):
        for j in range(i + 1, len(values)):
            if frozenset((i, j)) in taken:
                continue
            a, b = (i, j) if values[i] >= values[j] else (j, i)
            perm, dist = align(lam[a], lam[b])
            found.append(
                {
                    "a": a,
                    "b": b,
                    "permutation": perm.tolist(),
                    "mean_distance_aligned": float(dist.mean()),
                    "distinct": bool(dist.mean() > distinct_min),
                }
            )
    found.sort(key=lambda p: (not p["distinct"], -values[p["b"]], -values[p["a"]]))
    return found[:n]


def endpoint_vectors(obj, lam: np.ndarray, pair: dict):
    """The points of maximum a, of b aligned to a, and of b as fitted (unaligned)."""
    lam_b = apply_permutation(lam[pair["b"]], pair["permutation"], 0)
    return obj.to_vector(lam[pair["a"]]), obj.to_vector(lam_b), obj.to_vector(lam[pair["b"]])
