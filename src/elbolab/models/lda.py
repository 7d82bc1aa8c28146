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

Everything is vectorized over documents (the corpus is held as its non-zero
(document, word, count) triples) and over restarts (a leading batch axis R), so a
fit with R restarts is one batched computation, not R fits one after another.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from ..errors import ConfigError, DataError

__all__ = ["LDA", "LDAState", "Restart", "dirichlet_expectation", "elbo"]

_DTYPE = torch.float64  # exp(E[log theta]) * exp(E[log beta]) underflows float32 for small priors


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


@dataclass
class _Triples:
    """A document-term matrix as non-zero triples, the layout every batched op uses."""

    rows: torch.Tensor  # (nnz,) document index, sorted (CSR order)
    cols: torch.Tensor  # (nnz,) word index
    counts: torch.Tensor  # (nnz,) float64 counts n_dw
    doc_lengths: torch.Tensor  # (D,) float64
    n_docs: int
    n_words: int

    @classmethod
    def from_matrix(cls, X, n_words: int | None = None) -> _Triples:
        X = _as_csr(X)
        if n_words is not None and X.shape[1] != n_words:
            raise DataError(
                f"the corpus has {X.shape[1]} words but the topics were fitted on {n_words}"
            )
        coo = X.tocoo()
        return cls(
            rows=torch.from_numpy(coo.row.astype(np.int64)),
            cols=torch.from_numpy(coo.col.astype(np.int64)),
            counts=torch.from_numpy(coo.data.astype(np.float64)),
            doc_lengths=torch.from_numpy(np.asarray(X.sum(1), dtype=np.float64).ravel()),
            n_docs=X.shape[0],
            n_words=X.shape[1],
        )


class _Stacked:
    """R copies of the corpus as one block-diagonal (R*D) x (R*V) sparse matrix.

    Restart r's documents are rows r*D .. r*D+D-1 and its words columns r*V ..;
    per-restart quantities are stacked the same way: gamma as (R*D, K), lambda as
    (R*V, K). Every E-step and M-step contraction is then one CSR sparse-dense
    product over all restarts at once, which on CPU is an order of magnitude faster
    than scatter-adds over the non-zeros.
    """

    def __init__(self, t: _Triples, n_restarts: int):
        r = torch.arange(n_restarts)[:, None]
        self.t, self.R = t, n_restarts
        self.rows = (t.rows[None, :] + t.n_docs * r).reshape(-1)
        self.cols = (t.cols[None, :] + t.n_words * r).reshape(-1)
        self.counts = t.counts.repeat(n_restarts)
        self.shape = (n_restarts * t.n_docs, n_restarts * t.n_words)
        self.crow = _crow(self.rows, self.shape[0])
        # The transposed pattern (words x documents) for the M-step.
        self.perm = torch.argsort(self.cols, stable=True)
        self.crow_t = _crow(self.cols[self.perm], self.shape[1])
        self.col_t = self.rows[self.perm]

    def doc_word(self, values: torch.Tensor) -> torch.Tensor:
        """The (R*D, R*V) sparse matrix with ``values`` (R*nnz,) at the non-zeros."""
        return torch.sparse_csr_tensor(self.crow, self.cols, values, size=self.shape)

    def word_doc(self, values: torch.Tensor) -> torch.Tensor:
        """The transpose of :meth:`doc_word` as a CSR matrix."""
        return torch.sparse_csr_tensor(
            self.crow_t, self.col_t, values[self.perm], size=self.shape[::-1]
        )

    def per_restart(self, values: torch.Tensor) -> torch.Tensor:
        """Sum of a per-non-zero quantity (R*nnz,) within each restart -> (R,)."""
        return values.view(self.R, -1).sum(1)


def _phinorm(st: _Stacked, exp_elog_theta, beta_nz) -> torch.Tensor:
    """sum_k exp(E[log theta_dk]) exp(E[log beta_kw]) at every non-zero (d, w): (R*nnz,)."""
    return torch.einsum("nk,nk->n", exp_elog_theta.index_select(0, st.rows), beta_nz)


def _crow(sorted_rows: torch.Tensor, n_rows: int) -> torch.Tensor:
    crow = torch.zeros(n_rows + 1, dtype=torch.int64)
    crow[1:] = torch.cumsum(torch.bincount(sorted_rows, minlength=n_rows), 0)
    return crow


