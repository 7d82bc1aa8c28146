"""Reading the NEB path: top words of the topics at chosen pivots, document completion of
test and training documents at every pivot, and topic coherence along the path and the
straight line."""

from __future__ import annotations

import numpy as np

from ...diagnostics import topic_coherence
from ...landscape import linear_path
from ..lda_runs import top_words
from .config import Config


def read_path(prof, pivots, xa, xb, inputs: dict, cfg: Config) -> dict:
    """Top words of the topics at up to four pivots of the NEB path, and document completion of
    test and training documents at every pivot of it and of the straight line."""
    lam_path = prof.components(pivots).numpy()
    idx = sorted({0, len(lam_path) // 3, (2 * len(lam_path)) // 3, len(lam_path) - 1})
    line_pivots = linear_path(xa, xb, len(lam_path))
    scores = {}
    for name, observed, heldout in (
        ("test", inputs["observed"], inputs["heldout"]),
        ("train", inputs["train_observed"], inputs["train_heldout"]),
    ):
        scores[name] = {
            "neb": prof.heldout_scores(pivots, observed, heldout)["per_token"],
            "linear": prof.heldout_scores(line_pivots, observed, heldout)["per_token"],
            "n_tokens": int(heldout.n_tokens),
            "n_docs": int(heldout.n_docs),
        }
    return {
        "pivots_shown": idx,
        "top_words": _top_words_along(lam_path, idx, inputs["corpus"].vocab, cfg.top_words),
        "scores": scores,
    }


def coherence_along(prof, pivots, xa, xb, train, top_n: int) -> dict:
    """UMass and NPMI of every topic's ``top_n`` words (lambda of the pivot) in the
    training documents, at every pivot of the NEB path and of the straight line with as
    many pivots: (P, K) arrays per path and measure, all P * K topics of both paths
    scored in one call per measure (the corpus read once)."""
    lam = np.concatenate(
        [prof.components(pivots).numpy(), prof.components(linear_path(xa, xb, len(pivots))).numpy()]
    )
    n_paths, k = 2, lam.shape[1]
    out = {"neb": {}, "linear": {}, "top_n": top_n}
    for measure in ("umass", "npmi"):
        c = topic_coherence(lam.reshape(-1, lam.shape[2]), train, measure=measure, top_n=top_n)
        scores = c.per_topic.reshape(n_paths, -1, k)
        out["neb"][measure], out["linear"][measure] = scores[0], scores[1]
        out[f"{measure}_epsilon"] = c.epsilon
    return out


def _top_words_along(lam_path: np.ndarray, idx: list[int], vocab, n: int) -> list:
    """Top-n words of every topic (rows) at the chosen pivots (columns)."""
    return [
        [" ".join(top_words(lam_path[i], vocab, n)[k]) for i in idx]
        for k in range(lam_path.shape[1])
    ]
