"""LDA's ELBO as a differentiable function of a batch of flat vectors, for path tools.

The path and plane tools of :mod:`elbolab.landscape` maximize a function
``f((P, n) tensor) -> (P,)`` with autograd, one row per path pivot.
:class:`LDAObjective` is that function for LDA (Blei, Ng & Jordan 2003, with the
Dirichlet prior on topics of Hoffman, Blei & Bach 2010), in nats, with every Dirichlet
normalizer -- the quantity :class:`~elbolab.models.lda.LDA` reports as ``elbo_`` --
in one of two modes.

``mode="profile"`` (the default): the vector is log lambda (K * V entries). Each
evaluation re-optimizes the local parameters (gamma, phi) of every document for every
pivot by the compiled E-step of :mod:`elbolab.models._lda_kernels` (one batched call,
pivots on its restart axis R), so the value is the *profile* ELBO::

    L(lambda) = max_{gamma, phi} ELBO(lambda, gamma, phi)

(to the E-step tolerance). Its gradient needs no differentiation through the E-step:
by the envelope theorem it is the partial derivative at the optimal local parameters,
which has the closed form (psi1 = trigamma)::

    dL/dlambda_kw = psi1(lambda_kw) (eta + s_kw - lambda_kw)
                    - psi1(sum_w lambda_kw) sum_w' (eta + s_kw' - lambda_kw'),
    s_kw = sum_d n_dw phi*_dwk                  (the M-step sufficient statistics)

and dL/dlog lambda = lambda * dL/dlambda. It vanishes exactly where lambda is a CAVI
fixed point (lambda = eta + s). Cost: one E-step per pivot plus one pass over the
non-zeros; memory O(P (nnz + K V + D K)).

*Fresh E-steps by default.* Every evaluation starts every document afresh from
gamma = alpha + N_d / K (Blei et al. 2003), exactly as ``LDA.score``. The profile is
then a deterministic function of lambda alone -- what NEB assumes (its fixed endpoints
are re-evaluated every step, its dense resampling evaluates other batches than its
pivots) -- and at a fitted ``components_`` it equals ``LDA.score`` on the training
corpus. Rows a call shares bit for bit with the previous call are served from a memo
(NEB's fixed endpoints), which changes nothing but the time.

``warm_start=True`` (opt-in) starts each pivot's E-step from the gammas of the nearest
pivot (in x) of the previous call instead. It is about twice as fast on AP but it is
*not* the same function: the per-document E-step has several local optima, and a warm
start follows the one the path came from. Measured on AP (K = 10, 10 pivots, 40 NEB
iterations between two aligned fits): warm-started values were up to 157 nats (3.6e-4
nats/token) *above* the fresh-start profile evaluated at e_step_tol = 1e-8, while the
fresh-start values at the default tolerance were 11-47 nats below it; the barrier
agreed to 1e-4 nats/token and the pivots to 0.8 % of |b - a|. With warm starts the
value at a point depends on the call history and no longer equals ``LDA.score``, and
its gradient is that of the branch followed (on a 60-document test corpus it differed
from the fresh-start gradient by 4 % of the largest entry, even at e_step_tol = 1e-12).

``mode="full"``: the vector holds all of (lambda, gamma, phi), as in the paper, in
unconstrained coordinates so that no step leaves the domain::

    x = [log lambda (K V) | log gamma (D K) | phi logits (nnz K)]

with phi_dw = softmax(logits_dw) over the K topics at each non-zero (d, w) of the
count matrix (CSR order: documents in order, words ascending within a document). The
value is the ELBO with explicit phi::

    sum_{d,w} n_dw sum_k phi_dwk (E[log theta_dk] + E[log beta_kw] - log phi_dwk)
    + sum_d (E[log p(theta_d | alpha)] - E[log q(theta_d | gamma_d)])
    + sum_k (E[log p(beta_k | eta)]   - E[log q(beta_k | lambda_k)])

At the optimal phi (``to_vector`` puts it there unless given another) this equals the
closed-form bound of :func:`elbolab.models.lda.elbo` for the same (gamma, lambda).
Value and gradient come from one compiled pass over the non-zeros with the closed-form
gradient of :mod:`elbolab.models._lda_full_kernels` (once differentiable).
``full_gradient="autograd"`` keeps the former implementation, the same ELBO in torch
differentiated by autograd, as the reference the closed form is tested and timed
against (``benchmarks/landscape_neb_speed.py``). Memory of the autograd path is O(P nnz K) per
intermediate: batches larger than ``max_chunk_elements`` are evaluated a few pivots at
a time, each chunk's gradient taken right after its forward pass (higher-order
derivatives are then unavailable; a batch that fits in one chunk keeps an ordinary
autograd graph).

Examples
--------
>>> obj = LDAObjective(corpus, n_topics=10, alpha=0.1, eta=0.1)        # profile mode
>>> perm, _ = align(lam_a, lam_b)
>>> xa, xb = obj.to_vector(lam_a), obj.to_vector(apply_permutation(lam_b, perm, 0))
>>> result = neb(obj, xa, xb, n_pivots=10, steps=100)
>>> topics = obj.components(result.pivots)                            # (P, K, V)

References
----------
Blei, Ng & Jordan (2003), Latent Dirichlet Allocation, JMLR 3.
Hoffman, Blei & Bach (2010), Online Learning for Latent Dirichlet Allocation, NeurIPS.
Milgrom & Segal (2002), Envelope theorems for arbitrary choice sets, Econometrica 70.
"""

