"""Study ``landscape``: are two CAVI maxima of LDA joined by a path without an ELBO barrier?

After Li & Wei ("Analysis of ELBO loss landscape: no barrier in between local maxima")
and Zhang & Blei ("Unveiling mode-connectivity of the ELBO landscape"), on the whole AP
corpus and with every Dirichlet normalizer in the ELBO:

1. fit ``restarts`` random initializations of LDA by batch CAVI to convergence;
2. pick the best maximum and the best other one that is *distinct* after label
   alignment (mean matched Hellinger distance of the topics above ``distinct_min``);
   align its topics (Hungarian matching) and score the straight line before and after;
3. maximum-ELBO paths between the aligned maxima: NEB in both modes of
   :class:`~elbolab.landscape.LDAObjective` (``profile``: lambda only, local parameters
   re-optimized; ``full``: lambda, gamma and phi together as in the paper), AutoNEB and a
   Bezier curve (profile mode);
4. the ELBO on three planes (random Gaussian, random +-1, and the plane through both
   maxima and the NEB path's farthest pivot) with the path and the line drawn in;
5. the top words of every topic along the path, document-completion scores of
   training and test documents at every pivot, and the mean coherence (UMass and NPMI,
   :func:`~elbolab.diagnostics.topic_coherence`, in the training documents) of the
   topics at every pivot of the NEB path and of the straight line;
6. the paper's sweeps (learning rate, pivots, spring constant, K) as figures;
7. maxima found from paths: CAVI run to convergence from the highest point of every
   optimized path, the maximum it reaches identified by alignment as one of the endpoints
   or a new one, on ``polish_pairs`` pairs of restarts, each against the same number of
   CAVI iterations spent on fresh random restarts (:mod:`elbolab.landscape.polish`).

Barriers are ``max(0, min(ELBO(a), ELBO(b)) - min over the path)`` in nats (total over
the training documents), measured on a dense resampling of each path. All path
optimizers cap each pivot's step and halve it when a trial point is not finite, so no
setting of the learning rate can produce NaN.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch

from ... import checks
from ...diagnostics import topic_coherence
from ...errors import ConfigError
from ...landscape import (
    LDAObjective,
    align,
    apply_permutation,
    autoneb,
    barrier,
    bezier,
    bezier_points,
    dense_points,
    dense_values,
    distance_matrix,
    farthest_from_line,
    linear_path,
    neb,
    path_length,
    plane_grid,
    plane_through,
    polish,
    project,
    random_gaussian_directions,
    random_sign_directions,
    restart_baseline,
)
from .. import lda as lda_study

NAME = "landscape"
DESCRIPTION = (
    "LDA on AP: NEB, AutoNEB and Bezier paths between CAVI maxima, barriers, planes, sweeps"
)


@dataclass(frozen=True)
class Config:
    """Settings of the ``landscape`` study.

    n_topics, restarts, max_iter, tol : the CAVI fits (tol: relative ELBO change).
    alpha, eta : symmetric Dirichlet priors; None means 1/K.
    test_fraction, observed_fraction : documents held out, and the share of each
        scored document's tokens used to infer theta (document completion).
    train_score_docs : training documents also scored by document completion.
    n_docs : use only the first n_docs documents (None = all).
    distinct_min : smallest mean matched Hellinger distance for two maxima to count as
        distinct (label-switched copies of one maximum have distance ~0).
    n_pivots, neb_steps, neb_lr, spring : NEB in profile mode (climbing image on).
    full_pivots, full_steps, full_lr : NEB in full mode (lambda, gamma, phi). More pivots
        than in profile mode: with 10, the pivots clear the barrier within 75 steps but
        the straight segments between them keep 5.6% of it; with 14, 97.8% is removed
        after 150 steps and the pivots are clear from step 80 (AP, K = 10).
    autoneb_cycles, autoneb_steps : AutoNEB (starts from 3 pivots, inserts 2 per cycle).
    bezier_degree, bezier_steps, bezier_n_t : the Bezier curve.
    plane_points : grid points per axis of each plane.
    top_words : words listed per topic.
    sweep_steps : NEB steps of every sweep point (profile mode).
    sweep_lrs, sweep_pivots, sweep_springs, sweep_topics : the sweeps.
    sweep_restarts, sweep_max_iter : CAVI fits of the K sweep.
    polish_pairs : pairs of restarts on which CAVI from a path's highest point is compared
        with random restarts (the chosen pair first); needs
        restarts * (restarts - 1) / 2 >= polish_pairs.
    polish_steps : profile-mode NEB steps of the paths of the pairs after the first (the
        first pair reuses the NEB path above).
    """

    n_topics: int = 10
    restarts: int = 4
    max_iter: int = 1000
    tol: float = 1e-6
    alpha: float | None = None
    eta: float | None = None
    test_fraction: float = 0.1
    observed_fraction: float = 0.5
    train_score_docs: int = 200
    n_docs: int | None = None
    distinct_min: float = 0.01
    n_pivots: int = 10
    neb_steps: int = 150
    neb_lr: float = 0.1
    spring: float = 1.0
    full_pivots: int = 14
    full_steps: int = 100
    full_lr: float = 0.1
    autoneb_cycles: int = 4
    autoneb_steps: int = 40
    bezier_degree: int = 2
    bezier_steps: int = 50
    bezier_n_t: int = 8
    plane_points: int = 9
    top_words: int = 8
    sweep_steps: int = 15
    sweep_lrs: tuple[float, ...] = (0.5, 0.1, 0.01)
    sweep_pivots: tuple[int, ...] = (3, 5, 10, 20)
    sweep_springs: tuple[float, ...] = (0.1, 0.01, 0.005, 0.001)
    sweep_topics: tuple[int, ...] = (5, 10, 20)
    sweep_restarts: int = 2
    sweep_max_iter: int = 100
    polish_pairs: int = 3
    polish_steps: int = 40
    seed: int = 0

    def validate(self) -> None:
        for name in (
            "n_topics",
            "max_iter",
            "neb_steps",
            "full_steps",
            "autoneb_cycles",
            "autoneb_steps",
            "bezier_steps",
            "bezier_n_t",
            "top_words",
            "sweep_steps",
            "sweep_max_iter",
            "polish_pairs",
            "polish_steps",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.restarts < 2 or self.sweep_restarts < 2:
            raise ConfigError("restarts and sweep_restarts must be >= 2: a path needs two maxima")
        if self.polish_pairs > self.restarts * (self.restarts - 1) // 2:
            raise ConfigError(
                f"polish_pairs = {self.polish_pairs} needs more restarts: {self.restarts} "
                f"restarts make {self.restarts * (self.restarts - 1) // 2} pairs"
            )
        if min(self.n_pivots, self.full_pivots, *self.sweep_pivots) < 3:
            raise ConfigError(
                "n_pivots, full_pivots and sweep_pivots must be >= 3 (endpoints included)"
            )
        if self.plane_points < 2:
            raise ConfigError(f"plane_points must be >= 2, got {self.plane_points}")
        if self.top_words < 2:  # coherence scores pairs of top words
            raise ConfigError(f"top_words must be >= 2, got {self.top_words}")
        if self.bezier_degree < 2:
            raise ConfigError(f"bezier_degree must be >= 2, got {self.bezier_degree}")
        if min(self.sweep_topics, default=1) < 1:
            raise ConfigError(f"sweep_topics must be >= 1, got {self.sweep_topics}")
        for name in ("alpha", "eta"):
            value = getattr(self, name)
            if value is not None:
                # The LDA models' own bound (checks.MAX_CONCENTRATION): refused here, at
                # --set time, not mid-run. ConfigError naming the setting.
                checks.concentration(value, name)
        for name in ("tol", "neb_lr", "full_lr"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.spring < 0 or min(self.sweep_springs, default=0) < 0:
            raise ConfigError("spring constants must be >= 0")
        if min(self.sweep_lrs, default=1) <= 0:
            raise ConfigError(f"sweep_lrs must be > 0, got {self.sweep_lrs}")
        if not 0 < self.test_fraction < 1:
            raise ConfigError(f"test_fraction must be in (0, 1), got {self.test_fraction}")
        if not 0 < self.observed_fraction < 1:
            raise ConfigError(f"observed_fraction must be in (0, 1), got {self.observed_fraction}")
        if self.train_score_docs < 1:
            raise ConfigError(f"train_score_docs must be >= 1, got {self.train_score_docs}")
        if self.n_docs is not None and self.n_docs < 10:
            raise ConfigError(f"n_docs must be >= 10, got {self.n_docs}")


PRESETS = {
    "smoke": Config(
        n_topics=3,
        restarts=3,
        max_iter=30,
        tol=1e-4,
        n_docs=120,
        train_score_docs=20,
        n_pivots=5,
        neb_steps=6,
        full_pivots=5,
        full_steps=4,
        autoneb_cycles=2,
        autoneb_steps=3,
        bezier_steps=4,
        bezier_n_t=4,
        plane_points=4,
        top_words=4,
        sweep_steps=3,
        sweep_lrs=(0.5, 0.01),
        sweep_pivots=(3, 5),
        sweep_springs=(0.1, 0.001),
        sweep_topics=(2, 3),
        sweep_max_iter=10,
        polish_pairs=2,
        polish_steps=3,
    ),
    # The tour (`elbolab demo`): K = 5 on 500 AP documents, every path method and one
    # point per sweep, about a minute on 2 cores.
    "tour": Config(
        n_topics=5,
        n_docs=500,
        restarts=3,
        max_iter=200,
        tol=1e-5,
        train_score_docs=50,
        n_pivots=6,
        neb_steps=25,
        full_pivots=8,
        full_steps=30,
        autoneb_cycles=1,
        autoneb_steps=10,
        bezier_steps=10,
        plane_points=4,
        sweep_steps=5,
        sweep_lrs=(0.5,),
        sweep_pivots=(3,),
        sweep_springs=(0.01,),
        sweep_topics=(3,),
        sweep_max_iter=30,
        polish_pairs=1,
        polish_steps=10,
    ),
    # The Config defaults. Budgets rebalanced for the polish work and the compiled
    # full-mode gradient: 14 pivots and 100 full-mode NEB steps (the pivots clear the
    # barrier from step 80), shorter sweeps and Bezier curve, 9 x 9 planes, K sweep
    # (5, 10, 20). Measured end to end: 835 s in CI's cold-cache run on 2 cores, 97.4%
    # (profile) and 97.0% (full) of the aligned line's barrier removed.
    "default": Config(),
    # Li & Wei's settings where they are stated (K = 10, 10 pivots, the sweeps), on
    # the full corpus and with longer optimizations than 2 cores finish in minutes.
    "paper": Config(
        restarts=8,
        max_iter=3000,
        neb_steps=1000,
        full_steps=500,
        autoneb_cycles=6,
        autoneb_steps=200,
        bezier_steps=600,
        bezier_n_t=16,
        plane_points=25,
        sweep_steps=300,
        sweep_topics=(5, 10, 15, 20),
        sweep_restarts=4,
        sweep_max_iter=1000,
        polish_pairs=6,
        polish_steps=300,
    ),
}


# --------------------------------------------------------------------------- data


def prepare(cfg: Config, data_root=None) -> dict:
    """The AP corpus, its document split and the two completion splits; writes nothing."""
    inputs = lda_study.prepare(
        lda_study.Config(
            test_fraction=cfg.test_fraction,
            observed_fraction=cfg.observed_fraction,
            n_docs=cfg.n_docs,
            seed=cfg.seed,
        ),
        data_root,
    )
    train = inputs["train"]
    rng = np.random.default_rng([cfg.seed, 1])
    chosen = np.sort(rng.choice(train.n_docs, min(cfg.train_score_docs, train.n_docs), False))
    train_observed, train_heldout = train.subset(chosen).completion_split(
        cfg.observed_fraction, seed=cfg.seed
    )
    return {**inputs, "train_observed": train_observed, "train_heldout": train_heldout}


# --------------------------------------------------------------------------- steps


def _fit(cfg: Config, k: int, restarts: int, max_iter: int, train, rundir, key: str) -> dict:
    fit_cfg = lda_study.Config(
        topics=(k,),
        restarts=restarts,
        max_iter=max_iter,
        tol=cfg.tol,
        alpha=cfg.alpha,
        eta=cfg.eta,
        seed=cfg.seed,
    )
    model = lda_study.fit_restarts(fit_cfg, k, train, rundir, key)
    return {
        "lam": np.stack([r.components for r in model.restarts_]),
        "history": lda_study.restart_histories(model),
        "n_iter": [len(r.history) for r in model.restarts_],
        "converged": [len(r.history) < max_iter for r in model.restarts_],
        "alpha": model.alpha_,
        "eta": model.eta_,
    }


def _choose_pair(obj: LDAObjective, lam: np.ndarray, distinct_min: float) -> dict:
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


def _line(f, xa, xb, n_pivots: int) -> dict:
    pivots = linear_path(xa, xb, n_pivots)
    with torch.no_grad():
        dense = dense_values(f, pivots, per_segment=4, batch_size=16)
    _, positions = dense_points(pivots, 4)
    return {
        "dense_values": dense.numpy(),
        "dense_positions": positions.numpy(),
        "barrier": barrier(dense, dense[0], dense[-1]),
        "length": path_length(pivots),
    }


def _peak_point(result) -> torch.Tensor:
    """The highest point of a path's dense resampling, as a vector.

    Only that one point is rebuilt: in full mode a vector holds every token's phi, so the
    whole dense resampling would not fit in memory.
    """
    i = int(torch.argmax(result.dense_values))
    m = result.dense_values.shape[0]
    if result.method == "bezier":  # dense points at evenly spaced t on the curve
        t = torch.tensor([i / (m - 1)], dtype=result.pivots.dtype)
        return bezier_points(result.info["control_points"], t)[0]
    per_segment, rest = divmod(m - 1, result.pivots.shape[0] - 1)
    if rest:
        raise AssertionError(
            f"{m} dense points do not split into {result.pivots.shape[0] - 1} equal segments"
        )
    seg, j = divmod(i, per_segment)
    if seg == result.pivots.shape[0] - 1:
        return result.pivots[-1]
    p0, p1 = result.pivots[seg], result.pivots[seg + 1]
    return p0 + (j / per_segment) * (p1 - p0)


def _path_record(result, keep_pivots: bool, obj) -> dict:
    """Summary and arrays of a path, with the topics at its highest point (for polishing)."""
    record = {
        "summary": result.summary(),
        "peak_lam": obj.components(_peak_point(result)).detach().numpy(),
        "peak_value": float(result.dense_values.max()),
        "values": result.values.detach().numpy(),
        "history": result.history.detach().numpy(),
        "dense_values": result.dense_values.detach().numpy(),
        "dense_positions": result.dense_positions.detach().numpy(),
    }
    if keep_pivots:
        record["pivots"] = result.pivots.detach().numpy()
    if "objective" in result.info:  # Bezier: mean of f over the sampled t, per step
        record["objective"] = torch.as_tensor(result.info["objective"]).numpy()
    return record


def _plane(f, kind: str, xa, xb, pivots, n_points: int, seed: int) -> dict:
    """ELBO on one plane, and the NEB path and the straight line projected onto it."""
    d = float((xb - xa).norm())
    if kind == "path":
        far, off = farthest_from_line(pivots, xa, xb)
        third = pivots[far]
        if off <= 1e-9 * d:  # the path never left the line: any plane through it shows it
            u_rand, _ = random_gaussian_directions(xa.shape[0], generator=seed)
            third = 0.5 * (xa + xb) + 0.1 * d * u_rand / u_rand.norm()
        center, u, v, _ = plane_through(xa, xb, third)
        coords, _ = project(pivots, center, u, v)
        reach_x = max(0.5 * d, float(coords[:, 0].abs().max())) * 1.25
        y_lo, y_hi = float(coords[:, 1].min()), float(coords[:, 1].max())
        pad = 0.3 * max(y_hi - y_lo, 0.25 * d)
        xs = np.linspace(-reach_x, reach_x, n_points)
        ys = np.linspace(y_lo - pad, y_hi + pad, n_points)
    else:
        # Centered on maximum a, each direction as long as the distance to b, so the
        # grid reaches as far from a as b is.
        make = random_gaussian_directions if kind == "gaussian" else random_sign_directions
        u, v = make(xa.shape[0], generator=seed)
        u, v = u * d / u.norm(), v * d / v.norm()
        center = xa
        xs = ys = np.linspace(-1.0, 1.0, n_points)
    grid = plane_grid(f, center, u, v, xs, ys, batch_size=16)
    path_xy, path_off = project(pivots, center, u, v)
    line_xy, _ = project(torch.stack([xa, xb]), center, u, v)
    return {
        "xs": np.asarray(xs),
        "ys": np.asarray(ys),
        "values": grid.numpy(),
        "path_xy": path_xy.numpy(),
        "path_off_plane": path_off.numpy(),
        "line_xy": line_xy.numpy(),
        "unit": "distance in x" if kind == "path" else "multiples of |b - a|",
    }


def _top_words_along(lam_path: np.ndarray, idx: list[int], vocab, n: int) -> list:
    """Top-n words of every topic (rows) at the chosen pivots (columns)."""
    return [
        [" ".join(lda_study.top_words(lam_path[i], vocab, n)[k]) for i in idx]
        for k in range(lam_path.shape[1])
    ]


def _neb_profile(obj, xa, xb, cfg: Config, **overrides):
    settings = {
        "n_pivots": cfg.n_pivots,
        "steps": cfg.neb_steps,
        "lr": cfg.neb_lr,
        "spring": cfg.spring,
        "climbing": True,
        "generator": cfg.seed,
        "batch_size": 16,
        **overrides,
    }
    return neb(obj, xa, xb, **settings)


def _endpoint_vectors(obj, lam: np.ndarray, pair: dict):
    lam_b = apply_permutation(lam[pair["b"]], pair["permutation"], 0)
    return obj.to_vector(lam[pair["a"]]), obj.to_vector(lam_b), obj.to_vector(lam[pair["b"]])


# --------------------------------------------------------------------------- run


def run(cfg: Config, inputs: dict, rundir):
    train = inputs["train"]
    timings = {}
    k = cfg.n_topics

    def timed(name, compute):
        return rundir.cached(name, compute, timings)

    # 1. The maxima (the restarts run as independent units).
    fit = timed("fit", lambda: _fit(cfg, k, cfg.restarts, cfg.max_iter, train, rundir, "fit_lda"))
    lam = fit["lam"]
    prof = LDAObjective(train, k, fit["alpha"], fit["eta"], mode="profile")

    # 2. Alignment.
    pair = timed("align", lambda: _choose_pair(prof, lam, cfg.distinct_min))
    xa, xb, xb_unaligned = _endpoint_vectors(prof, lam, pair)

    # 3. Lines and paths from the aligned maxima: independent units.
    units = {
        "lines": lambda: {
            "unaligned": _line(prof, xa, xb_unaligned, cfg.n_pivots),
            "aligned": _line(prof, xa, xb, cfg.n_pivots),
        },
        "neb_profile": lambda: _path_record(_neb_profile(prof, xa, xb, cfg), True, prof),
        "autoneb": lambda: _path_record(_autoneb(prof, xa, xb, cfg), False, prof),
        "bezier": lambda: _path_record(_bezier(prof, xa, xb, cfg), False, prof),
        "full": partial(_full_mode, cfg, train, fit, pair),
    }
    done = rundir.cached_map(units, timings, desc="landscape paths")
    neb_p = done["neb_profile"]
    pivots = torch.from_numpy(neb_p["pivots"])

    # 4. Maxima from paths: CAVI from each path's highest point; on more pairs of
    # restarts, against random restarts given the same CAVI iterations.
    pairs = [pair] + _more_pairs(lam, pair, cfg.polish_pairs - 1, cfg.distinct_min)
    polish_units = {
        f"polish_{name}": partial(_path_polish, cfg, prof, lam, pair, rec["peak_lam"], inputs)
        for name, rec in (
            ("autoneb", done["autoneb"]),
            ("bezier", done["bezier"]),
            ("neb_full", done["full"]["neb"]),
        )
    }
    for i, p in enumerate(pairs):
        path = neb_p if i == 0 else None
        polish_units[f"polish_pair{i}"] = partial(_pair_polish, cfg, prof, lam, p, i, inputs, path)
    polished = rundir.cached_map(polish_units, timings, desc="polish from paths")

    # 5. The sweeps: independent units.
    units, sweep_keys = {}, {}
    for name, values, key in (
        ("lr", cfg.sweep_lrs, "lr"),
        ("pivots", cfg.sweep_pivots, "n_pivots"),
        ("spring", cfg.sweep_springs, "spring"),
    ):
        for value in values:
            # Keyed by the full setting, so a point two sweeps share (the default learning
            # rate at the default pivots, say) is computed once.
            point = {"lr": cfg.neb_lr, "n_pivots": cfg.n_pivots, "spring": cfg.spring, key: value}
            unit = "sweep_lr{lr}_N{n_pivots}_k{spring}".format(**point)
            units[unit] = partial(_sweep_point, prof, xa, xb, cfg, **point)
            sweep_keys[(name, str(value))] = unit
    for kk in cfg.sweep_topics:
        units[f"sweep_topics_{kk}"] = partial(_topic_point, cfg, kk, inputs, rundir)
        sweep_keys[("topics", str(kk))] = f"sweep_topics_{kk}"
    swept = rundir.cached_map(units, timings, desc="landscape sweeps")
    sweeps = {name: {} for name in ("lr", "pivots", "spring", "topics")}
    for (name, value), unit in sweep_keys.items():
        sweeps[name][value] = swept[unit]

    # 6. Planes through the NEB path and at random.
    planes = rundir.cached_map(
        {
            f"plane_{kind}": partial(
                _plane, prof, kind, xa, xb, pivots, cfg.plane_points, cfg.seed + i
            )
            for i, kind in enumerate(("path", "gaussian", "sign"))
        },
        timings,
        desc="planes",
    )
    planes = {name.removeprefix("plane_"): value for name, value in planes.items()}

    # 7. Reading the path: topics and document completion at every pivot.
    read = timed("reading", partial(_reading, prof, pivots, xa, xb, inputs, cfg))
    coherence = timed(
        "coherence", partial(_coherence_along, prof, pivots, xa, xb, train, cfg.top_words)
    )

    metrics, arrays = _collect(
        cfg,
        inputs,
        fit,
        pair,
        done["lines"],
        neb_p,
        done["autoneb"],
        done["bezier"],
        done["full"],
        planes,
        read,
        sweeps,
    )
    metrics["polish"] = _polish_metrics(cfg, polished, pairs, done, neb_p, fit, pair, timings)
    metrics["coherence"] = _coherence_metrics(coherence, neb_p, done["lines"], train.n_tokens)
    for path in ("neb", "linear"):
        for measure in ("umass", "npmi"):
            arrays[f"coherence_{path}_{measure}"] = coherence[path][measure]
    metrics["timings"] = timings
    return metrics, arrays


def _autoneb(prof, xa, xb, cfg: Config):
    return autoneb(
        prof,
        xa,
        xb,
        cycles=cfg.autoneb_cycles,
        steps=cfg.autoneb_steps,
        lr=cfg.neb_lr,
        climbing=True,
        generator=cfg.seed,
        batch_size=16,
    )


def _bezier(prof, xa, xb, cfg: Config):
    return bezier(
        prof,
        xa,
        xb,
        degree=cfg.bezier_degree,
        steps=cfg.bezier_steps,
        lr=cfg.neb_lr,
        n_t=cfg.bezier_n_t,
        generator=cfg.seed,
        batch_size=16,
    )


def _full_mode(cfg: Config, train, fit: dict, pair: dict) -> dict:
    """The straight line and NEB in full mode (phi and gamma in the parameters)."""
    lam = fit["lam"]
    full = LDAObjective(train, cfg.n_topics, fit["alpha"], fit["eta"], mode="full")
    fa = full.to_vector(lam[pair["a"]])
    fb = full.to_vector(apply_permutation(lam[pair["b"]], pair["permutation"], 0))
    line = _line(full, fa, fb, cfg.n_pivots)
    path = neb(
        full,
        fa,
        fb,
        n_pivots=cfg.full_pivots,
        steps=cfg.full_steps,
        lr=cfg.full_lr,
        spring=cfg.spring,
        climbing=True,
        generator=cfg.seed,
        batch_size=4,
    )
    return {"line": line, "neb": _path_record(path, False, full)}


def _reading(prof, pivots, xa, xb, inputs: dict, cfg: Config) -> dict:
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


def _coherence_along(prof, pivots, xa, xb, train, top_n: int) -> dict:
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


def _coherence_metrics(coherence: dict, neb_p: dict, lines: dict, tokens: int) -> dict:
    """Mean coherence over the topics at every pivot of both paths, with the ELBO per
    token at the same pivots for comparison (the straight line's from its dense values,
    whose every ``per_segment``-th point is a pivot)."""
    out = {key: coherence[key] for key in ("top_n", "umass_epsilon", "npmi_epsilon")}
    dense = lines["aligned"]["dense_values"]
    n = len(neb_p["values"])
    per_segment = (len(dense) - 1) // (n - 1)
    elbo = {"neb": neb_p["values"], "linear": dense[::per_segment]}
    for path in ("neb", "linear"):
        out[path] = {
            f"{measure}_mean": coherence[path][measure].mean(axis=1).tolist()
            for measure in ("umass", "npmi")
        }
        out[path]["elbo_per_token"] = (np.asarray(elbo[path]) / tokens).tolist()
    return out


def _sweep_point(obj, xa, xb, cfg: Config, **overrides) -> dict:
    result = _neb_profile(obj, xa, xb, cfg, steps=cfg.sweep_steps, **overrides)
    seg = torch.diff(result.pivots, dim=0).norm(dim=1)
    return {
        "barrier": result.barrier,
        "bottleneck_history": result.history.min(dim=1).values.numpy(),
        "halvings": int(result.info["halvings"]),
        "finite": bool(torch.isfinite(result.history).all()),
        "spacing_ratio": float(seg.max() / seg.min()),
    }


def _topic_point(cfg: Config, k: int, inputs: dict, rundir) -> dict:
    train = inputs["train"]
    fit = _fit(cfg, k, cfg.sweep_restarts, cfg.sweep_max_iter, train, rundir, f"sweep_fit_K{k}")
    obj = LDAObjective(train, k, fit["alpha"], fit["eta"], mode="profile")
    pair = _choose_pair(obj, fit["lam"], cfg.distinct_min)
    xa, xb, _ = _endpoint_vectors(obj, fit["lam"], pair)
    line = _line(obj, xa, xb, cfg.n_pivots)
    path = _neb_profile(obj, xa, xb, cfg, steps=cfg.sweep_steps)
    endpoints = torch.stack([xa, xb])
    heldout = obj.heldout_scores(endpoints, inputs["observed"], inputs["heldout"])["per_token"]
    return {
        "barrier_linear": line["barrier"],
        "barrier_neb": path.barrier,
        "elbo_a": path.f_a,
        "elbo_b": path.f_b,
        "heldout_per_token_a": float(heldout[0]),
        "heldout_per_token_b": float(heldout[1]),
        "mean_distance_aligned": pair["mean_distance_aligned"],
    }


def _more_pairs(lam: np.ndarray, first: dict, n: int, distinct_min: float) -> list[dict]:
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


def _polish_from(cfg: Config, prof, lam, pair: dict, peak_lam, inputs: dict):
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


def _path_polish(cfg: Config, prof, lam, pair: dict, peak_lam, inputs: dict) -> dict:
    return _polish_from(cfg, prof, lam, pair, peak_lam, inputs).summary()


def _pair_polish(cfg: Config, prof, lam, pair: dict, index: int, inputs: dict, path) -> dict:
    """Path (NEB, profile mode) from a to the aligned b unless given, CAVI from its
    highest point, and random restarts given the same number of CAVI iterations."""
    start = time.perf_counter()
    if path is None:
        xa, xb, _ = _endpoint_vectors(prof, lam, pair)
        path = _path_record(_neb_profile(prof, xa, xb, cfg, steps=cfg.polish_steps), False, prof)
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


def _polish_metrics(cfg, polished, pairs, done, neb_p, fit, pair, timings) -> dict:
    """The polish results, with two yardsticks besides the equal-iteration restarts: the
    best of the fitted restarts, and each path's cost in CAVI iterations of the fits."""
    first = polished["polish_pair0"]
    paths = {"neb_profile": first["polished"]}
    for name in ("autoneb", "bezier", "neb_full"):
        paths[name] = polished[f"polish_{name}"]
    peaks = {
        "neb_profile": neb_p["peak_value"],
        "autoneb": done["autoneb"]["peak_value"],
        "bezier": done["bezier"]["peak_value"],
        "neb_full": done["full"]["neb"]["peak_value"],
    }
    for name, value in peaks.items():
        paths[name] = {**paths[name], "peak_value": value}
    best_fit = max(pair["profile_elbo_restarts"])
    # Wall time of one CAVI iteration of the fits (restarts run one after another).
    per_iter = timings["fit_seconds"] / sum(fit["n_iter"])
    rows = []
    for i in range(len(pairs)):
        r = dict(polished[f"polish_pair{i}"])
        seconds = timings["neb_profile_seconds"] if i == 0 else r["path"]["wall_seconds"]
        # Derived from wall times, so under "timings": they differ between any two runs.
        r["path"] = {
            **r["path"],
            "wall_seconds": seconds,
            "timings": {"cavi_iterations_equivalent": seconds / per_iter},
        }
        r["gain_over_best_fitted_restart"] = r["polished"]["elbo"] - best_fit
        rows.append(r)
    return {
        "same_max": cfg.distinct_min,
        "timings": {"cavi_iteration_seconds": per_iter},
        "fitted_restarts_iterations": int(sum(fit["n_iter"])),
        "paths": paths,
        "pairs": rows,
        "n_new_above_both": sum(
            r["polished"]["identity"] == "new" and r["polished"]["gain"] > 0 for r in rows
        ),
        "n_polish_beats_baseline": sum(r["polished"]["elbo"] > r["baseline"]["elbo"] for r in rows),
        "n_above_best_fitted_restart": sum(r["gain_over_best_fitted_restart"] > 0 for r in rows),
        "n_baseline_above_both": sum(
            r["baseline"]["elbo"] > max(r["polished"]["elbo_a"], r["polished"]["elbo_b"])
            for r in rows
        ),
    }


