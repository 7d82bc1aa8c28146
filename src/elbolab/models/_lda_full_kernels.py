"""Compiled value and closed-form gradient of LDA's ELBO with explicit responsibilities phi.

The full-mode landscape objective (:mod:`elbolab.landscape.lda_objective`) evaluates the
ELBO at an arbitrary (lambda, gamma, phi), phi given by logits at each non-zero (d, w),
and needs its gradient. Differentiated by hand (psi1 = trigamma, A_dwk the bracket)::

    ELBO = sum_{d,w} n_dw sum_k phi_dwk A_dwk + Dirichlet terms,
    A_dwk = E[log theta_dk] + E[log beta_kw] - log phi_dwk

    d/d logit_dwk    = n_dw phi_dwk (A_dwk - sum_j phi_dwj A_dwj)      (softmax chain rule)
    d/d gamma_dk     = psi1(gamma_dk) r_dk - psi1(sum_k gamma_dk) sum_k' r_dk',
                       r_dk = alpha + sum_w n_dw phi_dwk - gamma_dk
    d/d lambda_kw    = the same with r_kw = eta + sum_d n_dw phi_dwk - lambda_kw

and d/d log gamma = gamma * d/d gamma (likewise lambda). The lambda part is the profile
mode's envelope gradient with phi given instead of optimal.
One pass over the non-zeros computes the value, the logit and gamma gradients and the
topic statistics sum_d n_dw phi_dwk, with one exp per (non-zero, topic).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from ._lda_kernels import _FAST, digamma, trigamma


@nb.njit(parallel=True, cache=True, error_model="numpy", fastmath=_FAST)
def full_terms(indptr, indices, counts, elog_beta, x, gamma_at, logits_at, alpha, grad, stats):
    """Per-document ELBO terms at explicit phi, their gradients and the topic statistics.

    The parameters are read from, and their gradients written to, rows of flat vectors,
    so that the caller's (P, n) arrays are used in place, without copies. Parallel over
    (pivot, block of documents); each job sums its own topic statistics.

    Parameters
    ----------
    indptr, indices, counts : CSR arrays of the (D, V) counts; non-zero j is row j of phi.
    elog_beta : (P, V, K) E[log beta_kw], word-major.
    x : (P, n) flat vectors: log gamma (D, K) from column ``gamma_at``, the logits
        (nnz, K) from column ``logits_at``, both row-major; phi_j = softmax(logits_j).
    alpha : symmetric Dirichlet prior on theta.
    grad : (P, n) out: d ELBO / d log gamma and d ELBO / d logits in the same places
        (the other columns are left alone).
    stats : (P, B, V, K) out: sum_d n_dw phi_dwk over the documents of block b of B
        (block b: documents b D // B to (b + 1) D // B - 1); their sum over b is the M-step's s_kw.

    Returns
    -------
    (P, D): sum_w n_dw sum_k phi_dwk A_dwk + E[log Dir(theta_d | alpha)]
    - E[log Dir(theta_d | gamma_d)], with every normalizer.
    """
    n_piv, n_blocks = stats.shape[0], stats.shape[1]
    n_docs = indptr.shape[0] - 1
    n_topics = elog_beta.shape[2]
    out = np.zeros((n_piv, n_docs))
    prior_norm = math.lgamma(n_topics * alpha) - n_topics * math.lgamma(alpha)
    for job in nb.prange(n_piv * n_blocks):
        p = job // n_blocks
        b = job % n_blocks
        acc = stats[p, b]
        acc[:] = 0.0
        g = np.empty(n_topics)
        elog_theta = np.empty(n_topics)
        resid = np.empty(n_topics)
        nphi = np.empty(n_topics)
        bracket = np.empty(n_topics)
        for d in range(b * n_docs // n_blocks, (b + 1) * n_docs // n_blocks):
            g_sum = 0.0
            for k in range(n_topics):
                g[k] = math.exp(x[p, gamma_at + d * n_topics + k])
                g_sum += g[k]
            psi_sum = digamma(g_sum)
            for k in range(n_topics):
                elog_theta[k] = digamma(g[k]) - psi_sum
                resid[k] = alpha - g[k]
            total = 0.0
            for j in range(indptr[d], indptr[d + 1]):
                w = indices[j]
                n = counts[j]
                at = logits_at + j * n_topics
                top = x[p, at]
                for k in range(1, n_topics):
                    top = max(top, x[p, at + k])
                norm = 0.0
                for k in range(n_topics):
                    nphi[k] = math.exp(x[p, at + k] - top)
                    norm += nphi[k]
                log_norm = top + math.log(norm)
                scale = n / norm
                mean = 0.0  # sum_k phi_k A_k, times n
                for k in range(n_topics):
                    nphi[k] *= scale
                    bracket[k] = elog_theta[k] + elog_beta[p, w, k] - (x[p, at + k] - log_norm)
                    mean += nphi[k] * bracket[k]
                total += mean
                mean /= n
                for k in range(n_topics):
                    grad[p, at + k] = nphi[k] * (bracket[k] - mean)
                    resid[k] += nphi[k]
                    acc[w, k] += nphi[k]
            total += prior_norm - math.lgamma(g_sum)
            resid_sum = 0.0
            for k in range(n_topics):
                total += (alpha - g[k]) * elog_theta[k] + math.lgamma(g[k])
                resid_sum += resid[k]
            shared = trigamma(g_sum) * resid_sum
            for k in range(n_topics):
                grad[p, gamma_at + d * n_topics + k] = g[k] * (trigamma(g[k]) * resid[k] - shared)
            out[p, d] = total
    return out