def _as_csr(X) -> sp.csr_matrix:
    """Accept a Corpus (anything with ``.counts``) or a scipy sparse / dense count matrix."""
    X = getattr(X, "counts", X)
    X = sp.csr_matrix(X)
    if X.shape[0] == 0:
        raise DataError("the corpus has no documents")
    if X.nnz and (X.data.min() < 0 or not np.all(np.equal(np.mod(X.data, 1), 0))):
        raise DataError("counts must be non-negative integers")
    X.eliminate_zeros()
    X.sum_duplicates()
    return X


def elbo(
    triples: _Triples, lam: torch.Tensor, gamma: torch.Tensor, alpha: float, eta: float
) -> torch.Tensor:
    """The full LDA ELBO in nats at the phi that is optimal for (gamma, lambda).

    Parameters
    ----------
    triples : the corpus as non-zero triples.
    lam : (R, K, V) topic Dirichlet parameters lambda.
    gamma : (R, D, K) document Dirichlet parameters gamma.
    alpha, eta : symmetric Dirichlet priors on theta and beta.

    Returns
    -------
    (R,) tensor, the ELBO of each restart (summed over documents). Differentiable.
    """
    elog_beta = dirichlet_expectation(lam)
    elog_theta = dirichlet_expectation(gamma)
    # log sum_k exp(Elog theta_dk + Elog beta_kw) for every non-zero (d, w)
    pair = elog_theta[:, triples.rows, :] + elog_beta.transpose(1, 2)[:, triples.cols, :]
    words = (triples.counts * torch.logsumexp(pair, -1)).sum(-1)
    return (
        words
        + _dirichlet_kl_term(alpha, gamma, elog_theta)
        + _dirichlet_kl_term(eta, lam, elog_beta)
    )


@dataclass
class Restart:
    """One restart's optimum: its ELBO (nats), ELBO history, lambda (K, V) and gamma (D, K)."""

    elbo: float
    history: np.ndarray
    components: np.ndarray
    gamma: np.ndarray
    seed: int