def _collect(cfg, inputs, fit, pair, lines, neb_p, auto, bez, full, planes, read, sweeps):
    train = inputs["train"]
    tol_slack = cfg.tol * abs(max(neb_p["summary"]["f_a"], neb_p["summary"]["f_b"]))
    best_end = {
        "profile": max(neb_p["summary"]["f_a"], neb_p["summary"]["f_b"]),
        "full": max(full["neb"]["summary"]["f_a"], full["neb"]["summary"]["f_b"]),
    }
    excess = {
        "neb_profile": float(neb_p["dense_values"].max() - best_end["profile"]),
        "autoneb": float(auto["dense_values"].max() - best_end["profile"]),
        "bezier": float(bez["dense_values"].max() - best_end["profile"]),
        "neb_full": float(full["neb"]["dense_values"].max() - best_end["full"]),
    }
    barriers = {
        "linear_unaligned": lines["unaligned"]["barrier"],
        "linear_aligned": lines["aligned"]["barrier"],
        "neb_profile": neb_p["summary"]["barrier"],
        "autoneb": auto["summary"]["barrier"],
        "bezier": bez["summary"]["barrier"],
        "linear_aligned_full": full["line"]["barrier"],
        "neb_full": full["neb"]["summary"]["barrier"],
    }

    def removed(best, line):
        return 1.0 - best / line if line > 0 else 1.0

    best_profile = min(barriers["neb_profile"], barriers["autoneb"], barriers["bezier"])
    metrics = {
        "data": {
            "source": inputs["source"],
            "n_docs": inputs["corpus"].n_docs,
            "n_words": inputs["corpus"].n_words,
            "n_train_docs": train.n_docs,
            "n_train_tokens": train.n_tokens,
            "n_test_docs": inputs["observed"].n_docs,
        },
        "fit": {
            "elbo_restarts": fit["history"][-1].tolist(),
            "n_iter": fit["n_iter"],
            "converged": fit["converged"],
            "alpha": fit["alpha"],
            "eta": fit["eta"],
        },
        "endpoints": {
            "a": pair["a"],
            "b": pair["b"],
            "elbo_a": neb_p["summary"]["f_a"],
            "elbo_b": neb_p["summary"]["f_b"],
            "elbo_full_a": full["neb"]["summary"]["f_a"],
            "elbo_full_b": full["neb"]["summary"]["f_b"],
            "profile_elbo_restarts": pair["profile_elbo_restarts"],
            "distinct": pair["distinct"],
        },
        "alignment": {
            key: pair[key]
            for key in (
                "permutation",
                "distances_aligned",
                "distances_unaligned",
                "mean_distance_aligned",
                "mean_distance_unaligned",
            )
        },
        "barrier": barriers,
        "barrier_per_token": {k: v / train.n_tokens for k, v in barriers.items()},
        "barrier_removed_fraction": {
            "profile": removed(best_profile, barriers["linear_aligned"]),
            "full": removed(barriers["neb_full"], barriers["linear_aligned_full"]),
        },
        "convergence_check": {
            "tolerance_slack": tol_slack,
            "max_excess_over_best_endpoint": excess,
            "violations": sorted(k for k, v in excess.items() if v > tol_slack),
        },
        "paths": {
            "neb_profile": neb_p["summary"],
            "autoneb": auto["summary"],
            "bezier": bez["summary"],
            "neb_full": full["neb"]["summary"],
            "linear_aligned_length": lines["aligned"]["length"],
        },
        "planes": {
            kind: {"max_path_off_plane": float(p["path_off_plane"].max())}
            for kind, p in planes.items()
        },
        "reading": {
            "pivots_shown": read["pivots_shown"],
            "top_words": read["top_words"],
            "heldout_per_token": {
                name: {
                    "neb": s["neb"].tolist(),
                    "linear": s["linear"].tolist(),
                    "n_tokens": s["n_tokens"],
                    "n_docs": s["n_docs"],
                }
                for name, s in read["scores"].items()
            },
        },
        "sweeps": {
            name: {
                value: {k: v for k, v in point.items() if k != "bottleneck_history"}
                for value, point in points.items()
            }
            for name, points in sweeps.items()
        },
    }
    arrays = {"fit_history": fit["history"], "neb_profile_pivots": neb_p["pivots"]}
    for name, rec in (
        ("neb_profile", neb_p),
        ("autoneb", auto),
        ("bezier", bez),
        ("neb_full", full["neb"]),
    ):
        for field in ("values", "history", "dense_values", "dense_positions", "objective"):
            if field in rec:
                arrays[f"{name}_{field}"] = rec[field]
    for name, rec in (
        ("linear_unaligned", lines["unaligned"]),
        ("linear_aligned", lines["aligned"]),
        ("linear_aligned_full", full["line"]),
    ):
        arrays[f"{name}_dense_values"] = rec["dense_values"]
        arrays[f"{name}_dense_positions"] = rec["dense_positions"]
    for kind, p in planes.items():
        for field in ("xs", "ys", "values", "path_xy", "line_xy", "path_off_plane"):
            arrays[f"plane_{kind}_{field}"] = p[field]
    for name in ("lr", "pivots", "spring"):
        for value, point in sweeps[name].items():
            arrays[f"sweep_{name}_{value}_bottleneck"] = point["bottleneck_history"]
    return metrics, arrays


