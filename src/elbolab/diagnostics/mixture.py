"""log p(z) of a mixture of diagonal Gaussians (the VampPrior) by matrix products, and
the working-memory budget of the diagnostics' steps.

A mixture of K diagonal Gaussians (``MixtureSameFamily`` of ``Independent(Normal)``, as
:class:`~elbolab.distributions.VampPriorDistribution`) is evaluated by one matrix
product per block of rows instead of a (samples, batch, K, d) broadcast::

    log w_k N(z; m_k, s_k) = [z^2, z, 1] . [-1/(2 s_k^2), m_k/s_k^2, c_k],
    c_k = -sum_j m_kj^2/(2 s_kj^2) - sum_j log s_kj - (d/2) log 2 pi + log w_k,

and log p(z) is the row log-sum-exp over k (:class:`DiagonalMixture`). Expanding the
square cancels terms; the rounding error of each product is at most
``gamma_{2d+3} * sum_j |a_j| |f_kj|`` (a = [z^2, z, 1], f the row above; Higham 2002,
eq. 3.5, two more for rounding the inputs), which bounds the error of log p(z) too (a
log-sum-exp moves by at most the largest change of its terms). Each block takes the
cheapest precision whose bound is at most 1e-4 nats: float32 (unit roundoff 2^-24;
2^-11 under TF32 matmuls), else float64 (2^-53), else the direct (difference) formula.
The float32 bound is rarely met by a VampPrior in R^20 (the untrained 784-200-200-20
model's is 4.6e-4 nats), so in practice the product runs in float64: exact to ~1e-12
nats and, on a GPU, still far cheaper than the broadcast.

Used by :func:`elbolab.diagnostics.log_likelihood` (the prior term of every importance
weight) and :func:`elbolab.diagnostics.surgery` (the marginal KL against a mixture prior).
"""

from __future__ import annotations

import math

import torch
from torch.distributions import Independent, MixtureSameFamily, Normal

from ..errors import ConfigError

__all__ = ["MIXTURE_TOLERANCE", "DiagonalMixture", "default_budget"]

_LOG_2PI = math.log(2.0 * math.pi)

# Largest worst-case rounding error (nats) accepted from the expanded quadratic form
# before a higher precision (or the direct formula) is used: the same tolerance as the
# "auto" method of the ELBO-surgery aggregate posterior.
MIXTURE_TOLERANCE = 1e-4

# Working memory of one step by default: small on the CPU (measured fastest: 16 MiB
# steps ran ~1.5x faster than 64-256 MiB ones, whose temporaries leave the cache and the
# allocator's heap), a quarter of the free memory (at most 4 GiB) on a GPU.
_CPU_BUDGET = 16 * 2**20
_CUDA_BUDGET = 4 * 2**30


def _float32_unit(device: torch.device) -> float:
    """Unit roundoff of a float32 matrix product on ``device`` (TF32/bf16 when allowed)."""
    if torch.get_float32_matmul_precision() != "highest":
        return 2.0**-8  # bfloat16 passes ("medium") or TF32 ("high"): bound by the worse
    matmul = torch.backends.cuda.matmul
    if device.type == "cuda" and (
        matmul.allow_tf32 or getattr(matmul, "fp32_precision", None) == "tf32"
    ):
        return 2.0**-11
    return 2.0**-24


