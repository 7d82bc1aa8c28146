"""Latent Dirichlet allocation fitted by batch coordinate-ascent variational inference.

Model (Blei, Ng & Jordan 2003, with a Dirichlet prior on the topics as in
Hoffman, Blei & Bach 2010)::

    beta_k ~ Dir(eta)            k = 1..K      topics over V words
    theta_d ~ Dir(alpha)         d = 1..D      topic proportions
    z_dn ~ Cat(theta_d),  w_dn ~ Cat(beta_{z_dn})

Mean-field family q(beta_k) = Dir(lambda_k), q(theta_d) = Dir(gamma_d),
q(z_dn) = Cat(phi_dwn). The ELBO reported everywhere is the full bound in nats with
every Dirichlet normalizer, evaluated at the phi that is optimal for the current
(gamma, lambda); phi then drops out in closed form::

    ELBO = sum_{d,w} n_dw log sum_k exp(E[log theta_dk] + E[log beta_kw])
         + sum_d  (E[log p(theta_d | alpha)] - E[log q(theta_d | gamma_d)])
         + sum_k  (E[log p(beta_k | eta)]   - E[log q(beta_k | lambda_k)])

This is the same quantity as scikit-learn's ``LatentDirichletAllocation._approx_bound``
(without subsampling).

The E-step, the bound's terms and the M-step statistics run in compiled kernels
(``_lda_kernels``, shared with :class:`elbolab.landscape.LDAObjective`), parallel over
(restart, document) or (restart, word) pairs, so a fit with R restarts is one batched
computation, not R fits one after another, and there is no Python loop over documents.

Monotone ELBO. Each E-step starts every document afresh from gamma = alpha + N_d/K
(Blei et al. 2003, Fig. 6), as scikit-learn and Hoffman's code restart from random
gammas, rather than from last iteration's gamma: from a warm start each sweep moves
gamma so little that the stopping rule fires after a sweep or two while gamma still
lags the topics (in our measurement on AP, K=10, 50 iterations ended 0.23
nats/token lower). A fresh E-step capped at ``max_e_step_iter`` sweeps can in
principle end below the previous gamma by more than the M-step gains; when an
iteration would lower a restart's ELBO it is redone with each document keeping the
better of its fresh and previous gamma, which cannot lower it (coordinate ascent),
so the history never decreases by construction, not just in practice. (Always
keeping the per-document better gamma ended 0.004-0.010 nats/token lower on AP:
documents caught early in a poor configuration stay there.)
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
import torch

from .. import checks
from ..data.corpus import Corpus
from ..errors import ConfigError, DataError, NumericalError
from ..files import atomic_write
from . import _lda_kernels as kernels

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from .._types import Counts

__all__ = [
    "LDA",
    "LDAState",
    "Restart",
    "dirichlet_expectation",
    "elbo",
    "map_vocabulary",
    "pad_vocabulary",
]

# A saved LDA model (:meth:`LDA.save`): its ``settings`` entry names this format and
# version; a file of another version is refused rather than misread.
MODEL_FORMAT = "elbolab-lda"
MODEL_VERSION = 1
# The constructor parameters, stored so that a loaded model transforms as the saved one.
_PARAMS = (
    "n_topics",
    "alpha",
    "eta",
    "max_iter",
    "tol",
    "n_restarts",
    "seed",
    "e_step_tol",
    "max_e_step_iter",
)
_FITTED = ("alpha_", "eta_", "n_iter_", "elbo_")


def dirichlet_expectation(alpha: torch.Tensor) -> torch.Tensor:
    """E[log x] under Dir(alpha), along the last axis.

    Parameters
    ----------
    alpha : (..., K) tensor of positive concentrations.

    Returns
    -------
    (..., K) tensor ``digamma(alpha_k) - digamma(sum_j alpha_j)``.
    """
    return torch.digamma(alpha) - torch.digamma(alpha.sum(-1, keepdim=True))


def _dirichlet_kl_term(prior: float, post: torch.Tensor, elog: torch.Tensor) -> torch.Tensor:
    """E_q[log Dir(x | prior)] - E_q[log Dir(x | post)], summed over the last two axes.

    ``post`` is (R, M, K): M Dirichlets over K categories per restart; ``elog`` their
    E[log x]. Returns (R,). The symmetric prior's normalizer is included.
    """
    k = post.shape[-1]
    per_row = (
        ((prior - post) * elog).sum(-1)
        + math.lgamma(k * prior)
        - k * math.lgamma(prior)
        - torch.lgamma(post.sum(-1))
        + torch.lgamma(post).sum(-1)
    )
    return per_row.sum(-1)


def _as_csr(X, name: str = "X") -> sp.csr_matrix:
    """Accept a Corpus (anything with ``.counts``) or a scipy sparse / dense count matrix.

    Returns a float64 CSR copy (never the caller's matrix); refuses with DataError naming
    ``name`` anything else: None, no documents or words, or what
    :func:`elbolab.checks.count_matrix` refuses (not 2-D, counts that are not
    non-negative integers up to 2**53 in total).
    """
    X = getattr(X, "counts", X)
    if X is None:
        raise DataError(f"{name} must be a Corpus or a (D, V) count matrix, got None")
    mat = checks.count_matrix(X, name)
    if mat.shape[0] == 0:
        raise DataError(f"{name}: the corpus has no documents")
    if mat.shape[1] == 0:
        raise DataError(f"{name}: the corpus has no words (V = 0)")
    return mat.astype(np.float64)


def elbo(X, lam: torch.Tensor, gamma: torch.Tensor, alpha: float, eta: float) -> torch.Tensor:
    """The full LDA ELBO in nats at the phi that is optimal for (gamma, lambda).

    A differentiable (torch) reference implementation for gradients and tests; the
    fitting code computes the same quantity with compiled kernels.

    Parameters
    ----------
    X : Corpus or sparse (D, V) counts.
    lam : (R, K, V) topic Dirichlet parameters lambda.
    gamma : (R, D, K) document Dirichlet parameters gamma.
    alpha, eta : symmetric Dirichlet priors on theta and beta.

    Returns
    -------
    (R,) tensor, the ELBO of each of the R parameter sets, summed over documents.
    """
    coo = _as_csr(X).tocoo()
    rows, cols = (
        torch.from_numpy(coo.row.astype(np.int64)),
        torch.from_numpy(coo.col.astype(np.int64)),
    )
    counts = torch.from_numpy(coo.data).to(lam.dtype)
    elog_beta = dirichlet_expectation(lam)
    elog_theta = dirichlet_expectation(gamma)
    pair = elog_theta[:, rows, :] + elog_beta.transpose(1, 2)[:, cols, :]
    words = (counts * torch.logsumexp(pair, -1)).sum(-1)
    return (
        words
        + _dirichlet_kl_term(alpha, gamma, elog_theta)
        + _dirichlet_kl_term(eta, lam, elog_beta)
    )


def _topics(lam: np.ndarray, eta: float) -> tuple[np.ndarray, np.ndarray]:
    """What the topics contribute, from lambda (R, K, V) alone.

    Returns exp(E[log beta]) word-major (R, V, K) for the kernels, and the topic part
    of the ELBO, E[log p(beta | eta)] - E[log q(beta | lambda)] per restart (R,), with
    the symmetric Dirichlet's normalizer.
    """
    lam = np.ascontiguousarray(lam, dtype=np.float64)
    beta = np.empty((lam.shape[0], lam.shape[2], lam.shape[1]))
    term = kernels.topic_terms(lam, eta, beta, True)
    return beta, term


def _columns(X: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The non-zeros of X word by word, for kernels that write one word's entries per job.

    Returns (col_ptr (V + 1,), col_docs (nnz,), col_pos (nnz,)): the non-zeros of word w
    are ``col_ptr[w]:col_ptr[w + 1]``, with their documents and their places in X's CSR
    arrays.
    """
    rows = np.repeat(np.arange(X.shape[0], dtype=np.int64), np.diff(X.indptr))
    cols = X.indices.astype(np.int64)
    order = np.argsort(cols, kind="stable").astype(np.int64)
    col_ptr = np.concatenate([[0], np.cumsum(np.bincount(cols, minlength=X.shape[1]))])
    return col_ptr.astype(np.int64), rows[order], order


def _check_bound(bound: np.ndarray, X: sp.csr_matrix, where: str) -> None:
    """The ELBO bounds log p(words) <= 0 of discrete data: a value above 0 (beyond
    rounding) or a non-finite one is a numerical failure, not a result."""
    slack = 1e-9 * max(1.0, float(X.data.sum()))
    if not np.all(np.isfinite(bound)) or np.any(bound > slack):
        raise NumericalError(
            f"{where}: the ELBO came out as {np.max(bound):.6g} nats, impossible for discrete "
            "data (it bounds a log-probability <= 0); the counts, alpha or eta are too large "
            "for float64"
        )


@dataclass
class Restart:
    """One restart's optimum.

    elbo : final ELBO (nats); history : (n_iter,) ELBO after each of its iterations;
    components : lambda (K, V); gamma : (D, K); index : r, the restart's topics
    started from ``numpy.random.default_rng([seed, r])`` (unless given a state).
    """

    elbo: float
    history: np.ndarray
    components: np.ndarray
    gamma: np.ndarray
    index: int


@dataclass
class LDAState:
    """Everything needed to continue a fit exactly where it stopped (for checkpoints).

    lam : (R, K, V); gamma : (R, D, K); history : (n_iter, R) ELBO after each
    iteration (a converged restart's last value repeats); n_iter : (R,) iterations
    each restart ran before it converged or the batch stopped.
    """

    lam: np.ndarray
    gamma: np.ndarray
    history: np.ndarray
    n_iter: np.ndarray
    converged: np.ndarray


class LDA:
    """LDA by batch CAVI, scikit-learn style, with batched restarts.

    Parameters
    ----------
    n_topics : int
        K, the number of topics.
    alpha, eta : float, optional
        Symmetric Dirichlet priors on document proportions theta and topics beta;
        default 1 / n_topics each (as scikit-learn).
    max_iter : int
        Maximum number of outer (E-step + M-step) iterations.
    tol : float
        Stop when every restart's relative ELBO gain over one iteration is below tol.
    n_restarts : int
        Independent random initializations, fitted together as one batch.
    seed : int
        Restart r's topics start from ``numpy.random.default_rng([seed, r])``, so a
        restart's result does not depend on how many others run beside it.
    e_step_tol : float
        A document's E-step stops when the mean absolute change of its gamma is below
        this (scikit-learn's ``mean_change_tol``, same default).
    max_e_step_iter : int
        Cap on E-step sweeps per document and iteration (scikit-learn's
        ``max_doc_update_iter``, same default).

    Attributes
    ----------
    components_ : (K, V) ndarray
        lambda of the best restart.
    gamma_ : (D, K) ndarray
        gamma of the training documents under the best restart.
    elbo_ : float
        The best restart's ELBO in nats (all normalizers included).
    history_ : (n_iter_,) ndarray
        The best restart's ELBO after each iteration.
    n_iter_ : int
        Iterations the batch ran (the longest-running restart's count).
    restarts_ : list of Restart
        One per restart in seed order.
    best_ : int
        Index of the best restart in ``restarts_``.
    vocab_ : list of str or None
        The vocabulary a loaded model was saved with (:meth:`load`); None when it was
        saved without one.

    Notes
    -----
    A fitted model is saved with :meth:`save` and read back with :meth:`load`: the
    best restart's topics, priors and settings, enough for :meth:`transform`,
    :meth:`score` and document completion (not the per-restart results).

    References
    ----------
    Blei, Ng & Jordan (2003), Latent Dirichlet Allocation, JMLR 3.
    Hoffman, Blei & Bach (2010), Online Learning for Latent Dirichlet Allocation, NeurIPS.
    """

    def __init__(
        self,
        n_topics: int = 10,
        alpha: float | None = None,
        eta: float | None = None,
        max_iter: int = 100,
        tol: float = 1e-6,
        n_restarts: int = 1,
        seed: int = 0,
        e_step_tol: float = 1e-3,
        max_e_step_iter: int = 100,
    ):
        self.n_topics = n_topics
        self.alpha = alpha
        self.eta = eta
        self.max_iter = max_iter
        self.tol = tol
        self.n_restarts = n_restarts
        self.seed = seed
        self.e_step_tol = e_step_tol
        self.max_e_step_iter = max_e_step_iter

    def _priors(self) -> tuple[float, float]:
        k = checks.integer(self.n_topics, "n_topics", 1)
        alpha = 1.0 / k if self.alpha is None else checks.concentration(self.alpha, "alpha")
        eta = 1.0 / k if self.eta is None else checks.concentration(self.eta, "eta")
        for name in ("n_restarts", "max_iter", "max_e_step_iter"):
            checks.integer(getattr(self, name), name, 1)
        checks.positive(self.tol, "tol", allow_zero=True)
        checks.positive(self.e_step_tol, "e_step_tol")
        checks.integer(self.seed, "seed", 0)
        return alpha, eta

    # ------------------------------------------------------------------ core steps
    def _fresh_gamma(self, X: sp.csr_matrix, n_restarts: int, alpha: float) -> np.ndarray:
        """gamma_dk = alpha + N_d / K for every restart (Blei et al. 2003): (R, D, K)."""
        lengths = np.asarray(X.sum(1)).ravel()
        start = alpha + lengths[None, :, None] / self.n_topics
        # A real copy: broadcast_to gives a read-only view, which ascontiguousarray would
        # return as is when it already has the full shape (K = R = 1), and the E-step
        # writes gamma in place.
        return np.broadcast_to(start, (n_restarts, X.shape[0], self.n_topics)).copy()

    def _e_step(self, X, beta, gamma_start, alpha):
        kernels.e_step(
            X.indptr,
            X.indices,
            X.data,
            beta,
            gamma_start,
            alpha,
            self.e_step_tol,
            self.max_e_step_iter,
        )
        return gamma_start

    @staticmethod
    def _doc_scores(X, beta, gamma, alpha, ratio):
        """Per-document ELBO terms (R, D) under topics ``beta``; fills ``ratio`` (R, nnz)."""
        return kernels.doc_terms(X.indptr, X.indices, X.data, beta, gamma, alpha, ratio)

    def _iteration(self, X, columns, current, alpha, eta, keep_better):
        """One E-step and M-step for a subset of restarts (arrays indexed by restart).

        ``columns`` is ``_columns(X)``; ``current`` is (lam, gamma, beta, scores, ratio)
        of those restarts. The E-step
        starts afresh; with ``keep_better`` each document then keeps the better of its
        fresh and previous gamma, so the ELBO cannot decrease. Returns the new
        (lam, gamma, beta, scores, ratio, bound), bound (R,) the ELBO at the new topics.
        """
        lam, gamma, beta, scores, ratio = current
        n = lam.shape[0]
        fresh = self._e_step(X, beta, self._fresh_gamma(X, n, alpha), alpha)
        if keep_better:
            ratio_fresh = np.empty_like(ratio)
            better = self._doc_scores(X, beta, fresh, alpha, ratio_fresh) >= scores
            fresh = np.where(better[..., None], fresh, gamma)
        gamma = fresh
        ratio = np.empty_like(ratio)
        self._doc_scores(X, beta, gamma, alpha, ratio)
        # M-step: lambda_kw = eta + sum_d n_dw phi_dwk
        #       = eta + exp(E[log beta_kw]) sum_d (n_dw / phinorm_dw) exp(E[log theta_dk]).
        lam = np.empty_like(lam)
        kernels.sufficient_stats(*columns, ratio, gamma, beta, lam)
        lam += eta
        # The ELBO at the new topics, with phi optimal for them.
        beta, topic_term = _topics(lam, eta)
        scores = self._doc_scores(X, beta, gamma, alpha, ratio)
        return lam, gamma, beta, scores, ratio, scores.sum(1) + topic_term

    def initial_state(
        self,
        X: Counts | np.ndarray,
        lam: np.ndarray | None = None,
        restarts: Iterable[int] | None = None,
    ) -> LDAState:
        """The state a fit starts from: given topics ``lam`` (R, K, V) or random ones.

        Random topics have Gamma(100, 1/100) entries (as Hoffman's onlineldavb and
        scikit-learn), restart r drawn from ``numpy.random.default_rng([seed, r])``,
        for r in ``restarts`` (default ``range(n_restarts)``). Fitting restarts
        ``[r]`` alone gives restart r's result of the whole batch, so restarts can be
        fitted apart (on several workers) and joined with :meth:`merged`.
        Pass the result to :meth:`fit` to start several tools from the same topics.
        """
        alpha, _ = self._priors()
        X = _as_csr(X)
        if lam is None:
            lam = np.stack(
                [
                    np.random.default_rng([self.seed, r]).gamma(
                        100.0, 0.01, (self.n_topics, X.shape[1])
                    )
                    for r in (range(self.n_restarts) if restarts is None else restarts)
                ]
            )
        lam = np.array(lam, dtype=np.float64)
        R = lam.shape[0]
        return LDAState(
            lam=lam,
            gamma=self._fresh_gamma(X, R, alpha),
            history=np.zeros((0, R)),
            n_iter=np.zeros(R, dtype=np.int64),
            converged=np.zeros(R, dtype=bool),
        )

    def _check_state(self, state: LDAState, X: sp.csr_matrix) -> None:
        R = state.lam.shape[0] if state.lam.ndim == 3 else -1
        expected = {
            "lam": (state.lam.shape, (R, self.n_topics, X.shape[1])),
            "gamma": (state.gamma.shape, (R, X.shape[0], self.n_topics)),
            "history": (state.history.shape[1:], (R,)),
            "n_iter": (state.n_iter.shape, (R,)),
            "converged": (state.converged.shape, (R,)),
        }
        for name, (shape, want) in expected.items():
            if tuple(shape) != want:
                raise ConfigError(f"state.{name} has shape {tuple(shape)}, expected {want}")
        if not (np.all(state.lam > 0) and np.all(state.gamma > 0)):
            raise ConfigError("state.lam and state.gamma must be positive")

    # ------------------------------------------------------------------ public API
    def fit(
        self,
        X: Counts | np.ndarray,
        callback: Callable[[int, np.ndarray, LDAState], object] | None = None,
        state: LDAState | None = None,
    ) -> LDA:
        """Fit to a Corpus or a (docs x words) sparse count matrix.

        Restarts stop one by one: restart r stops when its relative ELBO gain over
        an iteration falls below ``tol`` (``tol=0`` runs ``max_iter`` iterations) and
        is left untouched after that, so its result is the same whether it runs alone
        or beside others.

        Parameters
        ----------
        X : Corpus or scipy sparse matrix (D, V) of non-negative integer counts.
        callback : callable, optional
            ``callback(iteration, elbo, state)`` after every iteration, with ``elbo``
            an (R,) array and ``state`` an :class:`LDAState` to checkpoint.
        state : LDAState, optional
            Continue from a checkpointed state, or start from :meth:`initial_state`;
            a continued fit ends with the same numbers as an uninterrupted one.
        """
        alpha, eta = self._priors()
        X = _as_csr(X)
        if state is None:
            state = self.initial_state(X)
        self._check_state(state, X)
        lam = np.array(state.lam, dtype=np.float64)
        gamma = np.array(state.gamma, dtype=np.float64)
        history = list(state.history)
        n_iter = np.array(state.n_iter)
        done = np.array(state.converged)

        beta, _ = _topics(lam, eta)
        # Per-document ELBO terms of the current gamma under the current topics, and
        # the M-step weights n_dw / phinorm_dw that go with them.
        ratio = np.empty((lam.shape[0], X.nnz))
        scores = self._doc_scores(X, beta, gamma, alpha, ratio)
        current = (lam, gamma, beta, scores, ratio)
        columns = _columns(X)
        while not done.all() and len(history) < self.max_iter:
            a = np.flatnonzero(~done)  # restarts still running
            step = self._iteration(
                X, columns, [x[a] for x in current], alpha, eta, keep_better=False
            )
            if history:
                # Rare: the capped fresh E-step lost more than the M-step gained. Redo
                # those restarts keeping each document's better gamma (never lower).
                worse = np.flatnonzero(step[-1] < history[-1][a])
                if worse.size:
                    redo = self._iteration(
                        X, columns, [x[a[worse]] for x in current], alpha, eta, keep_better=True
                    )
                    for new, fixed in zip(step, redo, strict=True):
                        new[worse] = fixed
            for array, new in zip(current, step, strict=False):
                array[a] = new
            bound = history[-1].copy() if history else np.full(lam.shape[0], -np.inf)
            previous = bound[a]
            bound[a] = step[-1]
            if not np.all(np.isfinite(bound[a])):
                raise NumericalError(f"LDA ELBO became non-finite at iteration {len(history) + 1}")
            n_iter[a] += 1
            if self.tol > 0:
                done[a] = (bound[a] - previous) / np.abs(bound[a]) < self.tol
            history.append(bound)
            if callback is not None:
                callback(
                    len(history),
                    bound,
                    LDAState(
                        lam.copy(), gamma.copy(), np.array(history), n_iter.copy(), done.copy()
                    ),
                )
        if not history:
            raise ConfigError("the state has no iterations yet but is marked converged")
        _check_bound(history[-1], X, "LDA.fit")
        self._set_result(lam, gamma, np.array(history), n_iter, alpha, eta)
        return self

    def _set_result(self, lam, gamma, history, n_iter, alpha, eta):
        restarts = [
            Restart(
                elbo=float(history[-1, r]),
                history=history[: n_iter[r], r].copy(),
                components=lam[r],
                gamma=gamma[r],
                index=r,
            )
            for r in range(lam.shape[0])
        ]
        self._adopt(restarts, len(history), alpha, eta)

    def _adopt(self, restarts: list[Restart], n_iter: int, alpha: float, eta: float):
        """Set the fitted attributes from finished restarts; the best one is chosen."""
        self.alpha_, self.eta_ = alpha, eta
        self.n_iter_ = n_iter
        self.restarts_ = restarts
        self.best_ = int(np.argmax([r.elbo for r in restarts]))
        best = restarts[self.best_]
        self.components_ = best.components
        self.gamma_ = best.gamma
        self.elbo_ = best.elbo
        self.history_ = best.history

    @classmethod
    def merged(cls, fits: list[LDA]) -> LDA:
        """One fitted LDA holding the restarts of ``fits`` (same settings and data), in
        order: what one batched fit of all of them gives, with ``n_iter_`` the longest
        run."""
        if isinstance(fits, LDA) or not isinstance(fits, (list, tuple)) or not fits:
            raise ConfigError("fits must be a non-empty list of fitted LDA models")
        for i, fit in enumerate(fits):
            if not isinstance(fit, LDA):
                raise ConfigError(f"fits[{i}] must be a fitted LDA, got {type(fit).__name__}")
            fit._check_fitted(f"LDA.merged: fits[{i}]")
        first = fits[0]
        for i, fit in enumerate(fits[1:], start=1):
            for what, mine, theirs in (
                ("n_topics", first.components_.shape[0], fit.components_.shape[0]),
                ("vocabulary size", first.components_.shape[1], fit.components_.shape[1]),
                ("number of documents", first.gamma_.shape[0], fit.gamma_.shape[0]),
                ("alpha", first.alpha_, fit.alpha_),
                ("eta", first.eta_, fit.eta_),
            ):
                if mine != theirs:
                    raise ConfigError(
                        f"fits[{i}] has {what} {theirs} but fits[0] has {mine}; merged joins "
                        "restarts of the same settings and data"
                    )
        model = cls(
            n_topics=first.n_topics,
            alpha=first.alpha,
            eta=first.eta,
            max_iter=first.max_iter,
            tol=first.tol,
            n_restarts=sum(len(f.restarts_) for f in fits),
            seed=first.seed,
            e_step_tol=first.e_step_tol,
            max_e_step_iter=first.max_e_step_iter,
        )
        restarts = [r for f in fits for r in f.restarts_]
        model._adopt(
            [replace(r, index=i) for i, r in enumerate(restarts)],
            max(f.n_iter_ for f in fits),
            first.alpha_,
            first.eta_,
        )
        return model

    def _check_fitted(self, what: str = "this LDA"):
        if not hasattr(self, "components_"):
            raise ConfigError(f"{what} is not fitted yet: call fit first")

    def _infer(self, X, where: str):
        """E-step for new documents with the fitted topics fixed.

        Returns gamma (D, K) and the ELBO (nats) of X under the fitted topics; errors
        name ``where``, the public method called ("LDA.transform", "LDA.score").
        """
        self._check_fitted(f"{where}: this LDA")
        X = _as_csr(X)
        if X.shape[1] != self.components_.shape[1]:
            raise DataError(
                f"the corpus has {X.shape[1]} words but the topics were fitted on "
                f"{self.components_.shape[1]}"
            )
        beta, topic_term = _topics(self.components_[None], self.eta_)
        gamma = self._e_step(X, beta, self._fresh_gamma(X, 1, self.alpha_), self.alpha_)
        ratio = np.empty((1, X.nnz))
        bound = self._doc_scores(X, beta, gamma, self.alpha_, ratio).sum() + topic_term[0]
        _check_bound(np.array([bound]), X, where)
        return gamma[0], float(bound)

    def transform(self, X: Counts | np.ndarray) -> np.ndarray:
        """Variational Dirichlet parameters gamma (D, K) of new documents, topics fixed.

        Unlike scikit-learn's ``transform`` these are not normalized; divide by the
        row sums for the posterior mean of theta.
        """
        return self._infer(X, "LDA.transform")[0]

    def score(self, X: Counts | np.ndarray) -> float:
        """The ELBO (nats) of the documents X under the fitted topics.

        gamma is optimized for X; the topic term E[log p(beta)] - E[log q(beta)] is
        counted once, so on the training corpus this is ``elbo_`` up to E-step
        tolerance.
        """
        return self._infer(X, "LDA.score")[1]

    def counts_for(self, corpus: Corpus, *, by_word: bool = True) -> tuple[sp.csr_matrix, int, int]:
        """The counts of a new corpus on this model's columns, for :meth:`transform`.

        Parameters
        ----------
        corpus : Corpus
            New documents; their vocabulary need not be the model's.
        by_word : bool
            The corpus's words are real words (read with a vocabulary file). When the
            model has a vocabulary (``vocab_``), counts move to the model's column of
            the same word and the tokens of words it lacks are dropped; without one,
            the corpus must have the model's width. False: the corpus's word ids are
            the model's (an lda-c file read without a vocabulary, which is as wide as
            its largest id, so missing columns are added as zeros).

        Returns
        -------
        counts : (D, V) float64 CSR
            V is the model's number of words.
        dropped_tokens, dropped_words : int
            Tokens (and distinct words) of words the model lacks; 0 unless mapped by word.

        Raises
        ------
        DataError
            No word of the corpus is in the model's vocabulary; a corpus of another
            width than a model without vocabulary; word ids beyond the model's.
        """
        self._check_fitted("LDA.counts_for: this LDA")
        if not isinstance(corpus, Corpus):
            raise ConfigError(f"corpus must be a Corpus, got {type(corpus).__name__}")
        n_words = self.components_.shape[1]
        vocab = getattr(self, "vocab_", None)  # set by load; a fit knows no words
        if by_word and vocab is not None:
            counts, dropped, unknown = map_vocabulary(corpus.counts, corpus.vocab, vocab)
            if dropped == corpus.n_tokens:
                raise DataError(
                    f"none of the corpus's {corpus.n_words} words is in the model's vocabulary; "
                    "is the corpus's vocabulary the right one?"
                )
            return counts, dropped, unknown
        if by_word and corpus.n_words != n_words:
            raise DataError(
                f"the corpus has {corpus.n_words} words but the model has {n_words} and no "
                "vocabulary to map words by"
            )
        return pad_vocabulary(corpus.counts, n_words), 0, 0

    def completion_log_likelihood(
        self, observed: Counts | np.ndarray, heldout: Counts | np.ndarray
    ) -> dict:
        """Document-completion predictive log-likelihood of held-out tokens.

        theta is inferred from each document's observed part (topics fixed); every
        held-out token w is scored by log sum_k E[theta_k] E[beta_kw], with the
        posterior means E[theta] = gamma / sum(gamma) and E[beta] = lambda / sum(lambda).

        Parameters
        ----------
        observed, heldout : Corpus or sparse (D, V)
            The two parts of the same test documents, e.g. from
            ``Corpus.completion_split``.

        Returns
        -------
        dict with ``log_likelihood`` (total, nats), ``n_tokens`` (held-out tokens),
        ``per_token`` (nats per held-out token), ``n_docs`` and ``log_base`` ("e").
        """
        held = _as_csr(heldout, "heldout")
        obs = _as_csr(observed, "observed")
        if held.shape != obs.shape:
            raise DataError(
                f"observed part {obs.shape} and held-out part {held.shape} differ in shape"
            )
        gamma = self.transform(obs)
        lam = np.ascontiguousarray(self.components_, dtype=np.float64)
        total = float(
            kernels.completion_terms(
                held.indptr, held.indices, held.data, gamma[None], lam[None]
            ).sum()
        )
        n_tokens = int(held.data.sum())
        return {
            "log_likelihood": total,
            "n_tokens": n_tokens,
            "per_token": total / n_tokens if n_tokens else float("nan"),
            "n_docs": int(held.shape[0]),
            "log_base": "e",
        }

    def completion_perplexity(
        self, observed: Counts | np.ndarray, heldout: Counts | np.ndarray
    ) -> dict:
        """exp(-log-likelihood per held-out token) of document completion.

        Same split and result keys as :meth:`completion_log_likelihood`, plus
        ``perplexity``. This is a predictive score, not the ELBO.
        """
        result = self.completion_log_likelihood(observed, heldout)
        result["perplexity"] = math.exp(-result["per_token"])
        return result

    # ------------------------------------------------------------------ saving
    def save(self, path: str | os.PathLike, vocab: list[str] | None = None) -> Path:
        """Save the fitted model as one ``.npz`` file, atomically; no pickled objects.

        The archive holds ``components`` (lambda of the best restart, (K, V) float64),
        ``history`` (its ELBO per iteration), optionally ``vocab`` ((V,) strings) and
        ``settings``: a JSON string with the format name and version, the constructor
        parameters, and the fitted ``alpha_``, ``eta_``, ``n_iter_`` and ``elbo_``.
        The per-restart results and the training documents' gamma are not saved
        (:meth:`transform` recomputes gamma for any corpus).

        Parameters
        ----------
        path : str or path-like
            The file to write (``.npz`` by convention); its folder is created if
            missing, an existing file is replaced.
        vocab : list of str, optional
            The words of the V columns, in order, so that a corpus can later be checked
            against (or mapped onto) the model's vocabulary. Default: ``vocab_`` of a
            loaded model (so that saving it again keeps it), else none.

        Returns
        -------
        Path
            The path written.

        Raises
        ------
        ConfigError
            If the model is not fitted, ``path`` is not a file path, or ``vocab`` is not
            V distinct strings; nothing is written then.
        """
        self._check_fitted("LDA.save: this LDA")
        target = checks.output_file(path, "path", "lda.npz")
        components = np.ascontiguousarray(self.components_, dtype=np.float64)
        arrays = {
            "components": components,
            "history": np.asarray(self.history_, dtype=np.float64),
            "settings": np.array(json.dumps(self._settings(), allow_nan=False)),
        }
        if vocab is None:
            vocab = getattr(self, "vocab_", None)
        if vocab is not None:
            arrays["vocab"] = _checked_vocab(vocab, components.shape[1])
        target.parent.mkdir(parents=True, exist_ok=True)
        return atomic_write(target, lambda fh: _write_npz(fh, arrays))

    def _settings(self) -> dict:
        return {
            "format": MODEL_FORMAT,
            "version": MODEL_VERSION,
            "params": {name: getattr(self, name) for name in _PARAMS},
            "alpha_": float(self.alpha_),
            "eta_": float(self.eta_),
            "n_iter_": int(self.n_iter_),
            "elbo_": float(self.elbo_),
        }

    @classmethod
    def load(cls, path: str | os.PathLike) -> LDA:
        """A model saved by :meth:`save`, ready for :meth:`transform` and :meth:`score`.

        Sets ``components_``, ``alpha_``, ``eta_``, ``n_iter_``, ``elbo_``, ``history_``
        and ``vocab_`` (None if saved without a vocabulary); ``restarts_``, ``best_``
        and ``gamma_`` are not saved and stay unset. The file is read with
        ``allow_pickle=False``: opening it cannot run code.

        Raises
        ------
        DataError
            Naming the file: missing, not an ``.npz`` archive, another format or
            version, a missing entry, or contents that are not a valid LDA (wrong
            shapes, non-positive topics, settings out of range).
        """
        target = checks.path(path, "path")
        try:
            npz = np.load(target, allow_pickle=False)
        except FileNotFoundError:
            raise DataError("LDA model file not found", target) from None
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise DataError(f"not an elbolab LDA model (.npz archive): {exc}", target) from None
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise DataError("not an elbolab LDA model: a single .npy array, not an .npz", target)
        with npz:
            if "settings" not in npz.files:
                raise DataError(
                    f"not an elbolab LDA model: no 'settings' entry (entries: {npz.files})",
                    target,
                )
            try:
                arrays = {key: npz[key] for key in npz.files}
            except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
                raise DataError(f"cannot read the archive: {exc}", target) from None
        try:
            return cls._from_arrays(arrays)
        except (ConfigError, DataError, ValueError, TypeError, KeyError) as exc:
            raise DataError(str(exc), target) from None

    @classmethod
    def _from_arrays(cls, arrays: dict) -> LDA:
        """Rebuild a model from the entries of a saved file; any problem raises."""
        settings_text = arrays["settings"]
        if settings_text.shape != () or settings_text.dtype.kind != "U":
            raise DataError("'settings' must be one JSON string")
        try:
            settings = json.loads(str(settings_text[()]))
        except json.JSONDecodeError as exc:
            raise DataError(f"'settings' is not valid JSON: {exc}") from None
        if not isinstance(settings, dict) or settings.get("format") != MODEL_FORMAT:
            raise DataError(f"not an {MODEL_FORMAT} file (settings name no such format)")
        if settings.get("version") != MODEL_VERSION:
            raise DataError(
                f"{MODEL_FORMAT} format version {settings.get('version')!r}; this elbolab "
                f"reads version {MODEL_VERSION}"
            )
        missing = [k for k in ("params", *_FITTED) if k not in settings]
        missing += [k for k in ("components", "history") if k not in arrays]
        params = settings.get("params")
        if isinstance(params, dict):
            missing += [f"params.{k}" for k in _PARAMS if k not in params]
        elif "params" in settings:
            raise DataError("settings 'params' must be a JSON object")
        if missing:
            raise DataError(f"the model file lacks {', '.join(missing)}")
        model = cls(**{k: params[k] for k in _PARAMS})
        model._priors()  # the constructor parameters' own checks (ConfigError)
        components = arrays["components"]
        if components.dtype != np.float64 or components.ndim != 2:
            raise DataError(
                f"'components' must be a (K, V) float64 array, got {components.dtype} "
                f"of shape {components.shape}"
            )
        if components.shape[0] != model.n_topics or components.shape[1] == 0:
            raise DataError(
                f"'components' has shape {components.shape} but n_topics is {model.n_topics}"
            )
        if not (np.all(np.isfinite(components)) and np.all(components > 0)):
            raise DataError("'components' (lambda) must be finite and positive")
        history = arrays["history"]
        if history.dtype != np.float64 or history.ndim != 1:
            raise DataError("'history' must be a 1-D float64 array")
        vocab = None
        if "vocab" in arrays:
            words = arrays["vocab"]
            if words.dtype.kind != "U":
                raise DataError(f"'vocab' must hold strings, got {words.dtype}")
            vocab = words.tolist()
            _checked_vocab(vocab, components.shape[1])
        model.alpha_ = checks.concentration(settings["alpha_"], "alpha_")
        model.eta_ = checks.concentration(settings["eta_"], "eta_")
        model.n_iter_ = checks.integer(settings["n_iter_"], "n_iter_", 0)
        model.elbo_ = checks.number(settings["elbo_"], "elbo_")
        model.components_ = np.ascontiguousarray(components)
        model.history_ = history
        model.vocab_ = vocab
        return model


def _checked_vocab(vocab, n_words: int) -> np.ndarray:
    """``vocab`` as a (V,) string array after checking it names V distinct words."""
    vocab = checks.list_of(vocab, "vocab", "words")
    if len(vocab) != n_words:
        raise ConfigError(f"vocab has {len(vocab)} words but the topics have {n_words}")
    if not all(isinstance(w, str) and w for w in vocab):
        raise ConfigError("vocab must hold non-empty strings")
    if len(set(vocab)) != len(vocab):
        raise ConfigError("vocab words must be distinct")
    return np.array(list(vocab), dtype=str)


# Every entry gets this timestamp, so that the same model gives the same bytes (np.savez
# stamps entries with the current time): a resumed run's model file equals the
# uninterrupted run's, and a checksum identifies a model.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def _write_npz(fh, arrays: dict[str, np.ndarray]) -> None:
    """What ``np.savez_compressed(fh, **arrays)`` writes, with fixed timestamps."""
    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w", force_zip64=True) as entry:
                np.lib.format.write_array(entry, np.asanyarray(array), allow_pickle=False)


def map_vocabulary(X, words: list[str], vocab: list[str]) -> tuple[sp.csr_matrix, int, int]:
    """Counts over ``words`` re-indexed onto another vocabulary, matching by word.

    Parameters
    ----------
    X : Corpus or sparse (D, len(words)) counts.
    words : list of str, the words of X's columns.
    vocab : list of str, the target vocabulary (a model's), V words.

    Returns
    -------
    counts : (D, V) float64 CSR, column ``vocab.index(w)`` holding the counts of word w.
    dropped_tokens : int, tokens of words that ``vocab`` lacks (dropped).
    dropped_words : int, distinct words of those tokens.
    """
    X = _as_csr(X)
    if len(words) != X.shape[1]:
        raise DataError(f"words has {len(words)} entries but the counts have {X.shape[1]} columns")
    index = {w: i for i, w in enumerate(vocab)}
    target = np.array([index.get(w, -1) for w in words], dtype=np.int64)
    keep = target[X.indices] >= 0
    dropped = X.data[~keep]
    rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    mapped = sp.csr_matrix(
        (X.data[keep], (rows[keep], target[X.indices[keep]])), shape=(X.shape[0], len(vocab))
    )
    mapped.sort_indices()
    return mapped, int(dropped.sum()), int(np.unique(X.indices[~keep]).size)


def pad_vocabulary(X, n_words: int) -> sp.csr_matrix:
    """Counts read without a vocabulary file, widened to a model's ``n_words`` columns.

    An lda-c file without its vocabulary tells its width only by its largest word id,
    so a corpus in which the model's last words do not occur reads narrower than the
    model; its ids are the model's, and the missing columns are zero.

    Raises
    ------
    DataError
        If X has more columns than ``n_words`` (word ids the model does not have).
    """
    X = _as_csr(X)
    if X.shape[1] > n_words:
        raise DataError(
            f"the corpus has word ids up to {X.shape[1] - 1} but the model has {n_words} "
            f"words (ids 0 to {n_words - 1})"
        )
    return sp.csr_matrix((X.data, X.indices, X.indptr), shape=(X.shape[0], n_words))