# --------------------------------------------------------------------------- claims

_LI_WEI = "Li & Wei, Analysis of ELBO loss landscape: no barrier in between local maxima"
_ZHANG_BLEI = "Zhang & Blei 2021, Unveiling mode-connectivity of the ELBO landscape"


def claims(cfg: Config, metrics: dict) -> list:
    """The papers' claims against this run's numbers (verdicts computed, not set)."""
    from ..claims import Claim, verdict

    al, ends = metrics["alignment"], metrics["endpoints"]
    distinct = al["mean_distance_aligned"] > cfg.distinct_min
    removed = metrics["barrier_removed_fraction"]
    b = metrics["barrier"]
    best_profile = min(("neb_profile", "autoneb", "bezier"), key=lambda n: b[n])
    pol = metrics["polish"]
    rows = pol["pairs"]
    n = len(rows)
    new_above = pol["n_new_above_both"]
    beats = pol["n_polish_beats_baseline"]
    gains = ", ".join(f"{r['polished']['gain']:+,.0f}" for r in rows)
    base_gains = ", ".join(f"{r['baseline']['elbo'] - _best_end(r):+,.0f}" for r in rows)
    return [
        Claim(
            claim="CAVI from different random starts reaches different maxima of LDA's ELBO, "
            "not only label-switched copies of one maximum",
            reference=f"{_ZHANG_BLEI}, abstract; {_LI_WEI}",
            measured=f"mean matched Hellinger distance of the chosen maxima's topics "
            f"{al['mean_distance_aligned']:.3f} after alignment "
            f"({al['mean_distance_unaligned']:.3f} before); ELBO {ends['elbo_a']:,.1f} vs "
            f"{ends['elbo_b']:,.1f} nats",
            verdict=verdict(distinct),
            reason=f"holds when the aligned distance exceeds {cfg.distinct_min:g} (label-"
            "switched copies have distance ~0); among the fitted restarts, the best and the "
            "best other distinct one are compared",
        ),
        Claim(
            claim="between two maxima there is a path without an ELBO barrier, with the local "
            "parameters re-optimized (profile mode) and with them as coordinates (full mode)",
            reference=f"{_LI_WEI}; {_ZHANG_BLEI}",
            measured=f"barrier removed relative to the aligned straight line: profile "
            f"{removed['profile']:.1%} (best path {best_profile}: {b[best_profile]:,.0f} of "
            f"{b['linear_aligned']:,.0f} nats), full {removed['full']:.1%} "
            f"({b['neb_full']:,.0f} of {b['linear_aligned_full']:,.0f} nats)",
            verdict=verdict(min(removed.values()) >= 0.95, partly=max(removed.values()) >= 0.95),
            reason="holds when the best path removes at least 95% of the aligned straight "
            "line's barrier in both modes (partly: in one); a residual barrier at this step "
            "budget does not show that none exists",
        ),
        Claim(
            claim="the highest point of an optimized path leads to new local maxima, higher "
            "than both endpoints: the path method as a way to find maxima",
            reference=f"{_LI_WEI} (suggested, not tested there)",
            measured=f"{new_above} of {n} pairs: CAVI from the NEB path's peak reached a new "
            f"maximum above both endpoints (gain over the better endpoint {gains} nats); "
            f"random restarts with the same CAVI iterations: best {base_gains} nats; polish "
            f"higher than the restarts in {beats} of {n}; higher than the best of the "
            f"{len(metrics['fit']['n_iter'])} fitted restarts ({pol['fitted_restarts_iterations']} "
            f"CAVI iterations) in {pol['n_above_best_fitted_restart']} of {n}",
            verdict=verdict(new_above == n and beats == n, partly=new_above > 0),
            reason="holds when on every pair the polished maximum is new (mean matched "
            f"Hellinger distance > {cfg.distinct_min:g} to both endpoints), above both, and "
            "above the best of the equal-iteration random restarts; partly when it finds new, "
            "higher maxima on some pair but not better than restarts everywhere. The "
            "equal-iteration baseline does not pay for the path (its cost in CAVI iterations "
            "is in the report), so the fitted restarts are the second yardstick",
        ),
    ]


