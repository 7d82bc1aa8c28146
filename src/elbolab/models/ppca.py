"""Probabilistic PCA: closed-form maximum likelihood, exact log p(x), exact posterior.

Model (Tipping & Bishop 1999, "Probabilistic principal component analysis", JRSS B 61)::

    z ~ N(0, I_q),    x | z ~ N(W z + mu, sigma^2 I_D)
    =>  x ~ N(mu, C),  C = W W^T + sigma^2 I_D
        z | x ~ N(M^{-1} W^T (x - mu), sigma^2 M^{-1}),  M = W^T W + sigma^2 I_q

Maximum likelihood (Tipping & Bishop 1999, eqs. 7-8). With the sample covariance

    S = (1/N) sum_n (x_n - xbar)(x_n - xbar)^T          (normalised by N, not N - 1)

and its eigenvalues lambda_1 >= ... >= lambda_D with eigenvectors U,

    mu = xbar,  sigma^2 = (1/(D - q)) sum_{j>q} lambda_j,  W = U_q (L_q - sigma^2 I)^{1/2} R

for any rotation R (we return R = I, so W has orthogonal columns). At this point
tr(C^{-1} S) = D and the total log-likelihood is

    log p(X) = -N/2 (D log(2 pi) + sum_{j<=q} log lambda_j + (D - q) log sigma^2 + D).

Why N and not N - 1. The maximum of log p(X) over (mu, W, sigma^2) is reached at the
eigen-decomposition of S normalised by N. Normalising by N - 1 (as ``np.cov`` and
scikit-learn's ``PCA`` do) scales every eigenvalue by c = N / (N - 1), hence C by c;
those parameters score (D/2)(log c + 1/c - 1) nats per datum *below* the maximum, and
the closed form above, evaluated with the N - 1 eigenvalues (which then assumes
tr(C^{-1} S) = D although it is D / c), understates their true log-likelihood by
D / (2N) nats per datum. A bound that is exact at those parameters (the ELBO of a linear
VAE with the optimal encoder) then appears to exceed the "exact" log-likelihood by
D / (2N): 0.32 nats for D = 784, N = 1225. ``tests/models/test_linear_vae.py`` pins this.

Numerics. ``marginal_log_prob`` never forms a D x D matrix: with the matrix determinant
lemma, log|C| = (D - q) log sigma^2 + log|M|, and with Woodbury,

    (x - mu)^T C^{-1} (x - mu) = |e - W zbar|^2 / sigma^2 + |zbar|^2,
    e = x - mu,  zbar = M^{-1} W^T e = argmin_z |e - W z|^2 + sigma^2 |z|^2,

a sum of two non-negative terms (no cancellation, unlike |e|^2 - e^T W M^{-1} W^T e).
zbar and log|M| come from a QR factorisation of the stacked (D + q, q) matrix
[W; sigma I_q] (R^T R = M), which avoids squaring W's condition number. Cost O(N D q +
D q^2), memory O(N D + D q), so D = 784 with q up to D - 1 and large D with small q are
both cheap. Everything is differentiable with torch autograd.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING

import numpy as np
import torch

from .. import checks
from ..errors import ConfigError, DataError

if TYPE_CHECKING:
    from .._types import ArrayOrTensor, Seed

__all__ = ["PPCA", "marginal_log_prob", "posterior"]

_LOG_2PI = math.log(2.0 * math.pi)
# Default floor on a learned sigma^2, relative to the largest eigenvalue of S. Data lying
# exactly in a q-dimensional subspace (where the likelihood is unbounded as sigma^2 -> 0)
# give a computed sigma^2 ~ eps^2 lambda_1 ~ 1e-32 lambda_1; genuine noise down to
# ~1e-19 lambda_1 is resolved, and marginal_log_prob stays accurate to ~1e-11 relative
# there (measured against the closed form). 1e-12 keeps far from both ends.
_REL_SIGMA2_FLOOR = 1e-12
# Below this ratio of mean discarded eigenvalue to lambda_1, the spectrum is recomputed
# by SVD (see _spectrum).
_SVD_SWITCH = 1e-8


def _as_sigma2(sigma2, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(sigma2, dtype=like.dtype, device=like.device)


def _check_params(x: torch.Tensor, mean: torch.Tensor, W: torch.Tensor) -> None:
    if x.ndim != 2:
        raise DataError(f"x must be 2-D (N, D), got shape {tuple(x.shape)}")
    if W.ndim != 2:
        raise ConfigError(f"W must be 2-D (D, q), got shape {tuple(W.shape)}")
    d = W.shape[0]
    if tuple(mean.shape) != (d,):
        raise ConfigError(
            f"mean must have shape ({d},) to match W {tuple(W.shape)}, got {tuple(mean.shape)}"
        )
    if x.shape[1] != d:
        raise DataError(f"x has {x.shape[1]} features but the model has D = {d}")


def _as_tensors(x, mean, W):
    """Tensors in W's floating dtype (x and mean follow W), shapes checked."""
    W = checks.real_tensor(W, "W", ConfigError)
    if not W.is_floating_point():
        W = W.to(torch.get_default_dtype())
    x = checks.real_tensor(x, "x").to(device=W.device, dtype=W.dtype)
    mean = checks.real_tensor(mean, "mean", ConfigError).to(device=W.device, dtype=W.dtype)
    _check_params(x, mean, W)
    if not bool(torch.isfinite(x).all()):
        raise DataError("x contains NaN or infinite values")
    return x, mean, W


