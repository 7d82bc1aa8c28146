"""Label switching: match the topics (rows) of one solution to those of another.

Two maxima of a mixture-type ELBO (LDA's topics lambda_k, Blei et al. 2003) can be the
same solution with the components relabelled. :func:`align` finds the relabelling of
``b`` that best matches ``a`` (Hungarian algorithm, Kuhn 1955, via
``scipy.optimize.linear_sum_assignment``) on a distance between the rows seen as
probability distributions; the matched distances then say whether the two solutions are
permuted copies (all distances ~ 0) or genuinely different.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from .. import checks
from ..errors import ConfigError

if TYPE_CHECKING:
    from .._types import ArrayOrTensor

__all__ = [
    "align",
    "apply_permutation",
    "distance_matrix",
    "invert_permutation",
    "permute_params",
]

_METRICS = ("hellinger", "skl")


def _rows(x, name: str) -> np.ndarray:
    x = checks.real_tensor(x, f"align: {name}", ConfigError).detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ConfigError(f"align: {name} must be a non-empty (K, V) matrix, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ConfigError(f"align: {name} has NaN or infinite entries")
    if np.any(x < 0):
        raise ConfigError(f"align: {name} has negative entries; rows must be nonnegative")
    sums = x.sum(axis=1, keepdims=True)
    if np.any(sums <= 0):
        bad = np.flatnonzero(sums[:, 0] <= 0)
        raise ConfigError(f"align: rows {bad.tolist()} of {name} sum to zero")
    return x / sums


def _check(a, b, metric: str, floor) -> tuple[np.ndarray, np.ndarray, float]:
    """The row-normalized a and b and ``floor`` as a float, all checked."""
    if metric not in _METRICS:
        raise ConfigError(f"align: metric must be one of {_METRICS}, got {metric!r}")
    floor = checks.positive(floor, "align: floor")
    p, q = _rows(a, "a"), _rows(b, "b")
    if p.shape != q.shape:
        raise ConfigError(f"align: a and b must have the same shape, got {p.shape} and {q.shape}")
    return p, q, floor


def _floored(p: np.ndarray, floor: float) -> np.ndarray:
    # A floor keeps the log finite where a topic gives a word zero mass; renormalizing
    # keeps the rows distributions so SKL(p, p) is exactly 0.
    p = np.maximum(p, floor)
    return p / p.sum(axis=1, keepdims=True)


def distance_matrix(
    a: ArrayOrTensor, b: ArrayOrTensor, metric: str = "hellinger", floor: float = 1e-10
) -> np.ndarray:
    """Distances between every row of ``a`` and every row of ``b`` (rows normalized).

    Parameters
    ----------
    a, b : (K, V) array or tensor
        Nonnegative rows: topic-word distributions beta_k, or unnormalized Dirichlet
        parameters lambda_k (Blei et al. 2003); each row is divided by its sum.
    metric : {"hellinger", "skl"}
        ``"hellinger"``: H(p, q) = ||sqrt(p) - sqrt(q)||_2 / sqrt(2), in [0, 1].
        ``"skl"``: symmetric KL, KL(p || q) + KL(q || p) = sum_v (p_v - q_v) log(p_v / q_v)
        in nats, after flooring both rows at ``floor`` and renormalizing.
    floor : float
        Smallest probability used by ``"skl"``.

    Returns
    -------
    D : (K, K) ndarray
        ``D[i, j] = d(a_i, b_j)``.
    """
    p, q, floor = _check(a, b, metric, floor)
    return _distances(p, q, metric, floor)


def _distances(p: np.ndarray, q: np.ndarray, metric: str, floor: float) -> np.ndarray:
    if metric == "hellinger":
        # ||sqrt p - sqrt q||^2 = 2 - 2 <sqrt p, sqrt q> for distributions; a matmul
        # instead of a (K, K, V) tensor keeps memory at O(K V).
        bc = np.sqrt(p) @ np.sqrt(q).T
        return np.sqrt(np.clip(1.0 - bc, 0.0, None))
    p, q = _floored(p, floor), _floored(q, floor)
    lp, lq = np.log(p), np.log(q)
    self_p = np.sum(p * lp, axis=1)
    self_q = np.sum(q * lq, axis=1)
    d = self_p[:, None] + self_q[None, :] - p @ lq.T - lp @ q.T
    return np.clip(d, 0.0, None)


def _paired(p: np.ndarray, q: np.ndarray, metric: str, floor: float) -> np.ndarray:
    # Row-by-row distances computed directly (not from the matmul form), so identical
    # rows give exactly 0.
    if metric == "hellinger":
        return np.linalg.norm(np.sqrt(p) - np.sqrt(q), axis=1) / np.sqrt(2.0)
    p, q = _floored(p, floor), _floored(q, floor)
    return np.clip(np.sum((p - q) * (np.log(p) - np.log(q)), axis=1), 0.0, None)


def align(
    a: ArrayOrTensor, b: ArrayOrTensor, metric: str = "hellinger", floor: float = 1e-10
) -> tuple[np.ndarray, np.ndarray]:
    """Permutation of the rows of ``b`` that best matches the rows of ``a``.

    Solves min over permutations pi of sum_i d(a_i, b_pi(i)) exactly with the Hungarian
    algorithm (``scipy.optimize.linear_sum_assignment``) on :func:`distance_matrix`.

    Parameters
    ----------
    a, b : (K, V) array or tensor
        Nonnegative rows (topic-word distributions beta, or lambda; rows are normalized).
    metric : {"hellinger", "skl"}
        Row distance, see :func:`distance_matrix`.
    floor : float
        Probability floor for ``"skl"``.

    Returns
    -------
    perm : (K,) int64 ndarray
        ``b[perm]`` is aligned with ``a``: row ``i`` of ``a`` is matched to row ``perm[i]``
        of ``b``.
    distances : (K,) float64 ndarray
        ``distances[i] = d(a_i, b_perm[i])`` (exactly 0 for identical rows).

    Examples
    --------
    >>> perm, dist = align(lam_run1, lam_run2)
    >>> lam_run2_aligned = apply_permutation(lam_run2, perm, axis=0)
    >>> gamma_run2_aligned = apply_permutation(gamma_run2, perm, axis=1)   # (D, K)
    """
    p, q, floor = _check(a, b, metric, floor)
    rows, cols = linear_sum_assignment(_distances(p, q, metric, floor))
    perm = np.empty(p.shape[0], dtype=np.int64)
    perm[rows] = cols
    return perm, _paired(p, q[perm], metric, floor)


def _perm_index(perm, k: int | None = None) -> np.ndarray:
    perm = np.asarray(perm.detach().cpu() if isinstance(perm, torch.Tensor) else perm)
    if perm.ndim != 1 or not np.issubdtype(perm.dtype, np.integer):
        raise ConfigError("permutation must be a 1-D integer array")
    n = perm.shape[0]
    if k is not None and n != k:
        raise ConfigError(f"permutation has length {n}, but the permuted axis has size {k}")
    if not np.array_equal(np.sort(perm), np.arange(n)):
        raise ConfigError("permutation must contain each of 0..K-1 exactly once")
    return perm.astype(np.int64)


def invert_permutation(perm: ArrayOrTensor) -> np.ndarray:
    """The inverse permutation: ``inv[perm[i]] = i``, so ``x[perm][inv]`` is ``x``."""
    perm = _perm_index(perm)
    inv = np.empty_like(perm)
    inv[perm] = np.arange(perm.shape[0])
    return inv


def apply_permutation(
    x: np.ndarray | torch.Tensor, perm: ArrayOrTensor, axis: int = 0
) -> np.ndarray | torch.Tensor:
    """Reorder ``x`` along ``axis`` by ``perm`` (result along axis: ``x[..., perm[i], ...]``).

    Parameters
    ----------
    x : ndarray or tensor
        E.g. lambda ``(K, V)`` with ``axis=0``, gamma ``(D, K)`` with ``axis=1``.
    perm : (K,) int array
        From :func:`align`.
    axis : int

    Returns
    -------
    Same type as ``x``.
    """
    axis = checks.integer(axis, "axis")
    if isinstance(x, torch.Tensor):
        if not -x.dim() <= axis < x.dim():
            raise ConfigError(f"apply_permutation: axis {axis} out of range for {x.dim()}-D input")
        idx = torch.as_tensor(_perm_index(perm, x.shape[axis]), device=x.device)
        return x.index_select(axis, idx)
    x = np.asarray(x)
    if not -x.ndim <= axis < x.ndim:
        raise ConfigError(f"apply_permutation: axis {axis} out of range for {x.ndim}-D input")
    return np.take(x, _perm_index(perm, x.shape[axis]), axis=axis)


def permute_params(params: Mapping, perm: ArrayOrTensor, axes: Mapping[str, int]) -> dict:
    """Apply one relabelling to several parameters of the same model.

    Parameters
    ----------
    params : mapping of str to array or tensor
        E.g. ``{"lam": (K, V), "gamma": (D, K)}``.
    perm : (K,) int array
        From :func:`align`.
    axes : mapping of str to int
        The component axis of each parameter to permute, e.g. ``{"lam": 0, "gamma": 1}``;
        parameters not named here are copied unchanged (by reference).

    Returns
    -------
    dict
    """
    unknown = [k for k in axes if k not in params]
    if unknown:
        raise ConfigError(f"permute_params: axes names unknown parameters {unknown}")
    return {k: apply_permutation(v, perm, axes[k]) if k in axes else v for k, v in params.items()}
