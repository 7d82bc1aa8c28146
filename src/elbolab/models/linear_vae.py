"""The linear VAE of Lucas, Tucker, Grosse & Norouzi (2019), with its closed-form ELBO.

Model and variational family ("Don't Blame the ELBO! A Linear VAE Perspective on
Posterior Collapse", NeurIPS 2019, section 4)::

    p(z) = N(0, I_q),   p(x | z) = N(W z + mu, sigma^2 I_D)
    q(z | x) = N(V (x - mu), D),   D = diag(d_1..d_q), shared by every x

Marginally x ~ N(mu, W W^T + sigma^2 I): the generative model is probabilistic PCA
(:mod:`elbolab.models.ppca`). With e = x - mu, m = V e and w_j the columns of W, the
ELBO of one datum is, exactly (no sampling),

    reconstruction = E_q[log p(x | z)]
                   = -D/2 log(2 pi sigma^2) - (|e - W m|^2 + sum_j d_j |w_j|^2) / (2 sigma^2)
    kl             = KL(q(z | x) || p(z)) = 1/2 sum_j (d_j + m_j^2 - 1 - log d_j)
    elbo           = reconstruction - kl  <=  log p(x)

The optimal encoder for given (W, mu, sigma^2). The ELBO is a quadratic in V that does
not involve D, maximised by V = M^{-1} W^T, M = W^T W + sigma^2 I (the exact posterior
mean map). In d_j it is -d_j |w_j|^2 / (2 sigma^2) - (d_j - log d_j) / 2, maximised by

    d_j = sigma^2 / (|w_j|^2 + sigma^2) = sigma^2 / M_jj,   i.e.  D = sigma^2 diag(M)^{-1},

not sigma^2 diag(M^{-1}) (the diagonal of the true posterior covariance): a diagonal
Gaussian that minimises KL(q || p) matches the diagonal of the posterior *precision*,
M / sigma^2. At this encoder the remaining gap is

    log p(x) - ELBO = KL(q || p(z | x)) = 1/2 (sum_j log M_jj - log det M)  >= 0

per datum (Hadamard's inequality), zero exactly when M is diagonal, i.e. when W has
orthogonal columns, as the pPCA maximum likelihood W = U_q (L_q - sigma^2 I)^{1/2}
(R = I) has. Hence the global maximum of the ELBO equals the maximum log-likelihood of
pPCA (Lucas et al. 2019, section 4.1); ``tests/models/test_linear_vae.py`` checks
both the equality at the optimum and the gap formula away from it.

Everything is summed over the data and in nats with every constant, as ``elbo*`` is
throughout elbolab; parameters are float64 by default because this module exists to
compare bounds with exact values.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from .. import checks
from ..distributions import DiagonalNormal, StandardNormal, rsample
from ..errors import ConfigError, DataError, NumericalError
from ..optimize import descend
from . import ppca as _ppca

if TYPE_CHECKING:
    from .._types import ArrayOrTensor, Device
    from .ppca import PPCA

__all__ = ["LinearVAE", "fit_linear_vae", "fit_linear_vae_lbfgs", "profiled_elbo"]

_LOG_2PI = math.log(2.0 * math.pi)


class LinearVAE(nn.Module):
    """Linear VAE: decoder N(W z + mu, sigma^2 I), prior N(0, I), encoder N(V (x - mu), D).

    It has the methods every elbolab model has, ``encode(x)``, ``decode(z)`` and
    ``prior()`` (as :class:`~elbolab.models.vae.VAE`), so :func:`elbolab.objectives.elbo`,
    :func:`elbolab.diagnostics.log_likelihood` and
    :func:`elbolab.diagnostics.surgery_model` take it; its own point is the closed-form
    ELBO :meth:`elbo_analytic` and the exact :meth:`log_prob`.

    Parameters
    ----------
    data_dim : int
        D, the data dimension.
    latent_dim : int
        q, the latent dimension.
    sigma2 : float
        Initial (or fixed) observation noise variance sigma^2.
    learn_sigma2 : bool
        Learn log sigma^2 (a parameter) or keep it fixed (a buffer).
    generator : torch.Generator or int
        Randomness for the initial W and V (entries N(0, 1/D)); default seed 0. mu starts
        at 0 and the encoder variances d_j at 1.
    dtype : torch.dtype
        Parameter dtype, float64 by default.
    device : str or torch.device, optional
        Where the parameters are created and drawn (the CPU by default); a generator
        must live there.

    Attributes
    ----------
    W : (D, q) parameter
        Decoder weights.
    mu : (D,) parameter
        Decoder offset (also centres the encoder input).
    V : (q, D) parameter
        Encoder weights.
    log_D : (q,) parameter
        log d_j, the log-variances of the shared diagonal encoder covariance D.
    log_sigma2 : 0-dim parameter (or buffer if not learned)
        log sigma^2.

    References
    ----------
    Lucas, J., Tucker, G., Grosse, R. & Norouzi, M. (2019). Don't Blame the ELBO! A Linear
    VAE Perspective on Posterior Collapse. NeurIPS 32.
    """

    def __init__(
        self,
        data_dim: int,
        latent_dim: int,
        sigma2: float = 1.0,
        learn_sigma2: bool = True,
        *,
        generator: torch.Generator | int = 0,
        dtype: torch.dtype = torch.float64,
        device: Device | None = None,
    ) -> None:
        super().__init__()
        self.data_dim = d = checks.integer(data_dim, "data_dim", 1)
        self.latent_dim = q = checks.integer(latent_dim, "latent_dim", 1)
        sigma2 = checks.positive(sigma2, "sigma2")
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise ConfigError(f"dtype must be a floating torch.dtype, got {dtype!r}")
        dev = torch.device("cpu") if device is None else checks.device(device)
        g = checks.torch_generator(generator, "generator", device=dev)
        scale = 1.0 / math.sqrt(d)
        self.W = nn.Parameter(scale * torch.randn(d, q, generator=g, dtype=dtype, device=dev))
        self.mu = nn.Parameter(torch.zeros(d, dtype=dtype, device=dev))
        self.V = nn.Parameter(scale * torch.randn(q, d, generator=g, dtype=dtype, device=dev))
        self.log_D = nn.Parameter(torch.zeros(q, dtype=dtype, device=dev))
        log_s2 = torch.tensor(math.log(sigma2), dtype=dtype, device=dev)
        if learn_sigma2:
            self.log_sigma2 = nn.Parameter(log_s2)
        else:
            self.register_buffer("log_sigma2", log_s2)
        self.learn_sigma2 = bool(learn_sigma2)

    # -- the three distributions --------------------------------------------------------
    @property
    def sigma2(self) -> torch.Tensor:
        """sigma^2, 0-dim tensor."""
        return torch.exp(self.log_sigma2)

    def _check_x(self, x) -> torch.Tensor:
        return checks.data_matrix(
            x, "x", width=self.data_dim, dtype=self.W.dtype, device=self.W.device
        )

    # The protocol of every model in elbolab (encode, decode, prior; see models/vae.py),
    # so that objectives and diagnostics take a LinearVAE as they take a VAE.
    def prior(self) -> StandardNormal:
        """p(z) = N(0, I_q), event shape (q,)."""
        return StandardNormal(self.latent_dim, self.W)

    def encode(self, x: torch.Tensor) -> DiagonalNormal:
        """q(z | x) = N(V (x - mu), D) for each row of x (N, D): batch (N,), event (q,)."""
        x = self._check_x(x)
        loc = (x - self.mu) @ self.V.T
        scale = torch.exp(0.5 * self.log_D).expand_as(loc)
        return DiagonalNormal(loc, scale)

    def decode(self, z: torch.Tensor) -> DiagonalNormal:
        """p(x | z) = N(W z + mu, sigma^2 I) for z (..., q): event shape (D,)."""
        loc = z @ self.W.T + self.mu
        scale = torch.exp(0.5 * self.log_sigma2).expand_as(loc)
        return DiagonalNormal(loc, scale)

    # -- bounds and exact values --------------------------------------------------------
    def _kl_per_datum(self, m: torch.Tensor) -> torch.Tensor:
        """KL(N(m, D) || N(0, I)) for each row of m (N, q), (N,)."""
        d = torch.exp(self.log_D)
        return 0.5 * ((d - 1.0 - self.log_D).sum() + (m * m).sum(-1))

    def elbo_analytic(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The closed-form ELBO summed over the rows of x (N, D), in nats.

        Returns
        -------
        dict of 0-dim tensors (differentiable)
            ``"elbo"`` = ``"reconstruction"`` - ``"kl"``; ``"reconstruction"`` is
            sum_n E_q[log p(x_n | z)] including -D/2 log(2 pi sigma^2) per datum, ``"kl"``
            is sum_n KL(q(z | x_n) || p(z)). Formulas in the module docstring.
        """
        x = self._check_x(x)
        n = x.shape[0]
        e = x - self.mu
        m = e @ self.V.T
        resid = e - m @ self.W.T
        d = torch.exp(self.log_D)
        trace = (d * (self.W * self.W).sum(0)).sum()  # tr(W D W^T) = sum_j d_j |w_j|^2
        rec = -0.5 * (
            n * self.data_dim * (_LOG_2PI + self.log_sigma2)
            + ((resid * resid).sum() + n * trace) / self.sigma2
        )
        kl = self._kl_per_datum(m).sum()
        return {"elbo": rec - kl, "reconstruction": rec, "kl": kl}

    def elbo_stochastic(
        self,
        x: torch.Tensor,
        generator: torch.Generator,
        n_samples: int = 1,
        analytic_kl: bool = False,
    ) -> dict[str, torch.Tensor]:
        """Reparameterised Monte Carlo estimate of the ELBO summed over the rows of x.

        z_s = V (x - mu) + D^{1/2} eps_s, eps_s ~ N(0, I) from ``generator``, and each
        term is averaged over the ``n_samples`` draws:
        reconstruction = mean_s log p(x | z_s), kl = mean_s (log q(z_s | x) - log p(z_s))
        (or the closed-form KL with ``analytic_kl=True``). Unbiased for
        :meth:`elbo_analytic` (value and gradient). Its draws and its terms are those of
        :func:`elbolab.objectives.elbo` on this model (with ``analytic_kl=False``, the
        same numbers); it is here because :func:`fit_linear_vae`, in the models layer,
        trains on it.

        Parameters
        ----------
        x : (N, D) tensor
        generator : torch.Generator or int seed
        n_samples : int, S draws per datum
        analytic_kl : bool

        Returns
        -------
        dict of 0-dim tensors with keys ``"elbo"``, ``"reconstruction"``, ``"kl"``.
        """
        x = self._check_x(x)
        g = checks.torch_generator(generator, "generator", device=x.device)
        s = checks.integer(n_samples, "n_samples", 1)
        q_z = self.encode(x)
        z = rsample(q_z, s, g)  # (S, N, q)
        rec = self.decode(z).log_prob(x).mean(0).sum()
        if analytic_kl:
            kl = self._kl_per_datum(q_z.loc).sum()
        else:
            kl = (q_z.log_prob(z) - self.prior().log_prob(z)).mean(0).sum()
        return {"elbo": rec - kl, "reconstruction": rec, "kl": kl}

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log p(x_n) = log N(x_n; mu, W W^T + sigma^2 I), (N,), differentiable."""
        x = self._check_x(x)
        return _ppca.marginal_log_prob(x, self.mu, self.W, self.sigma2)

    def log_likelihood(self, x: torch.Tensor) -> torch.Tensor:
        """Exact sum_n log p(x_n) in nats, 0-dim tensor (the quantity the ELBO bounds)."""
        return self.log_prob(x).sum()

    # -- optimal encoder and pPCA initialisation ---------------------------------------
    @torch.no_grad()
    def set_optimal_encoder(self) -> LinearVAE:
        """Set V = M^{-1} W^T and D = sigma^2 diag(M)^{-1} (the ELBO-optimal diagonal
        encoder for the current W, sigma^2; see the module docstring). Returns self."""
        W, s2 = self.W, self.sigma2
        eye = torch.eye(self.latent_dim, dtype=W.dtype, device=W.device)
        M = W.T @ W + s2 * eye
        self.V.copy_(torch.linalg.solve(M, W.T))
        self.log_D.copy_(torch.log(s2) - torch.log(torch.diagonal(M)))
        return self

    @torch.no_grad()
    def init_from_ppca(self, ppca: PPCA) -> LinearVAE:
        """Copy mu, W and sigma^2 from a fitted :class:`~elbolab.models.ppca.PPCA` (or
        anything with ``mean_`` (D,), ``components_`` (D, q), ``sigma2_``) and set the
        optimal encoder. At a pPCA maximum (orthogonal columns) the ELBO then equals the
        exact log-likelihood. Returns self."""
        try:
            mean, W, s2 = ppca.mean_, ppca.components_, ppca.sigma2_
        except AttributeError:
            raise ConfigError(
                "init_from_ppca needs a fitted PPCA (mean_, components_, sigma2_)"
            ) from None
        W = torch.as_tensor(np.asarray(W), dtype=self.W.dtype, device=self.W.device)
        if tuple(W.shape) != (self.data_dim, self.latent_dim):
            raise ConfigError(
                f"the pPCA has W of shape {tuple(W.shape)}, the model needs "
                f"({self.data_dim}, {self.latent_dim})"
            )
        self.W.copy_(W)
        self.mu.copy_(torch.as_tensor(np.asarray(mean), dtype=self.W.dtype))
        self.log_sigma2.fill_(math.log(checks.positive(float(s2), "sigma2_")))
        return self.set_optimal_encoder()


def _initial_model(x, q, sigma2, learn_sigma2, g, dtype) -> LinearVAE:
    """The random initialisation that :func:`fit_linear_vae` documents (on checked x)."""
    n, d = x.shape
    s2_data = float(x.double().var(dim=0, unbiased=False).mean())  # no float16 overflow
    if not s2_data > 0:
        raise DataError("x has zero variance in every feature")
    sigma2 = s2_data if sigma2 is None else checks.positive(sigma2, "sigma2")
    model = LinearVAE(d, q, sigma2, learn_sigma2, generator=g, dtype=dtype, device=x.device)
    with torch.no_grad():
        # Scale the random weights to the data: W W^T ~ s^2 I and V (x - mu) ~ N(0, I).
        model.mu.copy_(x.mean(0))
        model.W.mul_(math.sqrt(s2_data * d / q))
        model.V.mul_(1.0 / math.sqrt(s2_data))
    return model


def _checked_data(x, dtype) -> torch.Tensor:
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ConfigError(f"dtype must be a floating torch.dtype, got {dtype!r}")
    if isinstance(x, torch.Tensor):
        x = x.detach()
    x = checks.data_matrix(x, "x")
    # Cast after the finiteness check, which then also catches overflow in the cast.
    return checks.data_matrix(x.to(dtype), "x (in the given dtype)")


def profiled_elbo(W, log_sigma2, lam) -> torch.Tensor:
    """The closed-form ELBO per datum at the optimal encoder, in the data's eigenbasis.

    mu is at the data mean, and the data are rotated by the eigenvectors U of their
    covariance S = U diag(lam) U^T (normalised by N), so W here is U^T W of
    :class:`LinearVAE`. With V and D at their optimum for (W, sigma^2) (module
    docstring), ELBO = log p(x) - 1/2 (sum_j log M_jj - log det M) for every datum, and
    with the Woodbury forms of log p(x) (:mod:`elbolab.models.ppca`) log det M cancels::

        ELBO / N = -1/2 [D log(2 pi) + (D - q) log sigma^2 + sum_j log M_jj
                         + (sum(lam) - tr(M^{-1} W^T L W)) / sigma^2],   L = diag(lam).

    One evaluation costs O(D q^2), whatever N is. Differentiable; 0-dim tensor, nats
    per datum.
    """
    d, q = W.shape
    s2 = torch.exp(log_sigma2)
    M = W.T @ W + s2 * torch.eye(q, dtype=W.dtype, device=W.device)
    chol = torch.linalg.cholesky(M)
    # tr(M^{-1} W^T L W) = |C^{-1} (L^{1/2} W)^T|_F^2 with M = C C^T.
    half = torch.linalg.solve_triangular(chol, (W * lam.sqrt()[:, None]).T, upper=False)
    explained = (half * half).sum()
    log_mjj = torch.log(torch.diagonal(M)).sum()
    return -0.5 * (d * _LOG_2PI + (d - q) * log_sigma2 + log_mjj + (lam.sum() - explained) / s2)


def fit_linear_vae_lbfgs(
    x: ArrayOrTensor,
    latent_dim: int,
    generator: torch.Generator | int,
    *,
    max_iter: int = 3000,
    sigma2: float | None = None,
    learn_sigma2: bool = True,
    history_size: int = 50,
    tol: float = 1e-6,
    chunk: int = 50,
    dtype: torch.dtype = torch.float64,
) -> tuple[LinearVAE, dict[str, np.ndarray]]:
    """Maximise the closed-form ELBO of a :class:`LinearVAE` with L-BFGS (strong Wolfe).

    The analytic ELBO over full-batch data is deterministic and smooth, the setting
    quasi-Newton methods are made for. Starts from the random initialisation of
    :func:`fit_linear_vae` (same ``generator``, same draws of W). The encoder (V, D) is
    kept at its closed-form optimum for the current (W, sigma^2): the ELBO is concave in
    (V, D) with a unique maximum, so this maximises the same function and has the same
    local maxima, while removing the bilinear coupling of W and V on which gradient
    steps (Adam, and L-BFGS on all parameters alike in our runs) crawl. mu stays at the
    data mean, its optimum for every other parameter value. L-BFGS works on
    :func:`profiled_elbo` in the eigenbasis of the data covariance (it is invariant to
    this rotation); the result is rotated back, and the returned model's
    :meth:`LinearVAE.elbo_analytic` on x is the value to report.

    Parameters
    ----------
    x : (N, D) tensor or array
    latent_dim : int
    generator : torch.Generator or int seed (initial weights only)
    max_iter : int
        L-BFGS iterations at most.
    sigma2 : float, optional
        Initial sigma^2 (fixed if ``learn_sigma2`` is False); default the mean variance.
    learn_sigma2 : bool
    history_size : int
        L-BFGS memory.
    tol : float
        Stop when ``chunk`` iterations raise the ELBO by less than ``tol`` nats per datum.
    chunk : int
        Iterations between records of the curve.
    dtype : torch.dtype

    Returns
    -------
    model : LinearVAE
    curves : dict of ndarrays
        ``"iteration"`` (K,), ``"evaluations"`` (K,) (ELBO evaluations so far, line
        search included) and ``"elbo_per_datum"`` (K,), nats per datum.
    """
    x = _checked_data(x, dtype)
    q = checks.integer(latent_dim, "latent_dim", 1)
    max_iter = checks.integer(max_iter, "max_iter", 1)
    history_size = checks.integer(history_size, "history_size", 1)
    chunk = checks.integer(chunk, "chunk", 1)
    tol = checks.positive(tol, "tol")
    g = checks.torch_generator(generator, "generator", device=x.device)
    model = _initial_model(x, q, sigma2, learn_sigma2, g, dtype)
    n = x.shape[0]
    xc = x - model.mu.detach()
    lam, U = torch.linalg.eigh(xc.T @ xc / n)
    lam = lam.clamp_min(0.0)  # rounding can make the zero eigenvalues slightly negative
    with torch.no_grad():
        W = (U.T @ model.W).requires_grad_()
        log_s2 = model.log_sigma2.detach().clone().requires_grad_(model.learn_sigma2)
    params = [W] + ([log_s2] if model.learn_sigma2 else [])
    opt = torch.optim.LBFGS(
        params,
        lr=1.0,
        max_iter=chunk,
        history_size=history_size,
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-12,
        tolerance_change=1e-14,
    )
    evaluations = [0]

    def closure():
        opt.zero_grad(set_to_none=True)
        loss = -profiled_elbo(W, log_s2, lam)
        if not bool(torch.isfinite(loss)):
            raise NumericalError(
                f"fit_linear_vae_lbfgs: the ELBO became NaN or infinite after "
                f"{evaluations[0]} evaluations (sigma2={float(torch.exp(log_s2)):g})"
            )
        loss.backward()
        evaluations[0] += 1
        return loss

    def value() -> float:
        with torch.no_grad():
            return float(profiled_elbo(W, log_s2, lam))

    curves = {"iteration": [0], "evaluations": [0], "elbo_per_datum": [value()]}
    done = 0
    while done < max_iter:
        opt.param_groups[0]["max_iter"] = min(chunk, max_iter - done)
        opt.step(closure)
        done = opt.state[W]["n_iter"]
        curves["iteration"].append(done)
        curves["evaluations"].append(evaluations[0])
        curves["elbo_per_datum"].append(value())
        if curves["elbo_per_datum"][-1] - curves["elbo_per_datum"][-2] < tol:
            break
    with torch.no_grad():
        model.W.copy_(U @ W)
        model.log_sigma2.copy_(log_s2)
    return model.set_optimal_encoder(), {key: np.asarray(v) for key, v in curves.items()}


def fit_linear_vae(
    x: ArrayOrTensor,
    latent_dim: int,
    steps: int,
    lr: float,
    generator: torch.Generator | int,
    analytic: bool = True,
    callback: Callable | None = None,
    *,
    batch_size: int | None = None,
    n_samples: int = 1,
    eval_every: int | None = None,
    sigma2: float | None = None,
    learn_sigma2: bool = True,
    dtype: torch.dtype = torch.float64,
    lr_schedule: str = "cosine",
) -> tuple[LinearVAE, dict[str, np.ndarray]]:
    """Train a :class:`LinearVAE` with Adam on the ELBO per datum.

    Initialisation: sigma^2 = ``sigma2`` or, by default, the mean per-feature variance
    s^2 = tr(S)/D (the ML sigma^2 at W = 0); W with entries N(0, s^2/q) and V with entries
    N(0, 1/(D s^2)) from ``generator``, so that W W^T ~ s^2 I and V (x - mu) ~ N(0, I) at
    the start (weights of scale 1/sqrt(D) on data of another scale start near the
    collapsed saddle W = 0 and stall there); d_j = 1; mu = the data mean (the
    ELBO-optimal mu for every W, V, D and sigma^2, and pPCA's ML mean).

    The learning rate follows a cosine decay to 0 over ``steps`` by default: with a
    constant rate Adam hovers 1e-3..1e-2 nats per datum below the optimum on small pPCA
    data, with the decay it ends within 1e-10 (our runs, D = 6, q = 2, 2000 steps).

    Parameters
    ----------
    x : (N, D) tensor or array
        Training data.
    latent_dim : int
        q.
    steps : int
        Adam steps.
    lr : float
        Adam learning rate.
    generator : torch.Generator or int seed
        All randomness: initial weights, minibatch order, reparameterisation noise and
        the stochastic ELBO tracked in the curves.
    analytic : bool
        Maximise :meth:`LinearVAE.elbo_analytic` (True) or the reparameterised estimate
        :meth:`LinearVAE.elbo_stochastic` with ``n_samples`` draws (False).
    callback : callable, optional
        ``callback(step, model, record)`` at every evaluation, with ``record`` the dict of
        the values just appended to the curves; returning True stops training.
    batch_size : int, optional
        Minibatch size; full batch by default. Each epoch is a fresh permutation from
        ``generator`` cut into N // batch_size batches (a last partial one is dropped).
    n_samples : int
        Draws per datum for the stochastic objective and the tracked stochastic ELBO.
    eval_every : int, optional
        Evaluate both ELBOs on all of x every k steps (default: steps // 100, at least
        1), plus at step 0 and after the last step.
    sigma2 : float, optional
        Initial sigma^2 (fixed if ``learn_sigma2`` is False).
    learn_sigma2 : bool
    dtype : torch.dtype
        float64 by default.
    lr_schedule : {"cosine", "constant"}
        Cosine annealing of the learning rate from ``lr`` to 0 over ``steps``, or none.

    Returns
    -------
    model : LinearVAE
    curves : dict of ndarrays
        ``"step"`` (K,), ``"elbo_analytic_per_datum"`` (K,) and
        ``"elbo_stochastic_per_datum"`` (K,), nats per datum on all of x.
    """
    x = _checked_data(x, dtype)
    n = x.shape[0]
    q = checks.integer(latent_dim, "latent_dim", 1)
    steps = checks.integer(steps, "steps", 1)
    lr = checks.positive(lr, "lr")
    s = checks.integer(n_samples, "n_samples", 1)
    g = checks.torch_generator(generator, "generator", device=x.device)
    bs = n if batch_size is None else min(checks.integer(batch_size, "batch_size", 1), n)
    k = max(1, steps // 100) if eval_every is None else checks.integer(eval_every, "eval_every", 1)
    if lr_schedule not in ("constant", "cosine"):
        raise ConfigError(f"lr_schedule must be 'constant' or 'cosine', got {lr_schedule!r}")
    model = _initial_model(x, q, sigma2, learn_sigma2, g, dtype)
    sigma2 = float(model.sigma2.detach())
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    schedulers = (
        [torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)]
        if lr_schedule == "cosine"
        else []
    )
    curves: dict[str, list] = {
        "step": [],
        "elbo_analytic_per_datum": [],
        "elbo_stochastic_per_datum": [],
    }

    def diverged(step: int, what: str) -> NumericalError:
        return NumericalError(
            f"fit_linear_vae: {what} became NaN or infinite at step {step} (lr={lr}, "
            f"sigma2={sigma2:g}, dtype={dtype}); lower lr, raise sigma2 or use float64"
        )

    def evaluate(step: int) -> bool:
        with torch.no_grad():
            record = {
                "step": step,
                "elbo_analytic_per_datum": float(model.elbo_analytic(x)["elbo"]) / n,
                "elbo_stochastic_per_datum": float(model.elbo_stochastic(x, g, s)["elbo"]) / n,
            }
        if not all(math.isfinite(v) for v in record.values()):
            raise diverged(step, "the ELBO")
        for key, value in record.items():
            curves[key].append(value)
        return bool(callback(step, model, record)) if callback is not None else False

    def minibatches():
        # Each epoch a fresh permutation, drawn when its first batch is needed (so the
        # generator's draws interleave with the stochastic ELBO's as they always did).
        while True:
            perm = torch.randperm(n, generator=g, device=x.device)
            for pos in range(0, n - bs + 1, bs):
                yield x[perm[pos : pos + bs]]

    batches = minibatches()

    def loss(step: int) -> torch.Tensor:
        batch = x if bs == n else next(batches)
        if analytic:
            elbo = model.elbo_analytic(batch)["elbo"]
        else:
            elbo = model.elbo_stochastic(batch, g, s)["elbo"]
        if not bool(torch.isfinite(elbo)):
            raise diverged(step - 1, "the training ELBO")  # after step - 1 steps
        return -elbo / batch.shape[0]

    if not evaluate(0):
        descend(loss, opt, steps, schedulers=schedulers, evaluate=evaluate, every=k)
    return model, {key: np.asarray(v) for key, v in curves.items()}
