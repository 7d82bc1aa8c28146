"""ELBO surgery: the average KL split into index-code mutual information and marginal KL.

Hoffman & Johnson (2016), "ELBO surgery: yet another way to carve up the variational
evidence lower bound". With the data index n uniform on 1..N, q(n, z) = q(z | x_n) / N
and the aggregate posterior q(z) = (1/N) sum_m q(z | x_m)::

    (1/N) sum_n KL(q(z | x_n) || p(z))  =  I_q(n; z)  +  KL(q(z) || p(z))
            average KL                    index-code MI     marginal KL

    I_q(n; z)       = E_{q(n,z)}[log q(z | x_n) - log q(z)],     0 <= I <= log N
    KL(q(z) || p(z)) = E_{q(z)}[log q(z) - log p(z)].

Estimator. Draw S samples z_ns ~ q(z | x_n) for every n. For each sample, log q(z_ns)
is the exact log of the mixture over ALL N data points (no minibatch approximation, so
the estimators are unbiased), computed as a blocked N*S x N log-sum-exp. On the same
samples::

    MI          = mean_ns[log q(z_ns | n) - log q(z_ns)]
    marginal KL = mean_ns[log q(z_ns) - log p(z_ns)]
    MC avg KL   = mean_ns[log q(z_ns | n) - log p(z_ns)]  = MI + marginal KL   (exactly)

and the reported average KL is analytic where it exists (standard-normal or diagonal
Gaussian prior), so the identity holds up to the Monte Carlo error of the MC average
KL, which is reported (``se_average_kl_mc``).

Bounds. The own component is one term of the mixture, log q(z_ns) >= log q(z_ns | n) -
log N, so every MI term is <= log N. The code computes
``gap_ns = log sum_m exp(log q(z_ns | m) - log q(z_ns | n)) >= 0`` with the own term
entered as exactly exp(0) = 1, and ``MI = log N - mean(gap)``, so ``MI <= log N`` holds
in floating point, not only in exact arithmetic. ``MI >= 0`` holds for the exact
quantity and in expectation (the estimator is unbiased), but single terms can be
negative, so with few samples and MI near 0 the estimate can fall below 0 by about its
standard error; it is not clipped.

Speed. Writing log N(z; mu_m, sigma_m) as a quadratic form in z, one matrix product of
the (rows x 2d+2) sample features with the (N x 2d+2) component features gives a whole
block of log q(z_i | m) - log q(z_i | n_i) in float64, scaled by 1/log 2 so that exp2
(cheaper than exp on the CPU: the whole estimate took ~20% less time) applies; exp2,
row sums and a log1p finish it. The reference log q(z_i | n_i) keeps every entry <=
~log-density ratios, so no row-max pass is needed; rows whose sum overflows (only for
extreme scale ratios between posteriors, > e^700) are redone with a running-max
log-sum-exp. Blocks are sized for the device: 512 x 2048 on the CPU (8 MiB; from
256 x 4096 to 1024 x 16384 the time hardly changes), 4096 x 16384 on a GPU (few kernel
launches, no device syncs inside a row block). ``benchmarks/surgery_speed.py`` measures
N = 50,000, d = 20 (2.5e9 log-densities): a median of 9.7 s on 2 CPU cores (AMD EPYC,
quiet machine; 12.6 s with exp and the former blocks).

Dirichlet posteriors. :func:`dirichlet_surgery` does the same for N Dirichlet
posteriors q(theta | d) = Dir(gamma_d) on the simplex against a Dirichlet prior (LDA's
document-topic proportions), with the same estimators, result keys and ``gap``
convention; the average KL there is always the closed form. Densities are with respect
to Lebesgue measure on the first K-1 coordinates, the same for every term, so the KLs
are those of the distributions. It runs on the CPU (numpy draws the gamma variates: torch's
gamma sampler takes no generator); AP's 2,246 documents, K = 10, S = 10 took ~1.4 s on one
thread of a busy machine.

Device. Everything runs where ``mu`` is (std, z, own and the prior must be there too,
and a generator given as a ``torch.Generator``; an integer seed makes one there). The
CPU and CUDA generators give different streams. Results come back as Python floats and
CPU tensors.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch
from scipy import special
from torch.distributions import Independent, Normal

from .. import checks
from ..distributions import rsample
from ..errors import ConfigError, NumericalError
from ..objectives.protocol import check_data, model_device, model_prior, to_model
from ..progress import progress as progress_bar
from .mixture import DiagonalMixture, default_budget

if TYPE_CHECKING:
    from .._types import ArrayOrTensor

__all__ = [
    "best_dirichlet_prior",
    "dirichlet_surgery",
    "surgery",
    "surgery_model",
    "log_aggregate_posterior",
]

_LOG_2PI = math.log(2.0 * math.pi)
_LN2 = math.log(2.0)

# Default block of log q(z_i | x_m) held at once (rows x columns): 8 MiB on the CPU,
# large on a GPU (few launches).
_CPU_BLOCK = (512, 2048)
_CUDA_BLOCK = (4096, 16384)


def _as_f64(a, name: str) -> torch.Tensor:
    a = checks.real_tensor(checks.array_or_tensor(a, name), name, ConfigError)
    return a.detach().to(torch.float64)


def _check_mu_std(mu, std) -> tuple[torch.Tensor, torch.Tensor]:
    mu = _as_f64(mu, "mu")
    std = _as_f64(std, "std")
    checks.same_device(mu.device, "mu", std.device, "std")
    if mu.ndim != 2 or mu.shape[0] == 0 or mu.shape[1] == 0:
        raise ConfigError(f"mu must have shape (N, d) with N, d >= 1, got {tuple(mu.shape)}")
    if std.shape != mu.shape:
        raise ConfigError(
            f"std must have the shape of mu {tuple(mu.shape)}, got {tuple(std.shape)}"
        )
    if not torch.isfinite(mu).all():
        raise ConfigError("mu has non-finite entries")
    if not (torch.isfinite(std).all() and (std > 0).all()):
        raise ConfigError("std must be finite and > 0 everywhere")
    return mu.contiguous(), std.contiguous()


def _block_sizes(device: torch.device, batch_size, column_size) -> tuple[int, int]:
    rows, cols = _CUDA_BLOCK if device.type == "cuda" else _CPU_BLOCK
    if batch_size is not None:
        rows = checks.integer(batch_size, "batch_size", 1)
    if column_size is not None:
        cols = checks.integer(column_size, "column_size", 1)
    return rows, cols


def _dist_device(dist) -> torch.device | None:
    """The device of a distribution's parameters, when one can be found."""
    paths = (
        ("loc",),
        ("base_dist", "loc"),
        ("component_distribution", "base_dist", "loc"),
        ("mixture_distribution", "logits"),
        ("mean",),
    )
    for path in paths:
        obj = dist
        try:
            for attr in path:
                obj = getattr(obj, attr)
        except (AttributeError, NotImplementedError):
            continue
        if isinstance(obj, torch.Tensor):
            return obj.device
    return None