from __future__ import annotations

import hashlib
import math
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
import torch

from .. import checks
from ..errors import ConfigError, DataError, NumericalError
from ..models import _lda_full_kernels as full_kernels
from ..models import _lda_kernels as kernels
from ..models.lda import _as_csr, _columns, _dirichlet_kl_term, _topics, dirichlet_expectation
from .flat import Flattener

if TYPE_CHECKING:
    from .._types import ArrayOrTensor, Counts

__all__ = ["LDAObjective"]

_MODES = ("profile", "full")
_FULL_GRADIENTS = ("closed_form", "autograd")
# Full mode sums the topic statistics in this many blocks of documents per pivot: jobs for
# several threads even when a call has one pivot. Fixed (not chosen from the batch size or
# the thread count) so that a row's value and gradient do not depend on its batch.
_FULL_BLOCKS = 4


# --------------------------------------------------------------------------- autograd
class _Precomputed(torch.autograd.Function):
    """values (P,) whose gradient with respect to x (P, n) was computed in the forward pass.

    Used for the profile mode (closed-form envelope gradient) and for the full mode when
    chunked (each chunk's autograd gradient taken right after its forward pass).
    """

    @staticmethod
    def forward(ctx, x, values, grad):
        ctx.save_for_backward(grad)
        return values

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        (grad,) = ctx.saved_tensors
        if bool((grad_out == 1).all()):
            # The usual call, backward of values.sum(): spare a (P, n) product (full mode
            # has millions of coordinates per row).
            return grad, None, None
        return grad_out[:, None].to(grad.dtype) * grad, None, None