class DiagonalMixture:
    """log p(z) of a mixture of K diagonal Gaussians by matrix products (see the module
    docstring): ``sum_k w_k N(z; loc_k, diag(scale_k^2))`` for (..., d) z.

    Parameters
    ----------
    loc, scale : (K, d) tensors
    log_weights : (K,) tensor, log w_k (normalized)
    block_bytes : int
        Memory of one (rows, K) block of component log-densities.
    """

    def __init__(self, loc, scale, log_weights, block_bytes: int = _CPU_BUDGET):
        loc = loc.detach().to(torch.float64)
        scale = scale.detach().to(torch.float64)
        log_w = log_weights.detach().to(torch.float64)
        self.k, self.d = loc.shape
        self.device = loc.device
        self.block_bytes = block_bytes
        prec = scale.pow(-2)
        self.loc, self.scale = loc, scale
        self.log_norm = -scale.log().sum(1) - 0.5 * self.d * _LOG_2PI + log_w  # (K,)
        const = -0.5 * (loc * loc * prec).sum(1) + self.log_norm
        feats = torch.cat([-0.5 * prec, loc * prec, const[:, None]], 1)  # (K, 2d+1)
        self.feats64 = feats.T.contiguous()
        self.absmax = feats.abs().amax(0)  # (2d+1,) float64 on the device
        f32 = feats.to(torch.float32)
        self.feats32 = f32.T.contiguous() if bool(torch.isfinite(f32).all()) else None

    @classmethod
    def of(cls, prior, block_bytes: int = _CPU_BUDGET) -> DiagonalMixture | None:
        """The mixture behind ``prior`` when it is a ``MixtureSameFamily`` of diagonal
        Gaussians with batch shape () and event shape (d,), else None."""
        if not isinstance(prior, MixtureSameFamily):
            return None
        comp, mix = prior.component_distribution, prior.mixture_distribution
        if not (
            isinstance(comp, Independent)
            and isinstance(comp.base_dist, Normal)
            and comp.reinterpreted_batch_ndims == 1
            and len(comp.batch_shape) == 1
            and len(comp.event_shape) == 1
            and tuple(mix.batch_shape) == ()
        ):
            return None
        shape = comp.batch_shape + comp.event_shape
        loc = comp.base_dist.loc.expand(shape)
        scale = comp.base_dist.scale.expand(shape)
        log_w = torch.log_softmax(mix.logits.detach().to(torch.float64), -1)
        return cls(loc, scale, log_w, block_bytes)

    def error_bounds(self, z: torch.Tensor) -> torch.Tensor:
        """(float32, float64) worst-case errors (nats) of the expanded form for rows z,
        as one float64 tensor of 2 (one device sync to read them)."""
        d = self.d
        zmax = z.detach().abs().amax(tuple(range(z.ndim - 1))).to(torch.float64)
        s = (zmax * zmax * self.absmax[:d]).sum() + (zmax * self.absmax[d : 2 * d]).sum()
        s = s + self.absmax[2 * d]
        n = 2 * d + 3
        units = torch.tensor(
            [_float32_unit(z.device), 2.0**-53], dtype=torch.float64, device=z.device
        )
        gamma = n * units / (1.0 - n * units)
        return gamma * s

    def log_prob(self, z: torch.Tensor, tolerance: float = MIXTURE_TOLERANCE) -> torch.Tensor:
        """log p(z) for (..., d) z, float64 of shape z.shape[:-1], in the cheapest precision
        whose worst-case error is within ``tolerance`` nats."""
        if z.shape[-1] != self.d:
            raise ConfigError(f"z must have {self.d} columns, got shape {tuple(z.shape)}")
        lead = z.shape[:-1]
        zr = z.reshape(-1, self.d)
        if zr.shape[0] == 0:
            return torch.empty(lead, dtype=torch.float64, device=z.device)
        b32, b64 = self.error_bounds(zr).tolist()
        if zr.dtype == torch.float32 and self.feats32 is not None and b32 <= tolerance:
            out = self._gemm(zr, self.feats32)
        elif b64 <= tolerance:
            out = self._gemm(zr.to(torch.float64), self.feats64)
        else:
            out = self._direct(zr.to(torch.float64))
        return out.reshape(lead)

    def _rows(self, per_row: int) -> int:
        return max(1, self.block_bytes // max(1, per_row))

    def _gemm(self, z: torch.Tensor, feats_t: torch.Tensor) -> torch.Tensor:
        out = torch.empty(z.shape[0], dtype=torch.float64, device=z.device)
        step = self._rows(3 * self.k * z.element_size())
        for i0 in range(0, z.shape[0], step):
            zi = z[i0 : i0 + step]
            a = torch.cat([zi * zi, zi, torch.ones_like(zi[:, :1])], 1)
            out[i0 : i0 + step] = torch.logsumexp(a @ feats_t, 1).to(torch.float64)
        return out

    def direct_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) by the difference formula in float64 (the reference)."""
        return self._direct(z.reshape(-1, self.d).to(torch.float64)).reshape(z.shape[:-1])

    def _direct(self, z: torch.Tensor) -> torch.Tensor:
        out = torch.empty(z.shape[0], dtype=torch.float64, device=z.device)
        cols = min(self.k, 256)
        rows = self._rows(3 * 8 * self.d * cols)  # (rows, cols, d) float64 differences
        for i0 in range(0, z.shape[0], rows):
            zi = z[i0 : i0 + rows, None, :]
            acc = torch.full((zi.shape[0],), -math.inf, dtype=torch.float64, device=z.device)
            for k0 in range(0, self.k, cols):
                u = (zi - self.loc[None, k0 : k0 + cols]) / self.scale[None, k0 : k0 + cols]
                g = -0.5 * (u * u).sum(-1) + self.log_norm[None, k0 : k0 + cols]
                acc = torch.logaddexp(acc, torch.logsumexp(g, 1))
            out[i0 : i0 + rows] = acc
        return out


def default_budget(device: torch.device) -> int:
    """Bytes of working memory of one step on ``device`` by default: 16 MiB on the CPU, a
    quarter of the free memory (at most 4 GiB) on a GPU."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(min(_CUDA_BUDGET, free // 4))
    return _CPU_BUDGET