@dataclass
class LDAState:
    """Everything needed to continue a fit exactly where it stopped (for checkpoints).

    lam : (R, K, V), gamma : (R, D, K), history : (n_iter, R) ELBO after each iteration.
    """

    lam: np.ndarray
    gamma: np.ndarray
    history: np.ndarray
    converged: bool = False


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
        Restart r is initialized from ``numpy.random.default_rng([seed, r])``, so a
        restart's result does not depend on how many others run beside it.
    e_step_tol : float
        The E-step stops when the mean absolute change of every document's gamma is
        below this (scikit-learn's ``mean_change_tol`` uses 1e-3).
    max_e_step_iter : int
        Cap on E-step sweeps per outer iteration.

    Attributes
    ----------
    components_ : (K, V) ndarray, lambda of the best restart.
    gamma_ : (D, K) ndarray, gamma of the training documents under the best restart.
    elbo_ : float, the best restart's ELBO in nats (all normalizers included).
    history_ : (n_iter_,) ndarray, the best restart's ELBO after each iteration.
    n_iter_ : int, iterations run.
    restarts_ : list of Restart, every restart (best first is *not* implied; see best_).
    best_ : int, index of the best restart.

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

    # ------------------------------------------------------------------ settings
    def _priors(self) -> tuple[float, float]:
        if not isinstance(self.n_topics, (int, np.integer)) or self.n_topics < 1:
            raise ConfigError(f"n_topics must be an integer >= 1, got {self.n_topics!r}")
        alpha = 1.0 / self.n_topics if self.alpha is None else float(self.alpha)
        eta = 1.0 / self.n_topics if self.eta is None else float(self.eta)
        for name, value in (("alpha", alpha), ("eta", eta)):
            if not (value > 0 and math.isfinite(value)):
                raise ConfigError(f"{name} must be a positive finite number, got {value!r}")
        if self.n_restarts < 1:
            raise ConfigError(f"n_restarts must be >= 1, got {self.n_restarts!r}")
        if self.max_iter < 1:
            raise ConfigError(f"max_iter must be >= 1, got {self.max_iter!r}")
        return alpha, eta

    # ------------------------------------------------------------------ core steps
    def _e_step(self, st: _Stacked, beta_nz, beta_s, gamma, alpha):
        """Coordinate ascent on (phi, gamma) with the topics fixed, from a warm start.

        beta_s : (R*V, K) exp(E[log beta]) stacked; beta_nz : (R*nnz, K) its rows at
        each non-zero. gamma : (R*D, K) starting point. Returns the new gamma with,
        for it, exp(E[log theta]) (R*D, K) and the normalizer
        phinorm (R*nnz,) = sum_k exp(E[log theta_dk] + E[log beta_kw]).
        Each sweep sets phi optimal for gamma, then gamma optimal for phi (phi is
        never stored), so the ELBO never decreases.
        """
        for _ in range(self.max_e_step_iter):
            exp_elog_theta = torch.exp(dirichlet_expectation(gamma))
            phinorm = _phinorm(st, exp_elog_theta, beta_nz)
            new_gamma = alpha + exp_elog_theta * (st.doc_word(st.counts / phinorm) @ beta_s)
            change = (new_gamma - gamma).abs().mean(-1).max()
            gamma = new_gamma
            if change < self.e_step_tol:
                break
        exp_elog_theta = torch.exp(dirichlet_expectation(gamma))
        return gamma, exp_elog_theta, _phinorm(st, exp_elog_theta, beta_nz)

    @staticmethod
    def _topics(st: _Stacked, lam):
        """E[log beta] (R*V, K), exp of it, and its rows at the non-zeros (R*nnz, K)."""
        lam3 = lam.view(st.R, -1, lam.shape[-1])
        elog_beta = (torch.digamma(lam3) - torch.digamma(lam3.sum(1, keepdim=True))).view_as(lam)
        beta_s = torch.exp(elog_beta)
        return elog_beta, beta_s, beta_s.index_select(0, st.cols)

    @staticmethod
    def _bound(st: _Stacked, phinorm, gamma, lam, elog_beta, alpha, eta):
        """ELBO (R,) from quantities the E-step already computed (see module docstring)."""
        R, K = st.R, gamma.shape[-1]
        gamma3 = gamma.view(R, -1, K)
        lam3 = lam.view(R, -1, K).transpose(1, 2)
        return (
            st.per_restart(st.counts * torch.log(phinorm))
            + _dirichlet_kl_term(alpha, gamma3, dirichlet_expectation(gamma3))
            + _dirichlet_kl_term(eta, lam3, elog_beta.view(R, -1, K).transpose(1, 2))
        )

    def _init_state(self, t: _Triples, alpha: float) -> LDAState:
        # Gamma(100, 1/100) entries as in Hoffman's onlineldavb and scikit-learn.
        lam = np.stack(
            [
                np.random.default_rng([self.seed, r]).gamma(100.0, 0.01, (self.n_topics, t.n_words))
                for r in range(self.n_restarts)
            ]
        )
        gamma = np.broadcast_to(
            alpha + t.doc_lengths.numpy()[None, :, None] / self.n_topics,
            (self.n_restarts, t.n_docs, self.n_topics),
        ).copy()
        return LDAState(lam=lam, gamma=gamma, history=np.zeros((0, self.n_restarts)))

    # ------------------------------------------------------------------ public API
    def fit(self, X, callback=None, state: LDAState | None = None) -> LDA:
        """Fit to a Corpus or a (docs x words) sparse count matrix.

        Parameters
        ----------
        X : Corpus or scipy sparse matrix (D, V) of non-negative integer counts.
        callback : callable, optional
            ``callback(iteration, elbo, state)`` after every iteration, with ``elbo``
            an (R,) array and ``state`` an :class:`LDAState` to checkpoint.
        state : LDAState, optional
            Continue from a checkpointed state instead of a fresh initialization;
            the continued fit ends with the same numbers as an uninterrupted one.
        """
        alpha, eta = self._priors()
        t = _Triples.from_matrix(X)
        if state is None:
            state = self._init_state(t, alpha)
        R, K = state.lam.shape[0], self.n_topics
        st = _Stacked(t, R)
        # Internal layout: lambda as (R*V, K), gamma as (R*D, K).
        lam = torch.from_numpy(np.ascontiguousarray(state.lam.transpose(0, 2, 1))).reshape(-1, K)
        gamma = torch.from_numpy(np.ascontiguousarray(state.gamma)).reshape(-1, K)
        history = list(state.history)
        converged = state.converged

        with torch.no_grad():
            elog_beta, beta_s, beta_nz = self._topics(st, lam)
            while not converged and len(history) < self.max_iter:
                gamma, exp_elog_theta, phinorm = self._e_step(st, beta_nz, beta_s, gamma, alpha)
                # M-step: lambda_kw = eta + sum_d n_dw phi_dwk, phi from the final gamma.
                lam = eta + beta_s * (st.word_doc(st.counts / phinorm) @ exp_elog_theta)
                # ELBO at the new lambda, with phi re-optimized for it.
                elog_beta, beta_s, beta_nz = self._topics(st, lam)
                phinorm = _phinorm(st, exp_elog_theta, beta_nz)
                bound = self._bound(st, phinorm, gamma, lam, elog_beta, alpha, eta).numpy()
                if not np.all(np.isfinite(bound)):
                    raise FloatingPointError(
                        f"LDA ELBO became non-finite at iteration {len(history) + 1}"
                    )
                if history:
                    gain = (bound - history[-1]) / np.abs(bound)
                    converged = bool(np.all(gain < self.tol))
                history.append(bound)
                if callback is not None:
                    callback(len(history), bound, self._state(st, lam, gamma, history, converged))

        final = self._state(st, lam, gamma, history, converged)
        self._set_result(final.lam, final.gamma, final.history, alpha, eta)
        return self

    def _state(self, st, lam, gamma, history, converged) -> LDAState:
        K = self.n_topics
        return LDAState(
            lam=lam.view(st.R, -1, K).transpose(1, 2).numpy().copy(),
            gamma=gamma.view(st.R, -1, K).numpy().copy(),
            history=np.array(history),
            converged=converged,
        )

    def _set_result(self, lam, gamma, history, alpha, eta):
        self.alpha_, self.eta_ = alpha, eta
        self.n_iter_ = len(history)
        self.restarts_ = [
            Restart(
                elbo=float(history[-1, r]),
                history=history[:, r].copy(),
                components=lam[r],
                gamma=gamma[r],
                seed=r,
            )
            for r in range(lam.shape[0])
        ]
        self.best_ = int(np.argmax(history[-1]))
        best = self.restarts_[self.best_]
        self.components_ = best.components
        self.gamma_ = best.gamma
        self.elbo_ = best.elbo
        self.history_ = best.history

    def _check_fitted(self):
        if not hasattr(self, "components_"):
            raise RuntimeError("this LDA is not fitted yet; call fit first")

    def _infer(self, X):
        """E-step to convergence for new documents with the fitted topics fixed.

        Returns gamma (D, K) and the ELBO (nats) of X under the fitted topics.
        """
        self._check_fitted()
        t = _Triples.from_matrix(X, n_words=self.components_.shape[1])
        st = _Stacked(t, 1)
        lam = torch.from_numpy(np.ascontiguousarray(self.components_.T))
        gamma = (self.alpha_ + t.doc_lengths[:, None] / self.n_topics).expand(-1, self.n_topics)
        with torch.no_grad():
            elog_beta, beta_s, beta_nz = self._topics(st, lam)
            gamma, _, phinorm = self._e_step(st, beta_nz, beta_s, gamma.contiguous(), self.alpha_)
            bound = self._bound(st, phinorm, gamma, lam, elog_beta, self.alpha_, self.eta_)
        return gamma.numpy(), float(bound[0])

    def transform(self, X) -> np.ndarray:
        """Variational Dirichlet parameters gamma (D, K) of new documents, topics fixed.

        Unlike scikit-learn's ``transform`` these are not normalized; divide by the
        row sums for the posterior mean of theta.
        """
        return self._infer(X)[0]

    def score(self, X) -> float:
        """The ELBO (nats) of the documents X under the fitted topics.

        gamma is optimized for X; the topic term E[log p(beta)] - E[log q(beta)] is
        counted once, so on the training corpus this is ``elbo_`` up to E-step
        tolerance.
        """
        return self._infer(X)[1]

    def completion_log_likelihood(self, observed, heldout) -> dict:
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
        held = _as_csr(heldout)
        obs = _as_csr(observed)
        if held.shape != obs.shape:
            raise DataError(
                f"observed part {obs.shape} and held-out part {held.shape} differ in shape"
            )
        gamma = self.transform(obs)
        theta = gamma / gamma.sum(1, keepdims=True)
        beta = self.components_ / self.components_.sum(1, keepdims=True)
        coo = held.tocoo()
        prob = np.einsum("nk,nk->n", theta[coo.row], beta[:, coo.col].T)
        n_tokens = int(coo.data.sum())
        total = float((coo.data * np.log(prob)).sum())
        return {
            "log_likelihood": total,
            "n_tokens": n_tokens,
            "per_token": total / n_tokens if n_tokens else float("nan"),
            "n_docs": int(held.shape[0]),
            "log_base": "e",
        }

    def completion_perplexity(self, observed, heldout) -> dict:
        """exp(-log-likelihood per held-out token) of document completion.

        Same split and result keys as :meth:`completion_log_likelihood`, plus
        ``perplexity``. This is a predictive score, not the ELBO.
        """
        result = self.completion_log_likelihood(observed, heldout)
        result["perplexity"] = math.exp(-result["per_token"])
        return result