# --------------------------------------------------------------------------- report


def render(rundir):
    """Figures and report from metrics.json and arrays.npz."""
    from ...report import Report, plots

    m = rundir.read_json("metrics.json")
    arr = rundir.load_arrays()
    cfg = rundir.read_json("config.json")["config"]
    data = m["data"]
    tokens = data["n_train_tokens"]
    unit = f"ELBO per token (nats; total / {tokens:,} training tokens)"
    report = Report(
        "The ELBO landscape of LDA between two CAVI maxima",
        f"{data['source']}: {data['n_train_docs']} training documents, {tokens:,} tokens, "
        f"{data['n_words']:,} words; K = {cfg['n_topics']}",
    )
    report.paragraph(
        "ELBO: the full evidence lower bound of LDA in nats with every Dirichlet normalizer, "
        "summed over the training documents. Profile mode: a point is the topics lambda and "
        "every document's gamma and phi are re-optimized by the E-step (the score a user "
        "gives a topic model). Full mode: a point is (lambda, gamma, phi), as in Li & Wei. "
        "Barrier = max(0, min(ELBO(a), ELBO(b)) - lowest ELBO on the path), in nats, on a "
        "dense resampling of the path."
    )
    b = m["barrier"]
    report.table(
        ["path", "mode", "barrier (nats)", "barrier (nats/token)"],
        [
            [
                name.replace("_", " "),
                "full" if name.endswith("full") else "profile",
                f"{b[name]:,.1f}",
                f"{m['barrier_per_token'][name]:.2e}",
            ]
            for name in b
        ],
        caption=(
            "Barriers between the two maxima. Share of the aligned straight line's barrier "
            f"removed by the best path: profile {m['barrier_removed_fraction']['profile']:.1%}, "
            f"full {m['barrier_removed_fraction']['full']:.1%}."
        ),
    )
    check = m["convergence_check"]
    if check["violations"]:
        report.paragraph(
            "Convergence check: on " + ", ".join(check["violations"]) + " a point of the path "
            "is higher than the better endpoint by more than one CAVI step at the stopping "
            f"tolerance ({check['tolerance_slack']:.1f} nats; excess per path in the metrics "
            "below). Either an endpoint is not a converged maximum, or the path climbs over a "
            "barrier to a higher region between the two maxima; the figure of the ELBO along "
            "the paths tells which.",
        )
    else:
        report.paragraph(
            "Convergence check passed: no point of any path is higher than the better endpoint "
            f"by more than the CAVI tolerance implies ({check['tolerance_slack']:.1f} nats)."
        )

    # Fits and alignment.
    fig, axes = plots.new_figure(width=11, height=3.8, ncols=2)
    hist = arr["fit_history"] / tokens
    plots.line_plot(
        axes[0],
        np.arange(1, hist.shape[0] + 1),
        {f"restart {r}": hist[:, r] for r in range(hist.shape[1])},
        xlabel="CAVI iteration",
        ylabel=unit,
        title="CAVI restarts",
    )
    al = m["alignment"]
    x = np.arange(len(al["distances_aligned"]))
    axes[1].bar(x - 0.2, al["distances_unaligned"], 0.4, label="before alignment")
    axes[1].bar(x + 0.2, al["distances_aligned"], 0.4, label="after alignment")
    axes[1].set_xlabel("topic of maximum a")
    axes[1].set_ylabel("Hellinger distance to b's topic")
    axes[1].legend(frameon=False)
    report.figure(
        rundir.save_figure(fig, "fits_alignment"),
        f"Left: ELBO per token of every restart during CAVI. Right: Hellinger distance between "
        f"the topics of the maxima a (restart {m['endpoints']['a']}) and b (restart "
        f"{m['endpoints']['b']}) before and after Hungarian alignment; permutation "
        f"{al['permutation']}.",
    )

    # ELBO along the paths.
    fig, axes = plots.new_figure(width=11, height=4, ncols=2)
    for name, label in (
        ("linear_unaligned", "line, unaligned"),
        ("linear_aligned", "line, aligned"),
        ("neb_profile", "NEB"),
        ("autoneb", "AutoNEB"),
        ("bezier", "Bezier"),
    ):
        axes[0].plot(
            arr[f"{name}_dense_positions"], arr[f"{name}_dense_values"] / tokens, label=label
        )
    axes[0].set_ylim(
        _ylim(
            [
                arr[f"{n}_dense_values"] / tokens
                for n in ("linear_aligned", "neb_profile", "autoneb", "bezier")
            ]
        )
    )
    for name, label in (("linear_aligned_full", "line, aligned"), ("neb_full", "NEB")):
        axes[1].plot(
            arr[f"{name}_dense_positions"], arr[f"{name}_dense_values"] / tokens, label=label
        )
    for ax, title in zip(axes, ("profile mode", "full mode"), strict=True):
        ax.set_xlabel("position along the path (arc-length fraction)")
        ax.set_ylabel(unit)
        ax.set_title(title)
        ax.legend(frameon=False)
    report.figure(
        rundir.save_figure(fig, "elbo_along_paths"),
        "ELBO per token along each path from maximum a (left end) to the aligned maximum b. "
        "The unaligned line (left) falls far below the plot when label switching is not undone.",
    )

    # Optimization histories.
    fig, axes = plots.new_figure(width=11, height=4, ncols=2)
    for name, label in (("neb_profile", "NEB (profile)"), ("neb_full", "NEB (full)")):
        h = arr[f"{name}_history"] / tokens
        axes[0].plot(np.arange(h.shape[0]), h.min(axis=1), label=label)
    axes[0].set_xlabel("NEB iteration")
    axes[0].set_ylabel("lowest pivot " + unit)
    axes[0].legend(frameon=False)
    if "bezier_objective" in arr:
        axes[1].plot(arr["bezier_objective"] / tokens)
    axes[1].set_xlabel("Bezier step")
    axes[1].set_ylabel("mean sampled " + unit)
    report.figure(
        rundir.save_figure(fig, "path_optimization"),
        "Left: the lowest pivot's ELBO per token after each NEB iteration (the barrier estimate "
        "rises as the band relaxes). Right: the Bezier objective, the ELBO averaged over the "
        f"{cfg['bezier_n_t']} values of t sampled at each step.",
    )

    # Planes.
    fig, axes = plots.new_figure(width=15, height=4.4, ncols=3)
    titles = {
        "path": "plane through a, b and the NEB path",
        "gaussian": "random Gaussian plane",
        "sign": "random +-1 plane",
    }
    for ax, kind in zip(axes, ("path", "gaussian", "sign"), strict=True):
        xs, ys = arr[f"plane_{kind}_xs"], arr[f"plane_{kind}_ys"]
        values = arr[f"plane_{kind}_values"] / tokens
        finite = values[np.isfinite(values)]
        levels = np.quantile(finite, np.linspace(0.0, 1.0, 15)) if finite.size else 10
        cs = ax.contourf(xs, ys, values, levels=np.unique(levels), cmap="viridis")
        fig.colorbar(cs, ax=ax, label=unit)
        p, line = arr[f"plane_{kind}_path_xy"], arr[f"plane_{kind}_line_xy"]
        ax.plot(p[:, 0], p[:, 1], "o-", color="white", ms=3, label="NEB path (projected)")
        ax.plot(line[:, 0], line[:, 1], "--", color="red", label="straight line (projected)")
        scale = "coordinate (x units)" if kind == "path" else "coordinate (multiples of |b - a|)"
        ax.set_xlabel(scale)
        ax.set_ylabel(scale)
        ax.set_title(
            titles[kind] + f"\npath off plane <= {m['planes'][kind]['max_path_off_plane']:.3g}",
            fontsize=9,
        )
    axes[0].legend(frameon=False, fontsize=7)
    report.figure(
        rundir.save_figure(fig, "planes"),
        f"ELBO per token (profile mode) on {cfg['plane_points']} x {cfg['plane_points']} grids. "
        "Left: the plane through both maxima and the NEB pivot farthest from the straight "
        "line (the path lies in it up to the distance in the title). Middle and right: random "
        "planes centered on maximum a, each direction as long as |b - a|; the path and the line "
        "are projected onto them and lie mostly off them.",
    )

    # Held-out scores along the path.
    read = m["reading"]
    fig, axes = plots.new_figure(width=11, height=4, ncols=2)
    for ax, name in zip(axes, ("test", "train"), strict=True):
        s = read["heldout_per_token"][name]
        pos = np.linspace(0, 1, len(s["neb"]))
        ax.plot(pos, s["neb"], "o-", label="NEB path (pivots)")
        ax.plot(pos, s["linear"], "s--", label="straight line")
        ax.set_xlabel("pivot position (fraction of the pivot index)")
        ax.set_ylabel("held-out log-likelihood per token (nats)")
        ax.set_title(f"{name} documents ({s['n_docs']} docs, {s['n_tokens']:,} held-out tokens)")
        ax.legend(frameon=False)
    report.figure(
        rundir.save_figure(fig, "heldout_along_path"),
        "Document completion along the path: theta is inferred from half of each document's "
        "tokens under the pivot's topics and the other half is scored (nats per held-out token, "
        "higher is better). Training documents were seen by the fits; test documents were not.",
    )
    shown = read["pivots_shown"]
    report.table(
        ["topic"] + [f"pivot {i}" for i in shown],
        [[k] + row for k, row in enumerate(read["top_words"])],
        caption="Top words of every topic at the endpoints (first and last column) and two "
        "interior pivots of the NEB path, topics aligned across columns.",
    )
    if "coherence" in m:
        _render_coherence(report, rundir, m["coherence"], unit)
    else:
        report.paragraph("This run predates topic coherence along the path; run it again.")

    # Sweeps.
    sw = m["sweeps"]
    fig, axes = plots.new_figure(width=15, height=4, ncols=3)
    for ax, (name, label) in zip(
        axes,
        (("lr", "learning rate"), ("pivots", "pivots N"), ("spring", "spring constant k")),
        strict=True,
    ):
        for value in sw[name]:
            h = arr[f"sweep_{name}_{value}_bottleneck"] / tokens
            ax.plot(np.arange(h.shape[0]), h, label=f"{label} {value}")
        ax.set_xlabel("NEB iteration")
        ax.set_ylabel("lowest pivot " + unit)
        ax.legend(frameon=False, fontsize=8)
    report.figure(
        rundir.save_figure(fig, "sweeps"),
        f"NEB (profile mode, {cfg['sweep_steps']} iterations each) for the paper's learning "
        "rates, numbers of pivots and spring constants: the lowest pivot's ELBO per token by "
        "iteration. Steps are capped and halved when a trial point is not finite, so no "
        "learning rate produced NaN.",
    )
    report.table(
        ["sweep", "value", "NEB barrier (nats)", "step halvings", "segment length max/min"],
        [
            [name, value, f"{p['barrier']:,.1f}", p["halvings"], f"{p['spacing_ratio']:.2f}"]
            for name in ("lr", "pivots", "spring")
            for value, p in sw[name].items()
        ],
        caption="Sweep results: final barrier of each NEB run and how evenly its pivots "
        "are spaced.",
    )
    ks = [int(k) for k in sw["topics"]]
    pts = [sw["topics"][str(k)] for k in ks]
    fig, axes = plots.new_figure(width=11, height=4, ncols=2)
    plots.line_plot(
        axes[0],
        ks,
        {
            "straight line (aligned)": [p["barrier_linear"] / tokens for p in pts],
            "NEB": [p["barrier_neb"] / tokens for p in pts],
        },
        xlabel="number of topics K",
        ylabel="barrier (nats per token)",
        marker="o",
    )
    plots.line_plot(
        axes[1],
        ks,
        {
            "maximum a": [p["heldout_per_token_a"] for p in pts],
            "maximum b": [p["heldout_per_token_b"] for p in pts],
        },
        xlabel="number of topics K",
        ylabel="held-out log-likelihood per token (nats)",
        marker="o",
    )
    report.figure(
        rundir.save_figure(fig, "sweep_topics"),
        f"Against K ({cfg['sweep_restarts']} restarts per K, NEB {cfg['sweep_steps']} "
        "iterations): the aligned straight line's and NEB's barrier per training token (left), "
        "and the test documents' completion log-likelihood per held-out token at both maxima "
        "(right).",
    )
    _render_polish(report, rundir, m["polish"], tokens)
    report.heading("All metrics")
    report.metrics({k: v for k, v in m.items() if k not in ("reading", "sweeps")})
    return report


