"""Settings of the ``landscape`` study: :class:`Config` (flat fields, the CLI's ``--set``
keys) and its named :data:`PRESETS`."""

from __future__ import annotations

from dataclasses import dataclass

from ... import checks
from ...errors import ConfigError


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
            "sweep_steps",
            "sweep_max_iter",
            "polish_pairs",
            "polish_steps",
            "train_score_docs",
        ):
            checks.integer(getattr(self, name), name, 1)
        for name in ("restarts", "sweep_restarts"):  # a path needs two maxima
            checks.integer(getattr(self, name), name, 2)
        if self.polish_pairs > self.restarts * (self.restarts - 1) // 2:
            raise ConfigError(
                f"polish_pairs = {self.polish_pairs} needs more restarts: {self.restarts} "
                f"restarts make {self.restarts * (self.restarts - 1) // 2} pairs"
            )
        # Pivots include both endpoints.
        checks.integer(self.n_pivots, "n_pivots", 3)
        checks.integer(self.full_pivots, "full_pivots", 3)
        checks.integers(self.sweep_pivots, "sweep_pivots", 3, allow_empty=True)
        checks.integer(self.plane_points, "plane_points", 2)
        checks.integer(self.top_words, "top_words", 2)  # coherence scores pairs of top words
        checks.integer(self.bezier_degree, "bezier_degree", 2)
        checks.integers(self.sweep_topics, "sweep_topics", 1, allow_empty=True)
        for name in ("alpha", "eta"):
            value = getattr(self, name)
            if value is not None:
                # The LDA models' own bound (checks.MAX_CONCENTRATION): refused here, at
                # --set time, not mid-run. ConfigError naming the setting.
                checks.concentration(value, name)
        for name in ("tol", "neb_lr", "full_lr"):
            checks.positive(getattr(self, name), name)
        for lr in self.sweep_lrs:
            checks.positive(lr, "sweep_lrs")
        checks.positive(self.spring, "spring", allow_zero=True)
        for spring in self.sweep_springs:
            checks.positive(spring, "sweep_springs", allow_zero=True)
        checks.fraction(self.test_fraction, "test_fraction")
        checks.fraction(self.observed_fraction, "observed_fraction")
        if self.n_docs is not None:
            checks.integer(self.n_docs, "n_docs", 10)


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