# --------------------------------------------------------------------------- objective
class LDAObjective:
    """LDA's full ELBO (nats) as a batched, differentiable function of flat vectors.

    Parameters
    ----------
    corpus_or_csr : Corpus or scipy sparse (D, V)
        Non-negative integer counts n_dw.
    n_topics : int
        K.
    alpha, eta : float
        Symmetric Dirichlet priors on the proportions theta and on the topics beta.
    mode : {"profile", "full"}
        ``"profile"``: x = log lambda, local parameters optimized by the E-step at every
        evaluation, envelope-theorem gradient. ``"full"``: x = (log lambda, log gamma,
        phi logits), closed-form gradient. See the module docstring.
    e_step_tol : float
        A document's E-step stops when the mean absolute change of its gamma is below
        this (as ``LDA``); used by the profile mode, by ``to_vector`` of the full mode
        when gamma is not given, and by :meth:`heldout_scores`.
    max_e_step_iter : int
        Cap on E-step sweeps per document.
    max_chunk_elements : int
        Memory budget: pivots are evaluated in chunks so that one chunk's largest
        arrays hold about this many float64 numbers (full mode: P nnz K per array;
        profile: P (nnz + 2 K V + D K)). Default 2**24 (128 MiB per array).
    warm_start : bool
        Profile mode only: start the E-step from the previous call's gammas (of the
        nearest previous pivot) rather than afresh. Faster, but history-dependent and
        possibly at other per-document local optima; see the module docstring.
    full_gradient : {"closed_form", "autograd"}
        Full mode only: the compiled value and closed-form gradient (default), or the
        pure-torch ELBO differentiated by autograd (slower; the reference).

    Attributes
    ----------
    flattener : Flattener
        Blocks ``log_lam`` (K, V), and in full mode ``log_gamma`` (D, K) and
        ``logits`` (nnz, K).
    n : int
        Length of a vector.
    mode, n_topics, alpha, eta, e_step_tol, max_e_step_iter, warm_start, full_gradient :
        as given.
    X : scipy.sparse.csr_matrix (D, V)
        The counts as used: float64, duplicates summed, indices sorted.
    n_docs, n_words, nnz, n_tokens : int
        D, V, the number of non-zero counts and sum of all counts.
    rows, cols : (nnz,) int64 ndarrays
        Document and word of each non-zero, in the order of the phi rows (CSR order).
    counts : (nnz,) float64 ndarray
        n_dw at each non-zero.
    """

    def __init__(
        self,
        corpus_or_csr: Counts,
        n_topics: int,
        alpha: float,
        eta: float,
        mode: str = "profile",
        e_step_tol: float = 1e-3,
        max_e_step_iter: int = 100,
        max_chunk_elements: int = 2**24,
        warm_start: bool = False,
        full_gradient: str = "closed_form",
    ) -> None:
        if mode not in _MODES:
            raise ConfigError(f"mode must be one of {_MODES}, got {mode!r}")
        if full_gradient not in _FULL_GRADIENTS:
            raise ConfigError(
                f"full_gradient must be one of {_FULL_GRADIENTS}, got {full_gradient!r}"
            )
        if full_gradient != "closed_form" and mode != "full":
            raise ConfigError("full_gradient applies to mode='full' only")
        n_topics = checks.integer(n_topics, "n_topics", 1)
        alpha = checks.concentration(alpha, "alpha")
        eta = checks.concentration(eta, "eta")
        e_step_tol = checks.positive(e_step_tol, "e_step_tol")
        max_e_step_iter = checks.integer(max_e_step_iter, "max_e_step_iter", 1)
        max_chunk_elements = checks.integer(max_chunk_elements, "max_chunk_elements", 1)
        X = _as_csr(corpus_or_csr, "corpus_or_csr")
        self.X = X
        self.mode = mode
        self.n_topics = int(n_topics)
        self.alpha, self.eta = float(alpha), float(eta)
        self.e_step_tol = float(e_step_tol)
        self.max_e_step_iter = int(max_e_step_iter)
        self.max_chunk_elements = int(max_chunk_elements)
        if not isinstance(warm_start, bool):
            raise ConfigError(f"warm_start must be True or False, got {warm_start!r}")
        if warm_start and mode != "profile":
            raise ConfigError("warm_start applies to mode='profile' only")
        self.warm_start = warm_start
        self.full_gradient = full_gradient
        self.n_docs, self.n_words = X.shape
        self.nnz = int(X.nnz)
        self.n_tokens = int(X.data.sum())
        self.lengths = np.asarray(X.sum(1)).ravel()
        self.cols = X.indices.astype(np.int64)
        self.counts = X.data.copy()
        # The same non-zeros word by word, for the M-step statistics.
        self._col_ptr, self._col_docs, self._col_pos = _columns(X)
        self.rows = np.repeat(np.arange(self.n_docs, dtype=np.int64), np.diff(X.indptr))
        k, v = self.n_topics, self.n_words
        template = {"log_lam": (k, v)}
        if mode == "full":
            template.update({"log_gamma": (self.n_docs, k), "logits": (self.nnz, k)})
            self._rows_t = torch.from_numpy(self.rows)
            self._cols_t = torch.from_numpy(self.cols)
            self._counts_t = torch.from_numpy(self.counts)
        self.flattener = Flattener(template, dtype=torch.float64)
        self._memo: dict = {}
        self._previous = None  # (x (m, n), gamma (m, D, K)) of the last call, for warm starts
        self.n = self.flattener.n

    def clear_cache(self) -> None:
        """Forget the previous call: its memoized rows and the gammas of warm starts."""
        self._memo = {}
        self._previous = None

    def __repr__(self) -> str:
        return (
            f"LDAObjective(mode={self.mode!r}, D={self.n_docs}, V={self.n_words}, "
            f"K={self.n_topics}, nnz={self.nnz}, alpha={self.alpha}, eta={self.eta}; n={self.n})"
        )

    # ------------------------------------------------------------------ conversions
    def _batch(self, x, name: str = "x") -> tuple[torch.Tensor, bool]:
        x = checks.real_tensor(x, name, ConfigError)
        single = x.dim() == 1
        if single:
            x = x[None]
        if x.dim() != 2 or x.shape[-1] != self.n:
            raise ConfigError(
                f"{name} must have shape (P, {self.n}) or ({self.n},) for this "
                f"{self.mode}-mode LDAObjective, got {tuple(x.shape)}"
            )
        if not x.is_floating_point():
            x = x.to(torch.float64)
        # A finite row sum proves the row finite without a full-size boolean temporary
        # (full-mode rows are millions long); only a non-finite sum needs the exact check.
        if not bool(torch.isfinite(x.detach().sum(dim=1)).all()) and not bool(
            torch.isfinite(x.detach()).all()
        ):
            raise ConfigError(f"{name} has NaN or infinite entries; log-parameters must be finite")
        return x, single

    def _lam_numpy(self, x: torch.Tensor) -> np.ndarray:
        """lambda (P, K, V) float64 ndarray from vectors x (P, n)."""
        k, v = self.n_topics, self.n_words
        log_lam = x[:, : k * v].detach().to("cpu", torch.float64).reshape(-1, k, v)
        return np.exp(log_lam.numpy())

    def _check_lam(self, lam) -> np.ndarray:
        lam = np.asarray(lam.detach().cpu() if isinstance(lam, torch.Tensor) else lam)
        lam = lam.astype(np.float64)
        if lam.shape != (self.n_topics, self.n_words):
            raise ConfigError(
                f"lam must have shape (K, V) = ({self.n_topics}, {self.n_words}), got {lam.shape}"
            )
        if not (np.all(np.isfinite(lam)) and np.all(lam > 0)):
            raise ConfigError("lam must be positive and finite")
        return lam

    def to_vector(
        self,
        lam: ArrayOrTensor,
        gamma: ArrayOrTensor | None = None,
        phi: ArrayOrTensor | None = None,
    ) -> torch.Tensor:
        """The flat vector (n,) of one parameter set.

        Parameters
        ----------
        lam : (K, V) array or tensor
            Topic Dirichlet parameters lambda, positive.
        gamma : (D, K) array or tensor, optional
            Full mode only: document Dirichlet parameters gamma; default: the E-step's
            optimum for ``lam`` (fresh start, as ``LDA.transform``).
        phi : (nnz, K) array or tensor, optional
            Full mode only: topic responsibilities at the non-zeros (rows in the order
            of :attr:`rows`, :attr:`cols`, each summing to 1); default: phi optimal
            for (gamma, lambda), phi_dwk proportional to
            exp(E[log theta_dk] + E[log beta_kw]). Stored as logits log phi.

        Returns
        -------
        (n,) float64 tensor
            Profile: log lambda. Full: [log lambda | log gamma | log phi].
        """
        lam = self._check_lam(lam)
        if self.mode == "profile":
            if gamma is not None or phi is not None:
                raise ConfigError(
                    "to_vector: a profile-mode vector holds lambda only; gamma and phi are "
                    "optimized at every evaluation (use mode='full' to give them)"
                )
            return torch.from_numpy(np.log(lam).ravel().copy())
        if gamma is None:
            gamma = self._optimal_gamma(lam[None])[0]
        gamma = np.asarray(gamma.detach().cpu() if isinstance(gamma, torch.Tensor) else gamma)
        gamma = gamma.astype(np.float64)
        if gamma.shape != (self.n_docs, self.n_topics):
            raise ConfigError(
                f"gamma must have shape (D, K) = ({self.n_docs}, {self.n_topics}), "
                f"got {gamma.shape}"
            )
        if not (np.all(np.isfinite(gamma)) and np.all(gamma > 0)):
            raise ConfigError("gamma must be positive and finite")
        lam_t, gamma_t = torch.from_numpy(lam), torch.from_numpy(gamma)
        if phi is None:
            # log phi*_dwk = E[log theta_dk] + E[log beta_kw] - log phinorm_dw.
            pair = (
                dirichlet_expectation(gamma_t)[self._rows_t]
                + dirichlet_expectation(lam_t).T[self._cols_t]
            )
            logits = torch.log_softmax(pair, -1)
        else:
            phi = torch.as_tensor(phi).detach().cpu().to(torch.float64)
            if tuple(phi.shape) != (self.nnz, self.n_topics):
                raise ConfigError(
                    f"phi must have shape (nnz, K) = ({self.nnz}, {self.n_topics}), "
                    f"got {tuple(phi.shape)}"
                )
            if not (torch.isfinite(phi).all() and (phi >= 0).all()):
                raise ConfigError("phi must be finite and non-negative")
            if not bool(((phi.sum(-1) - 1).abs() <= 1e-6).all()):
                raise ConfigError("phi's rows must sum to 1")
            logits = torch.log(phi.clamp_min(torch.finfo(torch.float64).tiny))
        return self.flattener.flatten(
            {"log_lam": lam_t.log(), "log_gamma": gamma_t.log(), "logits": logits}
        )

    def from_vector(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Structured parameters of vectors x (..., n), batched like x.

        Returns
        -------
        dict
            ``lam`` (..., K, V); in full mode also ``gamma`` (..., D, K) and ``phi``
            (..., nnz, K) (softmax of the logits, rows summing to 1). Differentiable.
            (In profile mode the optimal gamma is :meth:`optimal_gamma`.)
        """
        x = torch.as_tensor(x)
        if x.dim() < 1 or x.shape[-1] != self.n:
            raise ConfigError(f"x must have shape (..., {self.n}), got {tuple(x.shape)}")
        blocks = self.flattener.unflatten(x)
        out = {"lam": blocks["log_lam"].exp()}
        if self.mode == "full":
            out["gamma"] = blocks["log_gamma"].exp()
            out["phi"] = torch.softmax(blocks["logits"], -1)
        return out

    def components(self, x: torch.Tensor) -> torch.Tensor:
        """lambda (P, K, V) of vectors x (P, n) (either mode), for reading topics along a path."""
        x, single = self._batch(x)
        k, v = self.n_topics, self.n_words
        lam = x[:, : k * v].reshape(-1, k, v).exp()
        return lam[0] if single else lam

    # ------------------------------------------------------------------ E-step
    def _fresh_gamma(self, X: sp.csr_matrix, n_piv: int) -> np.ndarray:
        lengths = np.asarray(X.sum(1)).ravel()
        start = self.alpha + lengths[None, :, None] / self.n_topics
        return np.ascontiguousarray(np.broadcast_to(start, (n_piv, X.shape[0], self.n_topics)))

    def _topics(self, lam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return _topics(lam, self.eta)

    def _e_step(self, X: sp.csr_matrix, beta: np.ndarray, start=None) -> np.ndarray:
        """gamma (P, D', K) optimal for the documents X under topics beta (P, V, K).

        From ``start`` (P, D', K) if given (copied), else fresh: alpha + N_d / K.
        """
        if start is None:
            gamma = self._fresh_gamma(X, beta.shape[0])
        else:
            gamma = np.array(start, dtype=np.float64, order="C")
        kernels.e_step(
            X.indptr,
            X.indices,
            X.data,
            beta,
            gamma,
            self.alpha,
            self.e_step_tol,
            self.max_e_step_iter,
        )
        return gamma

    def _optimal_gamma(self, lam: np.ndarray) -> np.ndarray:
        return self._e_step(self.X, self._topics(lam)[0])

    def optimal_gamma(self, x: torch.Tensor) -> torch.Tensor:
        """gamma (P, D, K) that the E-step finds for the topics of x (P, n), fresh start.

        These are the local parameters at which the profile mode evaluates the ELBO
        (any mode's x: only its log-lambda block is read).
        """
        x, single = self._batch(x)
        gamma = torch.from_numpy(self._optimal_gamma(self._lam_numpy(x)))
        return gamma[0] if single else gamma

    # ------------------------------------------------------------------ evaluation
    def _chunks(self, n_piv: int) -> list[slice]:
        k = self.n_topics
        if self.mode == "full":
            per_pivot = self.nnz * k
        else:
            per_pivot = self.nnz + 2 * k * self.n_words + self.n_docs * k
        step = max(1, self.max_chunk_elements // max(per_pivot, 1))
        return [slice(s, min(s + step, n_piv)) for s in range(0, n_piv, step)]

    def _profile_numpy(self, lam: np.ndarray, need_grad: bool, gamma_start=None):
        """Profile ELBO (P,) at lambda (P, K, V), d/dlog lambda (P, K, V) if asked, gamma.

        ``gamma_start`` (P, D, K): where the E-step starts (default: fresh).
        """
        X = self.X
        beta, topic_term = self._topics(lam)
        gamma = self._e_step(X, beta, gamma_start)
        ratio = np.empty((lam.shape[0], self.nnz))
        docs = kernels.doc_terms(X.indptr, X.indices, X.data, beta, gamma, self.alpha, ratio)
        values = docs.sum(1) + topic_term
        if not need_grad:
            return values, None, gamma
        grad = np.empty_like(lam)
        kernels.sufficient_stats(
            self._col_ptr, self._col_docs, self._col_pos, ratio, gamma, beta, grad
        )
        # Envelope theorem: the partial derivative at the optimal (gamma, phi).
        kernels.dirichlet_gradient(lam, self.eta, grad)
        return values, grad, gamma

    def _full_values(self, blocks: dict[str, torch.Tensor]) -> torch.Tensor:
        """The ELBO with explicit phi (pure torch, differentiable), (P,).

        ``blocks``: ``log_lam`` (P, K, V), ``log_gamma`` (P, D, K), ``logits`` (P, nnz, K).
        """
        lam, gamma = blocks["log_lam"].exp(), blocks["log_gamma"].exp()
        elog_beta = dirichlet_expectation(lam)  # (P, K, V)
        elog_theta = dirichlet_expectation(gamma)  # (P, D, K)
        log_phi = torch.log_softmax(blocks["logits"], -1)  # (P, nnz, K)
        nphi = log_phi.exp() * self._counts_t[:, None]
        pair = elog_theta[:, self._rows_t] + elog_beta.transpose(1, 2)[:, self._cols_t]
        words = (nphi * (pair - log_phi)).sum((1, 2))
        return (
            words
            + _dirichlet_kl_term(self.alpha, gamma, elog_theta)
            + _dirichlet_kl_term(self.eta, lam, elog_beta)
        )

    def _memo_key(self, row: np.ndarray) -> bytes:
        digest = hashlib.blake2b(row.tobytes(), digest_size=20)
        digest.update(repr((self.alpha, self.eta, self.e_step_tol, self.max_e_step_iter)).encode())
        return digest.digest()

    def _profile_call(self, x: torch.Tensor, need_grad: bool) -> torch.Tensor:
        """Profile values (P,), with the envelope gradient attached when asked.

        Rows evaluated by the previous call are taken from it (see :meth:`__call__`);
        with ``warm_start`` the others start their E-step from the gamma of the nearest
        row (Euclidean, in x) of the previous call.
        """
        xn = x.detach().to("cpu", torch.float64).numpy()
        keys = [self._memo_key(row) for row in xn]
        todo = [
            i
            for i, key in enumerate(keys)
            if key not in self._memo or (need_grad and self._memo[key][1] is None)
        ]
        nearest = None
        if self.warm_start and todo and self._previous is not None:
            prev_x, _ = self._previous
            dist2 = (
                (xn[todo] ** 2).sum(1)[:, None] + (prev_x**2).sum(1)[None] - 2 * xn[todo] @ prev_x.T
            )
            nearest = dict(zip(todo, dist2.argmin(1).tolist(), strict=True))
        k, v = self.n_topics, self.n_words
        for c in self._chunks(len(todo)):
            rows = todo[c]
            lam = np.exp(xn[rows].reshape(-1, k, v))
            start = None
            if nearest is not None:
                start = self._previous[1][[nearest[i] for i in rows]]
            vals, g, gamma = self._profile_numpy(lam, need_grad, start)
            for j, i in enumerate(rows):
                grad_row = None if g is None else g[j].ravel()
                self._memo[keys[i]] = (vals[j], grad_row, gamma[j] if self.warm_start else None)
        entries = [self._memo[key] for key in keys]
        self._memo = dict(zip(keys, entries, strict=True))  # this call's rows only
        if self.warm_start:
            self._previous = (xn.copy(), np.stack([e[2] for e in entries]))
        out = torch.tensor([e[0] for e in entries], dtype=x.dtype, device=x.device)
        if need_grad:
            grad = torch.from_numpy(np.stack([e[1] for e in entries]))
            out = _Precomputed.apply(x, out, grad.to(device=x.device, dtype=x.dtype))
        return out

    def _full_numpy(self, xn: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """Full-mode ELBO (P,) at flat vectors xn (P, n); its gradient into grad (P, n).

        Compiled, with the closed-form gradient of :mod:`elbolab.models._lda_full_kernels`.
        """
        k, v, n_piv = self.n_topics, self.n_words, xn.shape[0]
        lam = np.exp(xn[:, : k * v]).reshape(n_piv, k, v)
        elog_beta = np.empty((n_piv, v, k))
        topic_term = kernels.topic_terms(lam, self.eta, elog_beta, False)
        stats = np.empty((n_piv, _FULL_BLOCKS, v, k))
        X = self.X
        docs = full_kernels.full_terms(
            X.indptr,
            X.indices,
            X.data,
            elog_beta,
            xn,
            k * v,
            k * v + self.n_docs * k,
            self.alpha,
            grad,
            stats,
        )
        stats = np.ascontiguousarray(stats.sum(1).transpose(0, 2, 1))
        kernels.dirichlet_gradient(lam, self.eta, stats)  # the statistics become d/d log lambda
        grad[:, : k * v] = stats.reshape(n_piv, k * v)
        return docs.sum(1) + topic_term

    def _full_call(self, x: torch.Tensor, need_grad: bool) -> torch.Tensor:
        if self.full_gradient == "autograd":
            return self._full_autograd_call(x, need_grad)
        xn = np.ascontiguousarray(x.detach().to("cpu", torch.float64).numpy())
        grad = np.empty_like(xn)
        values = np.empty(xn.shape[0])
        for c in self._chunks(xn.shape[0]):
            values[c] = self._full_numpy(xn[c], grad[c])
        out = torch.from_numpy(values).to(device=x.device, dtype=x.dtype)
        if need_grad:
            grad_t = torch.from_numpy(grad).to(device=x.device, dtype=x.dtype)
            out = _Precomputed.apply(x, out, grad_t)
        return out

    def _full_autograd_call(self, x: torch.Tensor, need_grad: bool) -> torch.Tensor:
        chunks = self._chunks(x.shape[0])
        if not need_grad:
            with torch.no_grad():
                values = torch.cat(
                    [self._full_values(self.flattener.unflatten(x[c].double())) for c in chunks]
                )
            return values.to(x.dtype)
        if len(chunks) == 1:
            return self._full_values(self.flattener.unflatten(x.double())).to(x.dtype)
        # Several chunks: each chunk's gradient right after its forward pass, so that one
        # chunk's (P, nnz, K) intermediates are alive at a time. The blocks are the leaves
        # (not slices of one leaf), which spares the zero-filled (P, n) gradient per block.
        parts, grads = [], []
        for c in chunks:
            with torch.enable_grad():
                blocks = {
                    name: t.detach().double().requires_grad_(True)
                    for name, t in self.flattener.unflatten(x[c]).items()
                }
                v = self._full_values(blocks)
                g = torch.autograd.grad(v.sum(), list(blocks.values()))
            parts.append(v.detach())
            grads.append(torch.cat([t.reshape(t.shape[0], -1) for t in g], dim=1))
        values = torch.cat(parts).to(x.dtype)
        return _Precomputed.apply(x, values, torch.cat(grads).to(x.dtype))

    def __call__(self, x) -> torch.Tensor:
        """The ELBO (nats, every normalizer) at each row of x.

        Parameters
        ----------
        x : (P, n) tensor (or (n,))
            One vector per pivot (see :meth:`to_vector`); computed in float64 and
            returned in x's dtype.

        Returns
        -------
        (P,) tensor (or a scalar), differentiable with respect to x (once): profile mode
        by the envelope-theorem closed form, full mode by its closed form (or autograd
        with ``full_gradient="autograd"``).

        Notes
        -----
        Rows act independently: row i of ``f(x)`` is ``f(x[i:i+1])`` (bit for bit in
        profile mode). The profile mode therefore keeps the previous call's rows with
        their values and gradients and reuses them for bit-identical rows: a memo of a
        deterministic function, which saves NEB the E-steps of its fixed endpoints.
        With ``full_gradient="autograd"`` a batch that fits in one chunk
        (``max_chunk_elements``) has an ordinary autograd graph; a larger one gets its
        gradient chunk by chunk in the forward pass and is differentiable once only.
        """
        x, single = self._batch(x)
        need_grad = torch.is_grad_enabled() and x.requires_grad
        if self.mode == "profile":
            values = self._profile_call(x, need_grad)
        else:
            values = self._full_call(x, need_grad)
        bad = torch.isnan(values.detach()) | (values.detach() == math.inf)
        if bool(bad.any()):
            rows = torch.nonzero(bad).flatten().tolist()
            low, high = float(x.detach().min()), float(x.detach().max())
            raise NumericalError(
                f"LDAObjective: the ELBO is NaN or +inf at row(s) {rows} of x, whose entries span "
                f"[{low:.4g}, {high:.4g}]: log-parameters that far out leave float64's range "
                "(lambda = exp(x) overflows, underflows or loses every digit)"
            )
        return values[0] if single else values

    # ------------------------------------------------------------------ prediction
    def heldout_scores(self, x: torch.Tensor, observed: Counts, heldout: Counts) -> dict:
        """Document-completion log-likelihood of held-out tokens at each pivot.

        As :meth:`elbolab.models.lda.LDA.completion_log_likelihood`, batched over
        pivots: for the topics lambda of each row of x, gamma of every test document is
        inferred from its observed part (fresh E-step, topics fixed), and every held-out
        token w of document d scores log sum_k E[theta_dk] E[beta_kw] with the posterior
        means E[theta_d] = gamma_d / sum(gamma_d), E[beta_k] = lambda_k / sum(lambda_k).

        Parameters
        ----------
        x : (P, n) tensor
        observed, heldout : Corpus or sparse (D', V)
            The two parts of the same test documents (``Corpus.completion_split``).

        Returns
        -------
        dict
            ``log_likelihood`` (P,) float64 ndarray (total nats), ``per_token`` (P,)
            nats per held-out token, ``perplexity`` (P,) exp(-per_token),
            ``n_tokens`` and ``n_docs`` (ints), ``log_base`` "e".
        """
        x, _ = self._batch(x)
        obs, held = _as_csr(observed, "observed"), _as_csr(heldout, "heldout")
        if held.shape != obs.shape:
            raise DataError(
                f"observed part {obs.shape} and held-out part {held.shape} differ in shape"
            )
        if obs.shape[1] != self.n_words:
            raise DataError(
                f"the test documents have {obs.shape[1]} words but the objective has {self.n_words}"
            )
        total = np.zeros(x.shape[0])
        for c in self._chunks(x.shape[0]):
            lam = self._lam_numpy(x[c])
            gamma = self._e_step(obs, self._topics(lam)[0])
            total[c] = kernels.completion_terms(
                held.indptr, held.indices, held.data, gamma, lam
            ).sum(1)
        n_tokens = int(held.data.sum())
        per_token = total / n_tokens if n_tokens else np.full_like(total, np.nan)
        return {
            "log_likelihood": total,
            "per_token": per_token,
            "perplexity": np.exp(-per_token),
            "n_tokens": n_tokens,
            "n_docs": int(held.shape[0]),
            "log_base": "e",
        }
