"""The study's steps in order: the corpus and its splits (:func:`prepare`), then the
maxima, the paths, the polish, the sweeps, the planes and the reading of the path, each
a cached unit of the run directory (:func:`run`)."""

from __future__ import annotations

from functools import partial

import numpy as np
import torch

from ...landscape import LDAObjective
from ..lda_runs import load_corpus, split_corpus
from ..runner import cached, cached_map
from .config import Config
from .maxima import choose_pair, endpoint_vectors, fit_maxima, more_pairs
from .maxima_from_paths import polish_pair, polish_path_peak
from .metrics import StepResults, collect
from .paths import (
    autoneb_profile,
    bezier_profile,
    full_mode,
    neb_profile,
    path_record,
    straight_line,
)
from .planes import plane
from .reading import coherence_along, read_path
from .sweeps import sweep_units, sweeps_by_name


def prepare(cfg: Config, data_root=None) -> dict:
    """The AP corpus, its document split and the two completion splits; writes nothing."""
    corpus, source = load_corpus(data_root, n_docs=cfg.n_docs)
    inputs = {
        "source": source,
        "corpus": corpus,
        **split_corpus(corpus, cfg.test_fraction, cfg.observed_fraction, cfg.seed),
    }
    train = inputs["train"]
    rng = np.random.default_rng([cfg.seed, 1])
    chosen = np.sort(rng.choice(train.n_docs, min(cfg.train_score_docs, train.n_docs), False))
    train_observed, train_heldout = train.subset(chosen).completion_split(
        cfg.observed_fraction, seed=cfg.seed
    )
    return {**inputs, "train_observed": train_observed, "train_heldout": train_heldout}


def run(cfg: Config, inputs: dict, rundir) -> tuple[dict, dict]:
    """Every step of the study on ``inputs`` (from :func:`prepare`), each a unit cached in
    ``rundir``: metrics.json's fields and arrays.npz."""
    train = inputs["train"]
    timings = {}
    k = cfg.n_topics

    def timed(name, compute):
        return cached(rundir, name, compute, timings)

    # 1. The maxima (the restarts run as independent units).
    fit = timed(
        "fit", lambda: fit_maxima(cfg, k, cfg.restarts, cfg.max_iter, train, rundir, "fit_lda")
    )
    lam = fit["lam"]
    prof = LDAObjective(train, k, fit["alpha"], fit["eta"], mode="profile")

    # 2. Alignment.
    pair = timed("align", lambda: choose_pair(prof, lam, cfg.distinct_min))
    xa, xb, xb_unaligned = endpoint_vectors(prof, lam, pair)

    # 3. Lines and paths from the aligned maxima: independent units.
    units = {
        "lines": lambda: {
            "unaligned": straight_line(prof, xa, xb_unaligned, cfg.n_pivots),
            "aligned": straight_line(prof, xa, xb, cfg.n_pivots),
        },
        "neb_profile": lambda: path_record(neb_profile(prof, xa, xb, cfg), True, prof),
        "autoneb": lambda: path_record(autoneb_profile(prof, xa, xb, cfg), False, prof),
        "bezier": lambda: path_record(bezier_profile(prof, xa, xb, cfg), False, prof),
        "full": partial(full_mode, cfg, train, fit, pair),
    }
    done = cached_map(rundir, units, timings, desc="landscape paths")
    neb_p = done["neb_profile"]
    pivots = torch.from_numpy(neb_p["pivots"])

    # 4. Maxima from paths: CAVI from each path's highest point; on more pairs of
    # restarts, against random restarts given the same CAVI iterations.
    pairs = [pair] + more_pairs(lam, pair, cfg.polish_pairs - 1, cfg.distinct_min)
    polish_units = {
        f"polish_{name}": partial(polish_path_peak, cfg, prof, lam, pair, rec["peak_lam"], inputs)
        for name, rec in (
            ("autoneb", done["autoneb"]),
            ("bezier", done["bezier"]),
            ("neb_full", done["full"]["neb"]),
        )
    }
    for i, p in enumerate(pairs):
        path = neb_p if i == 0 else None
        polish_units[f"polish_pair{i}"] = partial(polish_pair, cfg, prof, lam, p, i, inputs, path)
    polished = cached_map(rundir, polish_units, timings, desc="polish from paths")

    # 5. The sweeps: independent units.
    units, sweep_keys = sweep_units(cfg, prof, xa, xb, inputs, rundir)
    swept = cached_map(rundir, units, timings, desc="landscape sweeps")
    sweeps = sweeps_by_name(swept, sweep_keys)

    # 6. Planes through the NEB path and at random.
    planes = cached_map(
        rundir,
        {
            f"plane_{kind}": partial(
                plane, prof, kind, xa, xb, pivots, cfg.plane_points, cfg.seed + i
            )
            for i, kind in enumerate(("path", "gaussian", "sign"))
        },
        timings,
        desc="planes",
    )
    planes = {name.removeprefix("plane_"): value for name, value in planes.items()}

    # 7. Reading the path: topics and document completion at every pivot.
    read = timed("reading", partial(read_path, prof, pivots, xa, xb, inputs, cfg))
    coherence = timed(
        "coherence", partial(coherence_along, prof, pivots, xa, xb, train, cfg.top_words)
    )

    results = StepResults(
        fit=fit,
        pair=pair,
        pairs=pairs,
        paths=done,
        polished=polished,
        sweeps=sweeps,
        planes=planes,
        reading=read,
        coherence=coherence,
    )
    return collect(cfg, inputs, results, timings)