def _component_features(mu: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """(N, 2d+2) features P_m with log N(z; mu_m, std_m) - r = [z^2, z, 1, -r] . P_m."""
    d = mu.shape[1]
    prec = std.pow(-2)
    const = -0.5 * (mu * mu * prec).sum(1) - std.log().sum(1) - 0.5 * d * _LOG_2PI
    ones = torch.ones_like(const)
    return torch.cat([-0.5 * prec, mu * prec, const[:, None], ones[:, None]], 1)


def _diag_normal_log_prob(z: torch.Tensor, mu: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    # Direct (difference) form: accurate, used for the own term log q(z | x_n).
    u = (z - mu) / std
    return -0.5 * (u * u).sum(-1) - std.log().sum(-1) - 0.5 * mu.shape[-1] * _LOG_2PI


def _gemm_error_bound(z: torch.Tensor, mu: torch.Tensor, std: torch.Tensor) -> float:
    """Worst-case rounding error (nats) of the expanded quadratic form in float64.

    Expanding (z - mu)^2 / std^2 cancels terms of size prec * (|z| + |mu|)^2; their
    rounding error bounds the error of each log q(z_i | m).
    """
    prec_max = std.min(0).values.pow(-2)  # (d,)
    scale = z.abs().max(0).values + mu.abs().max(0).values
    return float(8.0 * torch.finfo(torch.float64).eps * (prec_max * scale * scale).sum())


class _Blocks:
    """Blocks of log q(z_i | m) - shift_i (the ``"gemm"`` method in units of log 2, for
    exp2), with the own entry m = n_i set to ``own_value``."""

    def __init__(self, mu, std, method: str):
        self.mu, self.std, self.method = mu, std, method
        if method == "gemm":
            feats = _component_features(mu, std)
            self.feats_t = feats.T.contiguous()  # natural units, for the exact fallback
            self.feats2_t = (feats / _LN2).T.contiguous()  # log2 units
        self.log_norm = -std.log().sum(1) - 0.5 * mu.shape[1] * _LOG_2PI  # (N,)

    def rows(self, z: torch.Tensor, shift: torch.Tensor) -> torch.Tensor | None:
        if self.method == "gemm":
            one = torch.ones(z.shape[0], 1, dtype=z.dtype, device=z.device)
            return torch.cat([z * z, z, one, -shift[:, None]], 1)
        return None

    def block(self, z, zf, shift, own, own_value, j0, j1, out=None, base2=False) -> torch.Tensor:
        """(rows, j1 - j0) block; log2 units when ``base2`` (gemm only)."""
        if self.method == "gemm":
            feats = self.feats2_t if base2 else self.feats_t
            g = torch.mm(zf, feats[:, j0:j1], out=out)
        else:
            u = (z[:, None, :] - self.mu[None, j0:j1]) / self.std[None, j0:j1]
            g = -0.5 * (u * u).sum(-1) + self.log_norm[None, j0:j1] - shift[:, None]
            if base2:
                g.mul_(1.0 / _LN2)
        # The own entry, without a device sync: rows whose own component lies outside
        # this block write back what is there.
        rows = torch.arange(z.shape[0], device=z.device)
        col = own - j0
        hit = (col >= 0) & (col < j1 - j0)
        col = col.clamp(0, j1 - j0 - 1)
        g[rows, col] = torch.where(hit, own_value, g[rows, col])
        return g


def _lse_rows_safe(blocks: _Blocks, z, ref, own, n: int, col: int) -> torch.Tensor:
    """log sum_m q(z_i | m) (absolute, no reference) with a running max (fallback)."""
    shift = torch.zeros_like(ref)
    zf = blocks.rows(z, shift)
    run_max = torch.full((z.shape[0],), -math.inf, dtype=z.dtype, device=z.device)
    run_sum = torch.zeros(z.shape[0], dtype=z.dtype, device=z.device)
    for j0 in range(0, n, col):
        g = blocks.block(z, zf, shift, own, ref, j0, min(n, j0 + col))
        new_max = torch.maximum(run_max, g.amax(1))
        g.sub_(new_max[:, None]).exp_()
        run_sum = run_sum * torch.exp(run_max - new_max) + g.sum(1)
        run_max = new_max
    # run_sum >= 1 (the maximal entry contributes exp(0)), so the result is >= ref.
    return run_max + run_sum.log()


def _log_aggregate(z, mu, std, own, rows: int, cols: int, method: str, progress: bool):
    """:func:`log_aggregate_posterior` on checked input; results on the input's device."""
    n = mu.shape[0]
    m_total = z.shape[0]
    device = mu.device
    if method == "auto":
        method = "gemm" if _gemm_error_bound(z, mu, std) <= 1e-4 else "direct"
    if method == "direct":
        # Keep the (rows, cols, d) difference tensor as large as a gemm block.
        cols = max(1, cols // mu.shape[1])

    blocks = _Blocks(mu, std, method)
    ref = _diag_normal_log_prob(z, mu[own], std[own])
    minus_inf = torch.full_like(ref, -math.inf)
    log_n = math.log(n)
    log_q = torch.empty(m_total, dtype=torch.float64, device=device)
    gap = torch.empty(m_total, dtype=torch.float64, device=device)
    # One flat buffer, viewed as a contiguous (rows, cols) block each time.
    buf = None
    if method == "gemm":
        buf = torch.empty(min(rows, m_total) * min(cols, n), dtype=torch.float64, device=device)
    starts = range(0, m_total, rows)
    bar = progress_bar(
        total=len(starts), desc="log q(z)", unit="block", disable=None if progress else True
    )
    with bar:
        for i0 in starts:
            i1 = min(m_total, i0 + rows)
            r = i1 - i0
            zi, oi, ri = z[i0:i1], own[i0:i1], ref[i0:i1]
            zf = blocks.rows(zi, ri)
            acc = torch.zeros(r, dtype=torch.float64, device=device)
            for j0 in range(0, n, cols):
                j1 = min(n, j0 + cols)
                out = buf[: r * (j1 - j0)].view(r, j1 - j0) if buf is not None else None
                # Shifted by ref, in log2 units; the own entry is left out (-inf) and
                # enters as exactly 1 below, so the gap is >= 0 in floating point.
                g = blocks.block(zi, zf, ri, oi, minus_inf[i0:i1], j0, j1, out=out, base2=True)
                acc += g.exp2_().sum(1)
            g_rows = torch.log1p(acc)
            gap[i0:i1] = g_rows
            log_q[i0:i1] = ri + g_rows - log_n
            bad = ~torch.isfinite(g_rows)
            if bool(bad.any()):
                # Some log q(z_i|m) - ref_i > ~700 (extreme scale ratios): exact fallback.
                idx = bad.nonzero().squeeze(1)
                lse = _lse_rows_safe(blocks, zi[idx], ri[idx], oi[idx], n, cols)
                gap[i0 + idx] = lse - ri[idx]
                log_q[i0 + idx] = lse - log_n
            bar.update(1)
    return log_q, gap


def _check_points(z, mu, own):
    """z as a finite float64 (M, d) tensor and own as (M,) indices, both where mu is."""
    z = _as_f64(z, "z")
    checks.same_device(z.device, "z", mu.device, "mu")
    if z.ndim != 2 or z.shape[1] != mu.shape[1] or not torch.isfinite(z).all():
        raise ConfigError(f"z must be a finite (M, {mu.shape[1]}) tensor, got {tuple(z.shape)}")
    m_total, n = z.shape[0], mu.shape[0]
    if own is None:
        own = torch.zeros(m_total, dtype=torch.long, device=mu.device)
    elif isinstance(own, torch.Tensor):
        checks.same_device(own.device, "own", mu.device, "mu")
    else:
        own = torch.as_tensor(own, device=mu.device)
    own = own.to(torch.long)
    if own.shape != (m_total,) or (m_total and bool((own.min() < 0) | (own.max() >= n))):
        raise ConfigError("own must be an (M,) tensor of indices in [0, N)")
    return z.contiguous(), own


def log_aggregate_posterior(
    z: torch.Tensor,
    mu: torch.Tensor,
    std: torch.Tensor,
    own: torch.Tensor | None = None,
    batch_size: int | None = None,
    column_size: int | None = None,
    method: str = "auto",
    progress: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """log q(z_i) = log (1/N) sum_m N(z_i; mu_m, diag(std_m^2)) over all N components.

    Runs on the device of ``mu``; z, std and a tensor ``own`` must be there too.

    Parameters
    ----------
    z : (M, d) tensor
        Points z_i.
    mu, std : (N, d) tensors
        The N diagonal Gaussians q(z | x_m).
    own : (M,) long tensor, optional
        Index n_i of the component that z_i was drawn from. Its term is then computed
        by the direct formula and entered exactly, which makes the returned
        ``gap >= 0`` exactly. Without it the reference is component 0.
    batch_size, column_size : int, optional
        Block of the M x N matrix held in memory at once (rows x columns, float64;
        the ``"direct"`` method holds d times more). Default 512 x 2048 on the CPU,
        4096 x 16384 on a GPU.
    method : {"auto", "gemm", "direct"}
        ``"gemm"``: the quadratic form as one matrix product per block (fast);
        ``"direct"``: elementwise differences (exact to rounding, ~10x slower);
        ``"auto"``: gemm unless its worst-case cancellation error exceeds 1e-4 nats
        (posterior scales below ~1e-4 times the spread of the means).
    progress : bool
        Show a progress bar over row blocks.

    Returns
    -------
    log_q : (M,) float64 CPU tensor
        log q(z_i).
    gap : (M,) float64 CPU tensor
        log sum_m exp(log q(z_i | m) - log q(z_i | n_i)) = log q(z_i) + log N -
        log q(z_i | n_i), >= 0 when ``own`` is given.
    """
    mu, std = _check_mu_std(mu, std)
    z, own = _check_points(z, mu, own)
    rows, cols = _block_sizes(mu.device, batch_size, column_size)
    if method not in ("auto", "gemm", "direct"):
        raise ConfigError(f"method must be 'auto', 'gemm' or 'direct', got {method!r}")
    log_q, gap = _log_aggregate(z, mu, std, own, rows, cols, method, progress)
    return log_q.cpu(), gap.cpu()


def _prior_log_prob(prior, z: torch.Tensor, chunk: int) -> torch.Tensor:
    """log p(z) in float64 for (M, d) float64 z: a mixture of diagonal Gaussians (the
    VampPrior) by matrix products in float64, any other prior in chunks in its dtype."""
    mixture = DiagonalMixture.of(prior, block_bytes=default_budget(z.device) // 4)
    if mixture is not None:
        return mixture.log_prob(z)
    dtype = torch.float64
    for attr in ("loc", "mean"):
        try:
            v = getattr(prior, attr)
        except (AttributeError, NotImplementedError):
            continue
        if isinstance(v, torch.Tensor) and v.is_floating_point():
            dtype = v.dtype
            break
    out = torch.empty(z.shape[0], dtype=torch.float64, device=z.device)
    with torch.no_grad():
        for i0 in range(0, z.shape[0], chunk):
            lp = prior.log_prob(z[i0 : i0 + chunk].to(dtype))
            out[i0 : i0 + chunk] = lp.reshape(-1).to(torch.float64)
    return out


def _analytic_average_kl(mu, std, prior) -> torch.Tensor | None:
    """Per-datum KL(q(z|x_n) || p(z)) (N,) in float64 where p is (diagonal) Gaussian."""
    if prior is None:
        return 0.5 * (mu * mu + std * std - 1.0).sum(1) - std.log().sum(1)
    if (
        isinstance(prior, Independent)
        and isinstance(prior.base_dist, Normal)
        and prior.reinterpreted_batch_ndims == 1
        and prior.batch_shape == torch.Size()
        and prior.event_shape == torch.Size([mu.shape[1]])
    ):
        m0 = prior.base_dist.loc.detach().double()
        s0 = prior.base_dist.scale.detach().double()
        var_ratio = (std / s0) ** 2
        return 0.5 * (var_ratio + ((mu - m0) / s0) ** 2 - 1.0 - var_ratio.log()).sum(1)
    return None


def _se(terms: torch.Tensor) -> float:
    m = terms.numel()
    if m < 2:
        return math.nan
    return float(terms.std(unbiased=True) / math.sqrt(m))


def surgery(
    mu: ArrayOrTensor,
    std: ArrayOrTensor,
    prior: torch.distributions.Distribution | None = None,
    generator: torch.Generator | int = 0,
    n_samples: int = 1,
    batch_size: int | None = None,
    column_size: int | None = None,
    method: str = "auto",
    progress: bool = True,
) -> dict:
    """ELBO-surgery terms of N diagonal Gaussian posteriors q(z | x_n) = N(mu_n, std_n^2).

    Runs on the device of ``mu`` (std and the prior must be there too).

    Parameters
    ----------
    mu, std : (N, d) tensors or arrays
        Posterior means and standard deviations (computed in float64).
    prior : distribution-like, optional
        p(z) with ``log_prob(z)`` for (M, d) z returning (M,); ``None`` is N(0, I). The
        average KL is analytic for N(0, I) and diagonal Gaussian priors
        (``Independent(Normal(loc, scale), 1)``), Monte Carlo otherwise (VampPrior, whose
        log p(z) is evaluated by matrix products in float64).
    generator : torch.Generator or int
        Source of the samples z_ns: a generator on mu's device, or an integer seed (a
        new generator there); seed 0 by default, so that repeated calls give the same
        estimate.
    n_samples : int
        S, samples per data point.
    batch_size, column_size : int, optional
        Rows (samples) and columns (components) of the float64 block of
        log q(z_i | x_m) held at once; memory is 8 * batch_size * column_size bytes.
        Default 512 x 2048 on the CPU, 4096 x 16384 on a GPU.
    method : {"auto", "gemm", "direct"}
        As in :func:`log_aggregate_posterior`.
    progress : bool
        Show a progress bar over row blocks.

    Returns
    -------
    dict with float values (nats, averages per data point)
        ``"average_kl"`` : (1/N) sum_n KL(q(z|x_n) || p(z)) (analytic when possible);
        ``"mutual_info"`` : I_q(n; z) (``"mi"`` is an alias);
        ``"marginal_kl"`` : KL(q(z) || p(z));
        ``"average_kl_mc"`` : MC average KL on the same samples, = mutual_info +
        marginal_kl up to float rounding;
        ``"se_average_kl"``, ``"se_average_kl_mc"``, ``"se_mutual_info"``,
        ``"se_marginal_kl"`` : Monte Carlo standard errors (0 for an analytic value);
        ``"log_n"`` : log N, the upper bound of the MI; ``"n"``, ``"n_samples"``;
        ``"kl_analytic"`` : bool;
    and (N,) float64 CPU tensors ``"kl_per_datum"`` (analytic or MC) and
    ``"mutual_info_per_datum"`` (MI terms averaged over the S samples of each datum).

    Notes
    -----
    Standard errors of the MI and marginal-KL estimates treat the N*S draws as
    independent draws from q(n, z) and q(z); the actual draws are stratified (S per
    data point), whose variance is never larger, so these are conservative. The MC
    average KL's error, when the analytic value exists, uses the residuals
    log q(z|n) - log p(z) - KL_n, whose mean square is exactly the within-datum
    variance: that standard error is not inflated by the spread of KL_n over data.
    """
    mu, std = _check_mu_std(mu, std)
    n_samples = checks.integer(n_samples, "n_samples", 1)
    device = mu.device
    rows, cols = _block_sizes(device, batch_size, column_size)
    if method not in ("auto", "gemm", "direct"):
        raise ConfigError(f"method must be 'auto', 'gemm' or 'direct', got {method!r}")
    n, d = mu.shape
    s = n_samples
    if prior is not None:
        prior = checks.diagonal_prior(prior, d, "prior")
        prior_device = _dist_device(prior)
        if prior_device is not None:
            checks.same_device(prior_device, "prior", device, "mu")
    gen = checks.torch_generator(generator, "generator", device=device)

    z = rsample(Independent(Normal(mu, std), 1), s, gen).reshape(s * n, d)
    own = torch.arange(n, device=device).repeat(s)
    log_qbar, gap = _log_aggregate(z, mu, std, own, rows, cols, method, progress)
    lq_own = _diag_normal_log_prob(z, mu[own], std[own])
    if prior is None:
        lp = -0.5 * (z * z).sum(1) - 0.5 * d * _LOG_2PI
    else:
        lp = _prior_log_prob(prior, z, rows)
        if lp.shape != (s * n,):
            raise ConfigError(
                f"prior.log_prob on (M, {d}) samples must return (M,), got {tuple(lp.shape)}"
            )

    log_n = math.log(n)
    mi_terms = log_n - gap
    marg_terms = log_qbar - lp
    kl_terms = lq_own - lp
    mutual_info = log_n - float(gap.mean())  # <= log N exactly: mean(gap) >= 0
    marginal_kl = float(marg_terms.mean())
    average_kl_mc = float(kl_terms.mean())
    kl_mc_per_datum = kl_terms.reshape(s, n).mean(0)

    kl_exact = _analytic_average_kl(mu, std, prior)
    if kl_exact is not None:
        average_kl = float(kl_exact.mean())
        resid = kl_terms - kl_exact.repeat(s)
        se_kl_mc = float(torch.sqrt((resid * resid).mean() / (s * n)))
        se_kl = 0.0
        kl_per_datum = kl_exact
    else:
        average_kl = average_kl_mc
        se_kl_mc = _se(kl_terms)
        se_kl = se_kl_mc
        kl_per_datum = kl_mc_per_datum

    return {
        "average_kl": average_kl,
        "mutual_info": mutual_info,
        "mi": mutual_info,
        "marginal_kl": marginal_kl,
        "average_kl_mc": average_kl_mc,
        "se_average_kl": se_kl,
        "se_average_kl_mc": se_kl_mc,
        "se_mutual_info": _se(mi_terms),
        "se_marginal_kl": _se(marg_terms),
        "log_n": log_n,
        "n": n,
        "n_samples": s,
        "kl_analytic": kl_exact is not None,
        "kl_per_datum": kl_per_datum.cpu(),
        "mutual_info_per_datum": mi_terms.reshape(s, n).mean(0).cpu(),
    }


def surgery_model(
    model: torch.nn.Module,
    x: torch.Tensor,
    generator: torch.Generator | int = 0,
    n_samples: int = 1,
    batch_size: int | None = None,
    column_size: int | None = None,
    encode_batch_size: int = 1000,
    method: str = "auto",
    progress: bool = True,
) -> dict:
    """ELBO surgery of a VAE-like model on data x, with the reconstruction term.

    Encodes x in batches (no gradients), runs :func:`surgery` with ``model.prior()``,
    and adds the average reconstruction E_q[log p(x_n | z)] (S samples per datum). Runs
    on the model's device; x must be there too.

    Parameters
    ----------
    model : VAE-like module
        Its encoder must return ``Independent(Normal(mu, std), 1)``.
    x : (N, D) tensor
        On the model's device (ConfigError naming both otherwise).
    generator, n_samples, batch_size, column_size, method, progress
        As in :func:`surgery` (the generator on the model's device).
    encode_batch_size : int
        Data points per encoder/decoder call.

    Returns
    -------
    The :func:`surgery` dict plus ``"average_reconstruction"`` (nats per datum),
    ``"se_average_reconstruction"``, ``"average_elbo"`` = average_reconstruction -
    average_kl (nats per datum), and the (N, d) float64 CPU tensors ``"mu"`` and
    ``"std"``.
    """
    n_samples = checks.integer(n_samples, "n_samples", 1)
    encode_batch_size = checks.integer(encode_batch_size, "encode_batch_size", 1)
    x = check_data(model, x)  # validated where it is; cast to the model's dtype per batch
    device = model_device(model, x.device)
    checks.same_device(device, "the model", x.device, "x")
    gen = checks.torch_generator(generator, "generator", device=device)
    mus, stds, recs = [], [], []
    with torch.no_grad():
        for i0 in range(0, x.shape[0], encode_batch_size):
            xb = to_model(model, x[i0 : i0 + encode_batch_size])
            q = model.encode(xb)
            if not (isinstance(q, Independent) and isinstance(q.base_dist, Normal)):
                raise ConfigError("surgery_model needs an encoder returning Independent(Normal)")
            # The reconstruction term on S samples of q. It is not taken from
            # objectives.elbo: with a VampPrior the Monte Carlo KL that elbo computes too
            # (unused here) doubled the time of surgery_model.
            zb = rsample(q, n_samples, gen)
            recs.append(model.decode(zb).log_prob(xb).double())  # (S, b)
            mus.append(q.base_dist.loc.double())
            stds.append(q.base_dist.scale.double())
        prior = model_prior(model, q)
    mu = torch.cat(mus)
    std = torch.cat(stds)
    rec = torch.cat(recs, 1)
    checks.finite(mu, "surgery_model", "the encoder's mean for x")
    checks.finite(std, "surgery_model", "the encoder's standard deviation for x")
    checks.finite(rec, "surgery_model", "the reconstruction term log p(x | z)")
    if getattr(model, "prior_kind", None) == "normal":
        prior = None  # N(0, I): analytic KL, float64 log p(z)
    out = surgery(
        mu,
        std,
        prior,
        gen,
        n_samples=n_samples,
        batch_size=batch_size,
        column_size=column_size,
        method=method,
        progress=progress,
    )
    avg_rec = float(rec.mean())
    out["average_reconstruction"] = avg_rec
    out["se_average_reconstruction"] = _se(rec.reshape(-1))
    out["average_elbo"] = avg_rec - out["average_kl"]
    out["mu"] = mu.cpu()
    out["std"] = std.cpu()
    return out


# --------------------------------------------------------------------- Dirichlet


def _check_dirichlet(gamma, alpha) -> tuple[np.ndarray, np.ndarray]:
    """gamma as a float64 (N, K) array and alpha as a (K,) array, both checked."""
    g = checks.real_tensor(gamma, "gamma", ConfigError).detach().cpu().double().numpy()
    if g.ndim != 2 or g.shape[0] == 0 or g.shape[1] < 2:
        raise ConfigError(
            f"gamma must have shape (N, K) with N >= 1 documents and K >= 2 topics, "
            f"got {tuple(g.shape)}"
        )
    if not (np.isfinite(g).all() and (g > 0).all() and (g <= checks.MAX_CONCENTRATION).all()):
        raise ConfigError(
            f"gamma must be finite and in (0, {checks.MAX_CONCENTRATION:g}] everywhere"
        )
    k = g.shape[1]
    if checks.is_real(alpha):
        a = np.full(k, checks.concentration(alpha, "alpha"))
    else:
        a = checks.real_tensor(alpha, "alpha", ConfigError).detach().cpu().double().numpy()
        if a.shape != (k,):
            raise ConfigError(
                f"alpha must be a number or a ({k},) array (one per topic, as gamma's "
                f"columns), got shape {tuple(a.shape)}"
            )
        if not (np.isfinite(a).all() and (a > 0).all() and (a <= checks.MAX_CONCENTRATION).all()):
            raise ConfigError(
                f"alpha must be finite and in (0, {checks.MAX_CONCENTRATION:g}] everywhere"
            )
    return np.ascontiguousarray(g), a


def _log_beta(conc: np.ndarray) -> np.ndarray:
    """log B(c) = sum_k log Gamma(c_k) - log Gamma(sum_k c_k), along the last axis."""
    return special.gammaln(conc).sum(-1) - special.gammaln(conc.sum(-1))


def _dirichlet_kl(gamma: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """KL(Dir(gamma_n) || Dir(alpha)) for every row n, closed form (nats)."""
    g0 = gamma.sum(1, keepdims=True)
    elog = special.digamma(gamma) - special.digamma(g0)
    return _log_beta(alpha) - _log_beta(gamma) + ((gamma - alpha) * elog).sum(1)


def _log_dirichlet_sample(rng: np.random.Generator, gamma: np.ndarray, s: int) -> np.ndarray:
    """log theta for theta ~ Dir(gamma_n), S draws per row: (S, N, K).

    Drawn in log space: Gamma(a) = Gamma(a + 1) * U^(1/a) (U uniform on (0, 1]), so
    log X = log Gamma(a + 1) + log(U) / a is finite for every a. Drawing theta itself
    and taking its log fails at LDA's small concentrations: a Gamma(a) variate is below
    the smallest float64 (~1e-308 normal, 5e-324 subnormal) with probability ~1e-308^a,
    about 1e-3 at a = 0.01 (alpha = 1/K for K = 100), and one theta_k = 0 makes log q
    and log p infinite. Log space keeps such theta_k ~ e^-700 or e^-70000 exact.
    """
    shape = (s, *gamma.shape)
    log_g = np.log(rng.standard_gamma(gamma + 1.0, size=shape))
    log_u = np.log1p(-rng.random(shape))  # log of 1 - [0, 1) = (0, 1]: finite
    log_x = log_g + log_u / gamma
    return log_x - special.logsumexp(log_x, axis=-1, keepdims=True)


def _dirichlet_gap(log_theta, weights, log_norm, own, ref, rows: int, cols: int):
    """gap_i = log sum_m exp(log Dir(theta_i | gamma_m) - ref_i) with the own term m =
    own_i entered as exactly exp(0) = 1, so gap_i >= 0 in floating point.

    log Dir(theta | gamma_m) = log(theta) . (gamma_m - 1) - log B(gamma_m) is linear in
    log theta: one matrix product per (rows x cols) block, with a running-max
    log-sum-exp (a sharper component's density can exceed the own one's by e^700). In
    torch, float64: its exp is ~2.5x numpy's on the CPU, and exp is most of the time.
    """
    t = torch.from_numpy
    log_theta, weights_t, log_norm, own, ref = map(t, (log_theta, weights, log_norm, own, ref))
    weights_t = weights_t.T.contiguous()  # (K, N)
    m_total, n = log_theta.shape[0], weights_t.shape[1]
    gap = torch.zeros(m_total, dtype=torch.float64)
    if n == 1:
        return gap.numpy()  # only the own component
    for i0 in range(0, m_total, rows):
        i1 = min(m_total, i0 + rows)
        lt, oi, ri = log_theta[i0:i1], own[i0:i1], ref[i0:i1]
        run_max = torch.full((i1 - i0,), -math.inf, dtype=torch.float64)
        run_sum = torch.zeros(i1 - i0, dtype=torch.float64)
        for j0 in range(0, n, cols):
            j1 = min(n, j0 + cols)
            g = lt @ weights_t[:, j0:j1]
            g -= log_norm[j0:j1]
            g -= ri[:, None]
            hit = ((oi >= j0) & (oi < j1)).nonzero().squeeze(1)
            g[hit, oi[hit] - j0] = -math.inf
            new_max = torch.maximum(run_max, g.amax(1))
            # Rows with every entry -inf so far (the own column alone) keep sum 0.
            safe = torch.where(torch.isfinite(new_max), new_max, 0.0)
            # Entries below e^-600 of the row's largest (which adds exp(0) = 1) change the
            # sum by < N * 1e-260: raised to -600, as exp of subnormal results (below
            # ~e^-708) is ~5x slower on the CPU and far components fill most of a block.
            g -= safe[:, None]
            g.clamp_(min=-600.0)
            run_sum = run_sum * torch.exp(run_max - safe) + g.exp_().sum(1)
            run_max = new_max
        # log(1 + sum of the others), the others' log-sum-exp being run_max + log run_sum.
        gap[i0:i1] = torch.logaddexp(torch.zeros_like(run_max), run_max + run_sum.log())
    return gap.numpy()


def dirichlet_surgery(
    gamma: ArrayOrTensor,
    alpha: ArrayOrTensor,
    *,
    samples_per_doc: int = 10,
    seed: int | np.random.Generator = 0,
    batch_size: int | None = None,
    column_size: int | None = None,
) -> dict:
    """ELBO-surgery terms of N Dirichlet posteriors q(theta | d) = Dir(gamma_d) against
    the prior Dir(alpha), e.g. LDA's document-topic proportions.

    Same estimators as :func:`surgery` (see the module docstring): S draws
    theta_ds ~ Dir(gamma_d) for every document, log q(theta_ds) the exact log of the
    mixture of all N posteriors, computed in blocks; ``MI = log N - mean(gap) <= log N``
    in floating point, ``marginal_kl = mean(log q(theta) - log p(theta))``. The average
    KL is the closed form of the Dirichlet KL.

    Parameters
    ----------
    gamma : (N, K) array or tensor
        Dirichlet parameters of the N posteriors, finite and > 0 (K >= 2).
    alpha : float or (K,) array
        The prior's concentration (a float: symmetric Dir(alpha, ..., alpha)).
    samples_per_doc : int
        S, draws per document.
    seed : int or numpy.random.Generator
        Source of the draws (numpy: torch has no seeded gamma sampler); seed 0 by
        default, so repeated calls give the same estimate.
    batch_size, column_size : int, optional
        Rows (draws) and columns (documents) of the float64 block of log-densities held
        at once; memory is 8 * batch_size * column_size bytes. Default 512 x 2048.

    Returns
    -------
    dict with float values (nats per document)
        ``"average_kl"`` : (1/N) sum_d KL(Dir(gamma_d) || Dir(alpha)), closed form;
        ``"mutual_info"`` : I_q(d; theta) (``"mi"`` is an alias);
        ``"marginal_kl"`` : KL(q(theta) || p(theta));
        ``"average_kl_mc"`` : MC average KL on the same draws, = mutual_info +
        marginal_kl up to float rounding;
        ``"se_average_kl"`` (0: closed form), ``"se_average_kl_mc"``,
        ``"se_mutual_info"``, ``"se_marginal_kl"`` : Monte Carlo standard errors, with
        :func:`surgery`'s conventions;
        ``"log_n"``, ``"n"``, ``"n_samples"``, ``"kl_analytic"`` (True);
    and (N,) float64 numpy arrays ``"kl_per_datum"`` (closed form) and
    ``"mutual_info_per_datum"`` (MI terms averaged over each document's S draws).
    """
    gamma, alpha = _check_dirichlet(gamma, alpha)
    s = checks.integer(samples_per_doc, "samples_per_doc", 1)
    rng = checks.numpy_rng(seed, "seed")
    rows, cols = _block_sizes(torch.device("cpu"), batch_size, column_size)
    n, k = gamma.shape

    log_theta = _log_dirichlet_sample(rng, gamma, s).reshape(s * n, k)
    own = np.tile(np.arange(n), s)
    weights = gamma - 1.0
    log_norm = _log_beta(gamma)
    lq_own = (log_theta * weights[own]).sum(1) - log_norm[own]
    lp = log_theta @ (alpha - 1.0) - _log_beta(alpha)
    gap = _dirichlet_gap(log_theta, weights, log_norm, own, lq_own, rows, cols)

    log_n = math.log(n)
    mi_terms = log_n - gap
    marg_terms = lq_own + gap - log_n - lp  # log q(theta) - log p(theta)
    kl_terms = lq_own - lp
    kl_exact = _dirichlet_kl(gamma, alpha)
    resid = kl_terms - np.tile(kl_exact, s)
    t = torch.from_numpy
    return {
        "average_kl": float(kl_exact.mean()),
        "mutual_info": log_n - float(gap.mean()),  # <= log N exactly: mean(gap) >= 0
        "mi": log_n - float(gap.mean()),
        "marginal_kl": float(marg_terms.mean()),
        "average_kl_mc": float(kl_terms.mean()),
        "se_average_kl": 0.0,
        # As in surgery(): the residuals' mean square is the within-document variance.
        "se_average_kl_mc": float(np.sqrt((resid * resid).mean() / (s * n))),
        "se_mutual_info": _se(t(mi_terms)),
        "se_marginal_kl": _se(t(marg_terms)),
        "log_n": log_n,
        "n": n,
        "n_samples": s,
        "kl_analytic": True,
        "kl_per_datum": kl_exact,
        "mutual_info_per_datum": mi_terms.reshape(s, n).mean(0),
    }


def _inverse_digamma(y: np.ndarray) -> np.ndarray:
    """x with digamma(x) = y: Minka's (2000) starting point, then Newton steps."""
    x = np.where(y >= -2.22, np.exp(y) + 0.5, -1.0 / (y + np.euler_gamma))
    for _ in range(6):
        x = x - (special.digamma(x) - y) / special.polygamma(1, x)
    return x


def best_dirichlet_prior(
    gamma: ArrayOrTensor, *, tol: float = 1e-12, max_iter: int = 10_000
) -> np.ndarray:
    """The Dirichlet prior alpha (K,) closest to N Dirichlet posteriors Dir(gamma_d): the
    minimizer of the average KL(Dir(gamma_d) || Dir(alpha)).

    The mutual information of the ELBO surgery does not depend on the prior, so this
    alpha also minimizes the marginal KL over all Dirichlet priors: what remains with it
    is the mismatch no Dirichlet prior removes. The minimizer maximizes
    sum_d E_q[log Dir(theta_d | alpha)], a Dirichlet likelihood whose sufficient
    statistics are s_k = mean_d E_q[log theta_dk]; it is found by Minka's (2000,
    "Estimating a Dirichlet distribution") fixed point
    digamma(alpha_k) = digamma(sum alpha) + s_k, which raises that concave objective at
    every step. Stops when no alpha_k changes by more than ``tol`` relative.

    Raises ConfigError for bad gamma (as :func:`dirichlet_surgery`) and NumericalError
    if ``max_iter`` steps do not converge.
    """
    gamma, _ = _check_dirichlet(gamma, 1.0)
    tol = checks.positive(tol, "tol")
    max_iter = checks.integer(max_iter, "max_iter", 1)
    elog = special.digamma(gamma) - special.digamma(gamma.sum(1, keepdims=True))
    stats = elog.mean(0)
    # Start from the moment match of the posterior means (Minka 2000, section 1).
    mean = (gamma / gamma.sum(1, keepdims=True)).mean(0)
    alpha = mean.copy()
    for _ in range(max_iter):
        new = _inverse_digamma(special.digamma(alpha.sum()) + stats)
        if np.all(np.abs(new - alpha) <= tol * alpha):
            return new
        alpha = new
    raise NumericalError(f"best_dirichlet_prior: no convergence in {max_iter} fixed-point steps")
