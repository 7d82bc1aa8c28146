"""Compiled per-document loops for LDA's E-step (numba, parallel over documents).

The E-step is a fixed-point iteration per document whose sweep count varies from a
handful to a hundred. As batched tensor ops every sweep touches (nnz, K) temporaries
for all documents still moving; this kernel instead keeps one document's K numbers
in registers and reads the topic rows it needs from cache, and lets each (restart,
document) pair stop on its own. On AP with K=10 it runs an E-step
about 5x faster than the best batched torch formulation we measured (gathers and
CSR products over the non-zeros).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np


@nb.njit(cache=True, inline="always", error_model="numpy")
def digamma(x: float) -> float:
    """psi(x) for x > 0: recurrence up to x >= 6, then the asymptotic series.

    Absolute error below 1e-14 on (1e-8, 1e8) (tested against scipy.special.psi).
    """
    result = 0.0
    while x < 6.0:
        result -= 1.0 / x
        x += 1.0
    inv = 1.0 / x
    inv2 = inv * inv
    series = inv2 * (
        1.0 / 12 - inv2 * (1.0 / 120 - inv2 * (1.0 / 252 - inv2 * (1.0 / 240 - inv2 * (1.0 / 132))))
    )
    return result + math.log(x) - 0.5 * inv - series


@nb.njit(cache=True, inline="always", error_model="numpy")
def _exp_elog(g, out):
    """out[k] = exp(E[log theta_k]) under Dir(g)."""
    total = digamma(g.sum())
    for k in range(g.shape[0]):
        out[k] = math.exp(digamma(g[k]) - total)


# Reassociation lets LLVM vectorize the K-long dot products; no flag that assumes
# finite values, so an overflow still surfaces as inf/nan and is caught by fit().
_FAST = {"reassoc", "contract"}


@nb.njit(parallel=True, cache=True, error_model="numpy", fastmath=_FAST)
def e_step(indptr, indices, counts, exp_elog_beta, gamma, alpha, tol, max_iter):
    """Coordinate ascent on (phi, gamma) for every (restart, document), topics fixed.

    Parameters
    ----------
    indptr, indices, counts : CSR arrays of the (D, V) count matrix.
    exp_elog_beta : (R, V, K) exp(E[log beta_kw]), word-major for contiguous reads.
    gamma : (R, D, K) starting point, overwritten with the result.
    alpha : symmetric Dirichlet prior on theta.
    tol : a document stops when the mean absolute change of its gamma is below tol.
    max_iter : cap on sweeps per document.

    Returns
    -------
    (R, D) int array, sweeps each document took.
    """
    n_restarts, n_docs, n_topics = gamma.shape
    sweeps = np.zeros((n_restarts, n_docs), dtype=np.int64)
    for job in nb.prange(n_restarts * n_docs):
        r = job // n_docs
        d = job % n_docs
        g = gamma[r, d]
        start, end = indptr[d], indptr[d + 1]
        # This document's topic columns, contiguous: every sweep reads them again.
        beta = np.empty((end - start, n_topics))
        for j in range(end - start):
            beta[j] = exp_elog_beta[r, indices[start + j]]
        n = counts[start:end]
        et = np.empty(n_topics)
        acc = np.empty(n_topics)
        for it in range(max_iter):
            _exp_elog(g, et)
            acc[:] = 0.0
            for j in range(end - start):
                norm = 0.0
                for k in range(n_topics):
                    norm += et[k] * beta[j, k]
                ratio = n[j] / norm
                for k in range(n_topics):
                    acc[k] += ratio * beta[j, k]
            change = 0.0
            for k in range(n_topics):
                new = alpha + et[k] * acc[k]
                change += abs(new - g[k])
                g[k] = new
            sweeps[r, d] = it + 1
            if change < tol * n_topics:
                break
    return sweeps


@nb.njit(parallel=True, cache=True, error_model="numpy")
def word_terms(indptr, indices, counts, exp_elog_beta, gamma, ratio_out):
    """Per-document word term of the ELBO at the optimal phi, and n_dw / phinorm_dw.

    For each (restart r, document d): sum_w n_dw log sum_k exp(E[log theta_dk] +
    E[log beta_kw]). ``ratio_out`` (R, nnz) receives n_dw / phinorm_dw, the weights of
    the M-step. Returns (R, D).
    """
    n_restarts, n_docs, n_topics = gamma.shape
    out = np.zeros((n_restarts, n_docs))
    for job in nb.prange(n_restarts * n_docs):
        r = job // n_docs
        d = job % n_docs
        beta = exp_elog_beta[r]
        et = np.empty(n_topics)
        _exp_elog(gamma[r, d], et)
        total = 0.0
        for j in range(indptr[d], indptr[d + 1]):
            w = indices[j]
            norm = 0.0
            for k in range(n_topics):
                norm += et[k] * beta[w, k]
            total += counts[j] * math.log(norm)
            ratio_out[r, j] = counts[j] / norm
        out[r, d] = total
    return out