_PATH_LABELS = {
    "neb_profile": "NEB (profile)",
    "autoneb": "AutoNEB (profile)",
    "bezier": "Bezier (profile)",
    "neb_full": "NEB (full)",
}


def _render_coherence(report, rundir, coh: dict, unit: str) -> None:
    """Mean topic coherence against position along the NEB path and the straight line,
    beside the ELBO at the same pivots."""
    from ...report import plots

    fig, axes = plots.new_figure(width=15, height=4, ncols=3)
    pos = np.linspace(0, 1, len(coh["neb"]["elbo_per_token"]))
    for ax, key, label in (
        (axes[0], "elbo_per_token", unit),
        (axes[1], "umass_mean", "mean UMass over the topics"),
        (axes[2], "npmi_mean", "mean NPMI over the topics"),
    ):
        ax.plot(pos, coh["neb"][key], "o-", label="NEB path (pivots)")
        ax.plot(pos, coh["linear"][key], "s--", label="straight line")
        ax.set_xlabel("pivot position (fraction of the pivot index)")
        ax.set_ylabel(label)
        ax.legend(frameon=False)
    report.figure(
        rundir.save_figure(fig, "coherence_along_path"),
        f"Topic coherence along the path, beside the ELBO (left): at every pivot, the mean "
        f"over the topics of the coherence of their {coh['top_n']} top words in the training "
        "documents, UMass (Mimno et al. 2011, +1 co-document smoothing; about 0 at best) and NPMI "
        "(Bouma 2009; Roeder et al. 2015; -1 never together, 0 independent, 1 always "
        "together). Higher is more coherent for both.",
    )
    rows = [
        [i]
        + [
            f"{coh[path][key][i]:.3f}"
            for path in ("neb", "linear")
            for key in ("umass_mean", "npmi_mean")
        ]
        + [f"{coh['neb']['elbo_per_token'][i]:.4f}"]
        for i in range(len(pos))
    ]
    report.table(
        ["pivot", "NEB: UMass", "NEB: NPMI", "line: UMass", "line: NPMI", "NEB: ELBO / token"],
        rows,
        caption="Mean coherence of the topics at every pivot of the NEB path and of the "
        "straight line, and the NEB pivot's ELBO per token (nats).",
    )