def _ridge_qr(W: torch.Tensor, sigma2: torch.Tensor):
    """QR of A = [W; sigma I_q] (D + q, q): returns (Q_top (D, q), R (q, q)), R^T R = M."""
    q = W.shape[1]
    eye = torch.eye(q, dtype=W.dtype, device=W.device)
    A = torch.cat([W, torch.sqrt(sigma2) * eye], dim=0)
    Q, R = torch.linalg.qr(A, mode="reduced")
    return Q[: W.shape[0]], R


def _posterior_mean(e: torch.Tensor, W: torch.Tensor, sigma2: torch.Tensor):
    """zbar = M^{-1} W^T e for each row of e (N, D), and R with R^T R = M."""
    Q_top, R = _ridge_qr(W, sigma2)
    # The least-squares solution of [W; sigma I] z = [e; 0] is R^{-1} Q^T [e; 0].
    rhs = (e @ Q_top).T  # (q, N)
    zbar = torch.linalg.solve_triangular(R, rhs, upper=True).T
    return zbar, R


def marginal_log_prob(x, mean, W, sigma2) -> torch.Tensor:
    """Exact log p(x) = log N(x; mu, W W^T + sigma^2 I) of each row, in nats.

    Parameters
    ----------
    x : (N, D) tensor
        Data.
    mean : (D,) tensor
        mu, the data-space offset.
    W : (D, q) tensor
        Factor loadings W (Tipping & Bishop 1999); the columns need not be orthogonal
        and may be zero.
    sigma2 : float or 0-dim tensor
        Observation noise variance sigma^2 > 0.

    Returns
    -------
    (N,) tensor
        Per-datum log-density, differentiable in every argument. Computed by the
        determinant lemma and Woodbury identity (module docstring) in O(N D q).
    """
    x, mean, W = _as_tensors(x, mean, W)
    sigma2 = _as_sigma2(sigma2, W)
    d, q = W.shape
    e = x - mean
    zbar, R = _posterior_mean(e, W, sigma2)
    resid = e - zbar @ W.T
    quad = (resid * resid).sum(-1) / sigma2 + (zbar * zbar).sum(-1)
    logdet = (d - q) * torch.log(sigma2) + 2.0 * torch.log(torch.abs(torch.diagonal(R))).sum()
    return -0.5 * (d * _LOG_2PI + logdet + quad)


