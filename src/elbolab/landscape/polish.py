"""Maxima found from paths: CAVI from a point between two LDA maxima, against restarts.

A maximum-ELBO path between two CAVI maxima of LDA can rise above both of them (the
``landscape`` study measured rises of thousands of nats on AP). Li & Wei ("Analysis of
ELBO loss landscape", Sec. 5) suggest that the path method may therefore be a way to find
new local maxima. :func:`polish` tests that for one pair of solutions: it runs batch
CAVI to convergence from the topics of a given point (the path's highest point, say),
scores the maximum it reaches with the same profile ELBO as the endpoints, and tells by
label alignment (:func:`elbolab.landscape.align`) whether it is endpoint a, endpoint b
or a maximum of its own. :func:`restart_baseline` is the honest comparison: the same
number of CAVI iterations spent on fresh random restarts instead.

All ELBOs are the profile ELBO of :class:`~elbolab.landscape.LDAObjective` (every
document's gamma and phi re-optimized by the E-step at the topics, every Dirichlet
normalizer included), in nats summed over the objective's documents, so a polished
maximum, a restart and the endpoints are compared on one scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from .. import checks
from ..errors import ConfigError
from ..models.lda import LDA
from .align import align
from .lda_objective import LDAObjective

if TYPE_CHECKING:
    from .._types import ArrayOrTensor, Counts

__all__ = ["Baseline", "Polished", "polish", "restart_baseline"]


@dataclass(frozen=True)
class Polished:
    """The maximum CAVI reached from one starting point, compared with a pair of maxima.

    lam : (K, V) topics of the maximum reached.
    elbo, elbo_start, elbo_a, elbo_b : profile ELBO (nats) of the maximum, of the starting
        topics and of the endpoints a and b.
    gain : ``elbo - max(elbo_a, elbo_b)``, nats (positive: higher than both endpoints).
    n_iter : CAVI iterations run; converged : whether the relative gain fell below tol.
    distance_a, distance_b : mean matched Hellinger distance of the maximum's topics to
        a's and to b's after Hungarian alignment (0 for a label-switched copy).
    identity : ``"a"``, ``"b"`` or ``"new"``: the endpoint within ``same_max`` (the closer
        one if both are), else new.
    heldout_per_token : dict with the document-completion log-likelihood per held-out
        token (nats) of ``"a"``, ``"b"`` and ``"polished"``; empty without test data.
    """

    lam: np.ndarray
    elbo: float
    elbo_start: float
    elbo_a: float
    elbo_b: float
    gain: float
    n_iter: int
    converged: bool
    distance_a: float
    distance_b: float
    identity: str
    heldout_per_token: dict

    def summary(self) -> dict:
        """Plain-Python numbers for ``metrics.json`` (no topics)."""
        return {
            "elbo": self.elbo,
            "elbo_start": self.elbo_start,
            "elbo_a": self.elbo_a,
            "elbo_b": self.elbo_b,
            "gain": self.gain,
            "n_iter": self.n_iter,
            "converged": self.converged,
            "distance_a": self.distance_a,
            "distance_b": self.distance_b,
            "identity": self.identity,
            "heldout_per_token": dict(self.heldout_per_token),
        }


@dataclass(frozen=True)
class Baseline:
    """Random restarts run one after another until a CAVI iteration budget is spent.

    lam : (K, V) topics of the best restart.
    elbos : profile ELBO (nats) of every restart, in the order run.
    n_iters : CAVI iterations of every restart (they sum to the budget).
    converged : per restart; the last one may have been cut short by the budget.
    best : index of the best restart; elbo : its ELBO.
    distance_a, distance_b, identity : the best restart against the pair, as in
        :class:`Polished`.
    heldout_per_token : completion score (nats per held-out token) of the best restart,
        None without test data.
    """

    lam: np.ndarray
    elbos: list
    n_iters: list
    converged: list
    best: int
    elbo: float
    distance_a: float
    distance_b: float
    identity: str
    heldout_per_token: float | None

    def summary(self) -> dict:
        """Plain-Python numbers for ``metrics.json`` (no topics)."""
        return {
            "elbos": list(self.elbos),
            "n_iters": list(self.n_iters),
            "converged": list(self.converged),
            "best": self.best,
            "elbo": self.elbo,
            "distance_a": self.distance_a,
            "distance_b": self.distance_b,
            "identity": self.identity,
            "heldout_per_token": self.heldout_per_token,
        }


# --------------------------------------------------------------------------- checks


def _check_objective(objective) -> LDAObjective:
    if not isinstance(objective, LDAObjective):
        raise ConfigError(f"objective must be an LDAObjective, got {type(objective).__name__}")
    if objective.mode != "profile":
        # The endpoints, the start and the result must all be scored with gamma and phi
        # optimal for their topics; full mode would score a point's own locals instead.
        raise ConfigError(f"objective must be in profile mode, got mode={objective.mode!r}")
    return objective


def _check_topics(objective: LDAObjective, lam, name: str) -> np.ndarray:
    lam = np.asarray(lam.detach().cpu() if isinstance(lam, torch.Tensor) else lam)
    want = (objective.n_topics, objective.n_words)
    if lam.shape != want:
        raise ConfigError(f"{name} must have shape (K, V) = {want}, got {lam.shape}")
    if not np.issubdtype(lam.dtype, np.number) or np.iscomplexobj(lam):
        raise ConfigError(f"{name} must be a real array, got dtype {lam.dtype}")
    lam = lam.astype(np.float64)
    if not np.all(np.isfinite(lam)):
        raise ConfigError(f"{name} has NaN or infinite entries")
    if not np.all(lam > 0):
        raise ConfigError(f"{name} must be positive (Dirichlet parameters lambda)")
    return lam


def _check_test(observed, heldout) -> bool:
    if (observed is None) != (heldout is None):
        raise ConfigError("observed and heldout must be given together (or neither)")
    return observed is not None


def _cavi(objective: LDAObjective, max_iter: int, tol: float, seed: int = 0) -> LDA:
    # The same CAVI and E-step settings as the objective, so "converged" means what it
    # means for the fits the endpoints came from.
    return LDA(
        n_topics=objective.n_topics,
        alpha=objective.alpha,
        eta=objective.eta,
        max_iter=max_iter,
        tol=tol,
        n_restarts=1,
        seed=seed,
        e_step_tol=objective.e_step_tol,
        max_e_step_iter=objective.max_e_step_iter,
    )


def _profile(objective: LDAObjective, lams: list[np.ndarray]) -> np.ndarray:
    with torch.no_grad():
        x = torch.stack([objective.to_vector(lam) for lam in lams])
        return objective(x).numpy()


def _identify(lam, lam_a, lam_b, same_max: float) -> tuple[float, float, str]:
    da = float(align(lam_a, lam)[1].mean())
    db = float(align(lam_b, lam)[1].mean())
    if min(da, db) <= same_max:
        return da, db, "a" if da <= db else "b"
    return da, db, "new"


def _heldout(objective, lams, observed, heldout) -> np.ndarray:
    x = torch.stack([objective.to_vector(lam) for lam in lams])
    return objective.heldout_scores(x, observed, heldout)["per_token"]


# --------------------------------------------------------------------------- API


def polish(
    objective: LDAObjective,
    lam_start: ArrayOrTensor,
    lam_a: ArrayOrTensor,
    lam_b: ArrayOrTensor,
    *,
    max_iter: int = 1000,
    tol: float = 1e-6,
    same_max: float = 0.01,
    observed: Counts | None = None,
    heldout: Counts | None = None,
) -> Polished:
    """Run CAVI to convergence from ``lam_start`` and compare the maximum with a and b.

    Parameters
    ----------
    objective : LDAObjective
        Profile mode; its corpus, K, alpha, eta and E-step settings are the fit's.
    lam_start : (K, V) array or tensor
        Topics lambda to start from (e.g. the highest point of a path from a to b). CAVI
        starts with an E-step at these topics, as a fit from given topics does.
    lam_a, lam_b : (K, V) array or tensor
        The two maxima (topic labels need not be aligned: the comparison aligns).
    max_iter, tol : int, float
        CAVI stops after ``max_iter`` iterations or when the relative ELBO gain of one
        iteration falls below ``tol`` (as :class:`~elbolab.models.lda.LDA`).
    same_max : float
        Largest mean matched Hellinger distance (in [0, 1]) at which the maximum counts as
        the same maximum as an endpoint.
    observed, heldout : Corpus or sparse (D', V), optional
        Two parts of test documents: document-completion scores of a, b and the result.

    Returns
    -------
    Polished
    """
    objective = _check_objective(objective)
    start = _check_topics(objective, lam_start, "lam_start")
    lam_a = _check_topics(objective, lam_a, "lam_a")
    lam_b = _check_topics(objective, lam_b, "lam_b")
    max_iter = checks.integer(max_iter, "max_iter", 1)
    tol = checks.positive(tol, "tol", allow_zero=True)
    same_max = checks.number(same_max, "same_max", minimum=0.0, maximum=1.0, open_min=True)
    test = _check_test(observed, heldout)

    model = _cavi(objective, max_iter, tol)
    model.fit(objective.X, state=model.initial_state(objective.X, lam=start[None]))
    lam = model.components_
    elbo, elbo_start, elbo_a, elbo_b = (
        float(v) for v in _profile(objective, [lam, start, lam_a, lam_b])
    )
    da, db, identity = _identify(lam, lam_a, lam_b, same_max)
    scores = {}
    if test:
        scores = dict(
            zip(
                ("a", "b", "polished"),
                map(float, _heldout(objective, [lam_a, lam_b, lam], observed, heldout)),
                strict=True,
            )
        )
    return Polished(
        lam=lam,
        elbo=elbo,
        elbo_start=elbo_start,
        elbo_a=elbo_a,
        elbo_b=elbo_b,
        gain=elbo - max(elbo_a, elbo_b),
        n_iter=int(model.n_iter_),
        converged=bool(model.n_iter_ < max_iter),
        distance_a=da,
        distance_b=db,
        identity=identity,
        heldout_per_token=scores,
    )


def restart_baseline(
    objective: LDAObjective,
    budget: int,
    lam_a: ArrayOrTensor,
    lam_b: ArrayOrTensor,
    *,
    seed: int = 0,
    first_restart: int = 0,
    max_iter: int = 1000,
    tol: float = 1e-6,
    same_max: float = 0.01,
    observed: Counts | None = None,
    heldout: Counts | None = None,
) -> Baseline:
    """Spend ``budget`` CAVI iterations on random restarts, one after another.

    Restart ``r = first_restart, first_restart + 1, ...`` starts from the topics
    ``LDA(seed=seed)`` draws for restart r (``numpy.random.default_rng([seed, r])``)
    and runs to convergence or until the budget is spent, so the last restart may stop
    early. Choose ``first_restart`` past the restarts that produced a and b, so the
    baseline does not rerun them.

    Parameters
    ----------
    objective : LDAObjective
        Profile mode, as for :func:`polish`.
    budget : int
        Total CAVI iterations, e.g. the ``n_iter`` of a :func:`polish` to compare with.
    lam_a, lam_b : (K, V) array or tensor
        The pair the best restart is compared with.
    seed, first_restart : int
        Which random topics the restarts start from.
    max_iter, tol, same_max, observed, heldout
        As :func:`polish`.

    Returns
    -------
    Baseline
    """
    objective = _check_objective(objective)
    budget = checks.integer(budget, "budget", 1)
    lam_a = _check_topics(objective, lam_a, "lam_a")
    lam_b = _check_topics(objective, lam_b, "lam_b")
    seed = checks.integer(seed, "seed", 0)
    first_restart = checks.integer(first_restart, "first_restart", 0)
    max_iter = checks.integer(max_iter, "max_iter", 1)
    tol = checks.positive(tol, "tol", allow_zero=True)
    same_max = checks.number(same_max, "same_max", minimum=0.0, maximum=1.0, open_min=True)
    test = _check_test(observed, heldout)

    lams, n_iters, converged = [], [], []
    left, r = budget, first_restart
    while left > 0:
        cap = min(max_iter, left)
        model = _cavi(objective, cap, tol, seed)
        model.fit(objective.X, state=model.initial_state(objective.X, restarts=[r]))
        lams.append(model.components_)
        n_iters.append(int(model.n_iter_))
        # Cut short by the budget (not by max_iter) counts as not converged too.
        converged.append(bool(model.n_iter_ < cap))
        left -= model.n_iter_
        r += 1
    elbos = _profile(objective, lams)
    best = int(np.argmax(elbos))
    da, db, identity = _identify(lams[best], lam_a, lam_b, same_max)
    score = float(_heldout(objective, [lams[best]], observed, heldout)[0]) if test else None
    return Baseline(
        lam=lams[best],
        elbos=[float(v) for v in elbos],
        n_iters=n_iters,
        converged=converged,
        best=best,
        elbo=float(elbos[best]),
        distance_a=da,
        distance_b=db,
        identity=identity,
        heldout_per_token=score,
    )