def _render_polish(report, rundir, pol: dict, tokens: int) -> None:
    """Maxima found from paths: a table per path, a table per pair and a figure."""
    from ...report import plots

    report.heading("Maxima found from paths")
    report.paragraph(
        "From the highest point of each optimized path, CAVI ran to convergence (same "
        "tolerance as the fits). The maximum it reached is scored with the profile ELBO, as "
        "the endpoints are, and compared with both endpoints after Hungarian alignment: it "
        f"is called an endpoint when its mean matched Hellinger distance to it is at most "
        f"{pol['same_max']:g}, else new. Held-out: document completion on the test "
        "documents (nats per held-out token, higher is better)."
    )
    paths = pol["paths"]
    report.table(
        [
            "path",
            "peak - better end (nats)",
            "polished - better end (nats)",
            "CAVI iter.",
            "is",
            "H to a",
            "H to b",
            "held-out a / b / polished",
        ],
        [
            [
                _PATH_LABELS[name],
                f"{r['peak_value'] - max(r['elbo_a'], r['elbo_b']):,.1f}",
                f"{r['gain']:,.1f}",
                r["n_iter"],
                r["identity"],
                f"{r['distance_a']:.3f}",
                f"{r['distance_b']:.3f}",
                " / ".join(f"{r['heldout_per_token'][k]:.4f}" for k in ("a", "b", "polished")),
            ]
            for name, r in paths.items()
        ],
        caption="The chosen pair: each path's highest point (in its own mode's ELBO) and the "
        "maximum CAVI reached from there, both relative to the better endpoint; H = mean "
        "matched Hellinger distance of the topics.",
    )
    rows = pol["pairs"]
    report.table(
        [
            "pair (a, b)",
            "path steps",
            "polished - better end (nats)",
            "polished - best fitted restart (nats)",
            "is",
            "best restart - better end (nats)",
            "restarts (iterations)",
            "held-out polished / best restart",
            "seconds: path, polish, restarts",
            "path cost (CAVI iterations)",
        ],
        [
            [
                f"{r['a']}, {r['b']}",
                r["path"]["steps"],
                f"{r['polished']['gain']:,.1f}",
                f"{r['gain_over_best_fitted_restart']:,.1f}",
                r["polished"]["identity"],
                f"{r['baseline']['elbo'] - _best_end(r):,.1f}",
                f"{len(r['baseline']['elbos'])} ({sum(r['baseline']['n_iters'])})",
                f"{r['polished']['heldout_per_token']['polished']:.4f} / "
                f"{r['baseline']['heldout_per_token']:.4f}",
                f"{r['path']['wall_seconds']:.0f}, {r['polished']['wall_seconds']:.0f}, "
                f"{r['baseline']['wall_seconds']:.0f}",
                f"{r['path']['timings']['cavi_iterations_equivalent']:.0f}",
            ]
            for r in rows
        ],
        caption="Polish from the NEB path (profile mode) against random restarts given the "
        "same number of CAVI iterations, per pair of restarts. The path's own cost (first "
        "pair: the NEB above) is not charged to the polish, which favours it; the last "
        "column gives that cost as CAVI iterations of the fits (wall time / "
        f"{pol['timings']['cavi_iteration_seconds']:.2f} s), and the fitted restarts "
        f"({pol['fitted_restarts_iterations']} iterations in all) are a second yardstick.",
    )
    fig, ax = plots.new_figure(width=7, height=4)
    for i, r in enumerate(rows):
        best = _best_end(r)
        worse = min(r["polished"]["elbo_a"], r["polished"]["elbo_b"])
        ax.plot([i, i], [0, (worse - best) / tokens], "k_", ms=14)
        ax.plot(i - 0.1, r["path"]["peak_value"] / tokens - best / tokens, "^", color="C0")
        ax.plot(i, r["polished"]["gain"] / tokens, "o", color="C1")
        restarts = (np.asarray(r["baseline"]["elbos"]) - best) / tokens
        ax.plot(np.full(restarts.shape, i + 0.1), restarts, "x", color="C2")
    ax.plot([], [], "k_", label="endpoints a, b")
    ax.plot([], [], "^", color="C0", label="path's highest point")
    ax.plot([], [], "o", color="C1", label="CAVI from there")
    ax.plot([], [], "x", color="C2", label="random restarts (same iterations)")
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_xticks(range(len(rows)), [f"{r['a']}, {r['b']}" for r in rows])
    ax.set_xlabel("pair of restarts (a, b)")
    ax.set_ylabel("ELBO per token - better endpoint's (nats)")
    ax.legend(frameon=False, fontsize=8)
    report.figure(
        rundir.save_figure(fig, "polish"),
        "Per pair of restarts, relative to the better endpoint's ELBO per training token: "
        "both endpoints, the highest point of the NEB path, the maximum CAVI reached from it, "
        "and every random restart of the equal-iteration baseline.",
    )


def _best_end(row: dict) -> float:
    return max(row["polished"]["elbo_a"], row["polished"]["elbo_b"])


def _ylim(curves) -> tuple[float, float]:
    """Y range that shows the given curves (the unaligned line may fall far below them)."""
    lo = min(float(np.min(c)) for c in curves)
    hi = max(float(np.max(c)) for c in curves)
    pad = 0.1 * (hi - lo) or 1e-3
    return lo - pad, hi + pad