def posterior(
    x: torch.Tensor, mean: torch.Tensor, W: torch.Tensor, sigma2: float | torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The exact posterior p(z | x) = N(M^{-1} W^T (x - mu), sigma^2 M^{-1}).

    Parameters
    ----------
    x : (N, D) tensor
    mean : (D,) tensor, mu
    W : (D, q) tensor
    sigma2 : float or 0-dim tensor, sigma^2 > 0

    Returns
    -------
    mean : (N, q) tensor
        Posterior means M^{-1} W^T (x_n - mu), M = W^T W + sigma^2 I.
    cov : (q, q) tensor
        Posterior covariance sigma^2 M^{-1}, the same for every x.
    """
    x, mean, W = _as_tensors(x, mean, W)
    sigma2 = _as_sigma2(sigma2, W)
    zbar, R = _posterior_mean(x - mean, W, sigma2)
    eye = torch.eye(W.shape[1], dtype=W.dtype, device=W.device)
    R_inv = torch.linalg.solve_triangular(R, eye, upper=True)
    cov = sigma2 * (R_inv @ R_inv.T)  # sigma^2 (R^T R)^{-1}
    return zbar, 0.5 * (cov + cov.T)


def _as_data(X, what: str = "X") -> np.ndarray:
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().numpy()
    if np.iscomplexobj(X):
        raise DataError(f"{what} must hold real numbers, got complex values")
    try:
        X = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{what} must be a numeric (N, D) array: {exc}") from None
    if X.ndim != 2:
        raise DataError(f"{what} must be 2-D (N, D), got shape {X.shape}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise DataError(f"{what} is empty (shape {X.shape})")
    if not np.all(np.isfinite(X)):
        raise DataError(f"{what} contains NaN or infinite values")
    return X


def _as_vector(a) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 1:
        raise ConfigError(f"mean must be 1-D (D,), got shape {a.shape}")
    return a


def _spectrum(Xc: np.ndarray, q: int) -> tuple[np.ndarray, np.ndarray]:
    """All D eigenvalues of S = Xc^T Xc / N (descending, >= 0) and the top-q eigenvectors.

    Returns (eigenvalues (D,), U (D, min(q, N))).

    For N > D, ``eigh`` of the formed S (fast: one Gram product). Its absolute error is
    ~ eps lambda_1 on every eigenvalue; the fitted log-likelihood is insensitive to it
    (log p is stationary at the maximum, so an error delta in sigma^2 costs O(delta^2)),
    but when the discarded eigenvalues are below ``_SVD_SWITCH`` lambda_1 (nearly
    noiseless data) the relative error of sigma^2 itself becomes visible, and the
    spectrum is recomputed as squared singular values of Xc (error ~ eps sqrt(lambda_1
    lambda_j)), via the (D, D) factor R of Xc = Q R so that no N x D matrix is formed.
    For N <= D the SVD of Xc is taken through the QR factorisation of Xc^T and the other
    D - N eigenvalues are exactly 0; no D x D matrix is formed.
    """
    n, d = Xc.shape
    if n > d:
        vals, vecs = np.linalg.eigh(Xc.T @ Xc / n)
        vals, vecs = np.maximum(vals[::-1], 0.0), vecs[:, ::-1]
        if vals[q:].mean() >= _SVD_SWITCH * vals[0]:
            return vals, np.ascontiguousarray(vecs[:, :q])
        _, s, vt = np.linalg.svd(np.linalg.qr(Xc, mode="r"))
        vecs = vt[:q].T
    else:
        # Xc^T = Q R (D, N), so Xc = R^T Q^T and its right singular vectors are Q V_R
        # (LAPACK's SVD of a wide matrix is several times slower than this QR).
        Q, R = np.linalg.qr(Xc.T)
        _, s, vt = np.linalg.svd(R.T)
        vecs = Q @ vt[:q].T
    vals = np.zeros(d)
    vals[: s.shape[0]] = s * s / n
    return vals, np.ascontiguousarray(vecs)


class PPCA:
    """Probabilistic PCA fitted by closed-form maximum likelihood (Tipping & Bishop 1999).

    Parameters
    ----------
    n_components : int
        q, the latent dimension; 1 <= q < D (checked in ``fit``).
    sigma2 : float, optional
        Fix the noise variance sigma^2 instead of learning it. W is then the maximum
        likelihood given sigma^2: U_q max(L_q - sigma^2, 0)^{1/2} (columns whose
        eigenvalue is below sigma^2 are zero).
    sigma2_floor : float, optional
        Lower bound on a *learned* sigma^2 (not applied to a fixed one). When the mean of
        the discarded eigenvalues falls below it (q >= rank of the centred data, e.g.
        N <= q + 1, or tiny eigenvalues) the likelihood is unbounded as sigma^2 -> 0;
        sigma^2 is then clipped to the floor with a ``RuntimeWarning`` and
        ``sigma2_clipped_`` is True, and the log-likelihoods depend on the floor.
        Default 1e-12 lambda_1. With 0 no floor applies (sigma^2 may then be at roundoff
        level, ~1e-32 lambda_1, for data in a subspace); a sigma^2 of exactly 0 raises
        ``DataError``.

    Attributes
    ----------
    mean_ : (D,) ndarray
        mu, the data mean.
    components_ : (D, q) ndarray
        W = U_q (L_q - sigma^2 I)^{1/2} (R = I: orthogonal columns, sorted by decreasing
        eigenvalue). Note: scikit-learn's ``PCA.components_`` is (q, D) and unit-norm;
        this is the pPCA loading matrix W itself. Columns beyond the rank of the data
        (q >= N) are zero.
    sigma2_ : float
        sigma^2 used by the model (after the floor).
    sigma2_ml_ : float
        The maximum-likelihood sigma^2 before the floor (or the fixed value).
    eigenvalues_ : (D,) ndarray
        All eigenvalues of the sample covariance S (normalised by N), descending.
    sigma2_clipped_ : bool
        Whether the floor was applied.
    n_samples_, n_features_in_ : int
        N and D of the training data.

    Notes
    -----
    scikit-learn's ``PCA(q, svd_solver="full")`` fits the same model with S normalised
    by N - 1 (and, when N < D, averages the discarded eigenvalues over min(N, D) - q
    instead of D - q); its ``score`` is then (D/2)(log c + 1/c - 1), c = N/(N - 1), below
    this maximum for N >= D. Its default solver for large inputs is randomized and
    approximate: on 1000 MNIST images with q = 200 it scored ~2 nats per datum below.

    References
    ----------
    Tipping, M. E. & Bishop, C. M. (1999). Probabilistic principal component analysis.
    JRSS B 61(3), 611-622. Bishop (2006), PRML section 12.2.
    """

    def __init__(
        self, n_components: int, sigma2: float | None = None, *, sigma2_floor: float | None = None
    ):
        self.n_components = checks.integer(n_components, "n_components", 1)
        self.sigma2 = None if sigma2 is None else checks.positive(sigma2, "sigma2")
        self.sigma2_floor = (
            None
            if sigma2_floor is None
            else checks.positive(sigma2_floor, "sigma2_floor", allow_zero=True)
        )

    # -- fitting ---------------------------------------------------------------------
    def fit(self, X: ArrayOrTensor, y: object = None) -> PPCA:
        """Closed-form maximum likelihood on X (N, D); returns self. ``y`` is ignored."""
        X = _as_data(X)
        n, d = X.shape
        q = self.n_components
        if q >= d:
            raise ConfigError(
                f"n_components must be < D = {d} (the number of features), "
                f"got {q}: with q >= D the noise variance is not identifiable"
            )
        if n < 2:
            raise DataError(f"pPCA needs at least 2 data points, got N = {n}")
        mean = X.mean(axis=0)
        Xc = X - mean
        vals, U = _spectrum(Xc, q)
        if vals[0] == 0.0:
            raise DataError(
                "every data point is identical (zero variance): the pPCA likelihood is unbounded"
            )
        if self.sigma2 is not None:
            sigma2_ml = sigma2 = self.sigma2
            clipped = False
            floor = None
        else:
            sigma2_ml = float(vals[q:].sum() / (d - q))
            floor = (
                _REL_SIGMA2_FLOOR * float(vals[0])
                if self.sigma2_floor is None
                else self.sigma2_floor
            )
            clipped = sigma2_ml < floor
            sigma2 = max(sigma2_ml, floor)
            if sigma2 <= 0.0:
                raise DataError(
                    f"the data lie in a subspace of dimension <= q = {q}, so the "
                    "maximum-likelihood sigma^2 is 0 and the likelihood is "
                    "unbounded; set sigma2_floor > 0 or choose a smaller q"
                )
            if clipped:
                warnings.warn(
                    f"PPCA: the maximum-likelihood sigma^2 = {sigma2_ml:.3g} (mean of the "
                    f"{d - q} discarded eigenvalues) is below the floor {floor:.3g}, so "
                    f"sigma^2 was clipped to the floor. The data (nearly) lie in a "
                    f"q = {q} dimensional subspace (q >= rank, N = {n}); the likelihood is "
                    "unbounded as sigma^2 -> 0 and the reported log-likelihoods depend on "
                    "sigma2_floor.",
                    RuntimeWarning,
                    stacklevel=2,
                )
        scale = np.sqrt(np.maximum(vals[: U.shape[1]] - sigma2, 0.0))
        W = np.zeros((d, q))
        W[:, : U.shape[1]] = U * scale
        self.mean_ = mean
        self.components_ = W
        self.sigma2_ = float(sigma2)
        self.sigma2_ml_ = float(sigma2_ml)
        self.sigma2_floor_ = floor
        self.sigma2_clipped_ = bool(clipped)
        self.eigenvalues_ = vals
        self.n_samples_ = n
        self.n_features_in_ = d
        return self

    @classmethod
    def from_params(cls, mean: ArrayOrTensor, W: ArrayOrTensor, sigma2: float) -> PPCA:
        """A PPCA with given parameters (mu (D,), W (D, q), sigma^2), as if fitted.

        ``eigenvalues_`` holds the eigenvalues of the model covariance C (descending) and
        ``n_samples_`` is None. Useful to score hand-made or perturbed parameters.
        """
        try:
            mean = _as_data(np.reshape(_as_vector(mean), (1, -1)), "mean")[0]
            W = _as_data(W, "W")
        except DataError as exc:  # bad parameters are a setting, not data
            raise ConfigError(str(exc)) from None
        if W.shape[0] != mean.shape[0]:
            raise ConfigError(f"W has {W.shape[0]} rows but mean has {mean.shape[0]} entries")
        self = cls(W.shape[1], checks.positive(sigma2, "sigma2"))
        self.mean_, self.components_ = mean.copy(), W.copy()
        self.sigma2_ = self.sigma2_ml_ = float(sigma2)
        self.sigma2_floor_, self.sigma2_clipped_ = None, False
        s = np.linalg.svd(W, compute_uv=False)
        self.eigenvalues_ = np.concatenate([s * s, np.zeros(W.shape[0] - s.shape[0])])
        self.eigenvalues_ = self.eigenvalues_ + self.sigma2_
        self.n_samples_, self.n_features_in_ = None, W.shape[0]
        return self

    # -- evaluation ------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "components_"):
            raise ConfigError("this PPCA is not fitted yet: call fit(X) first")

    def _tensors(self, X):
        self._check_fitted()
        X = _as_data(X)
        if X.shape[1] != self.n_features_in_:
            raise DataError(
                f"X has {X.shape[1]} features but the model was fitted with "
                f"D = {self.n_features_in_}"
            )
        return (
            torch.from_numpy(X),
            torch.from_numpy(self.mean_),
            torch.from_numpy(self.components_),
            self.sigma2_,
        )

    def score_samples(self, X: ArrayOrTensor) -> np.ndarray:
        """Per-datum exact log-likelihood log N(x_n; mu, C) in nats, (N,) ndarray."""
        with torch.no_grad():
            return marginal_log_prob(*self._tensors(X)).numpy()

    def score(self, X: ArrayOrTensor, y: object = None) -> float:
        """Mean per-datum log-likelihood in nats (as scikit-learn's ``PCA.score``)."""
        return float(self.score_samples(X).mean())

    def log_likelihood(self, X: ArrayOrTensor) -> float:
        """Total log-likelihood sum_n log p(x_n) in nats."""
        return float(self.score_samples(X).sum())

    def posterior(self, X: ArrayOrTensor) -> tuple[np.ndarray, np.ndarray]:
        """Exact p(z | x_n): means M^{-1} W^T (x_n - mu) (N, q) and covariance
        sigma^2 M^{-1} (q, q), shared by every x_n."""
        with torch.no_grad():
            m, c = posterior(*self._tensors(X))
        return m.numpy(), c.numpy()

    def transform(self, X: ArrayOrTensor) -> np.ndarray:
        """Posterior means E[z | x_n], (N, q)."""
        return self.posterior(X)[0]

    def get_covariance(self) -> np.ndarray:
        """The dense model covariance C = W W^T + sigma^2 I, (D, D). O(D^2) memory."""
        self._check_fitted()
        W = self.components_
        C = W @ W.T
        C[np.diag_indices_from(C)] += self.sigma2_
        return C

    def sample(self, n_samples: int, seed: Seed) -> np.ndarray:
        """Draw (n_samples, D) data x = mu + W z + sigma eps from the model.

        ``seed`` is an integer >= 0 or a ``numpy.random.Generator`` (required: None, a
        negative or a non-integer seed raises ConfigError; there is no global RNG).
        """
        self._check_fitted()
        n_samples = checks.integer(n_samples, "n_samples", 1)
        rng = checks.numpy_rng(seed, "seed")
        d, q = self.components_.shape
        z = rng.standard_normal((n_samples, q))
        eps = rng.standard_normal((n_samples, d))
        return self.mean_ + z @ self.components_.T + math.sqrt(self.sigma2_) * eps

    def __repr__(self) -> str:
        extra = "" if self.sigma2 is None else f", sigma2={self.sigma2!r}"
        return f"PPCA(n_components={self.n_components}{extra})"
