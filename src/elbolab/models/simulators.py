"""Generative models with a simulator and a joint density, for the forward-KL experiments.

Each model draws pairs from its joint, ``simulate(generator, n) -> (z, x)`` (what the
expected forward KL needs), and evaluates ``log_joint(z, x)`` in nats with every
constant (what the ELBO and IWBO need).

Devices: every draw comes from the generator it is given and is made on that
generator's device (a CUDA generator gives CUDA tensors, a CPU one CPU tensors, the
same numbers as ever); densities are evaluated on the device of their arguments. The
models' fixed parameters (``ConjugateGaussian.A``, ``ShiftedMixture.offsets``,
``RotatedDigits.templates``) stay where they were made and are moved to the device in
use when needed (a no-op when they are already there).


- :class:`ConjugateGaussian`: z ~ N(0, I), x | z ~ N(A z, sigma^2 I), whose posterior is
  Gaussian in closed form (diagonal here, so a diagonal family contains it);
- :class:`ShiftedMixture`: the amortized-clustering model of McNamara, Loper & Regier
  (2024): a shift S, centres Z_k near S + c_k and observations from the equal-weight
  mixture of N(Z_k, tau^2);
- :class:`RotatedDigits`: known digit images rotated by one shared unknown angle plus
  Gaussian pixel noise; the posterior over the angle is computed on a grid.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .. import checks
from ..errors import ConfigError

__all__ = ["ConjugateGaussian", "RotatedDigits", "ShiftedMixture", "rotate"]

_LOG_2PI = math.log(2 * math.pi)


def _normal_log_prob(x: torch.Tensor, mean, sd) -> torch.Tensor:
    sd = torch.as_tensor(sd, dtype=x.dtype, device=x.device)
    return -0.5 * (((x - mean) / sd) ** 2 + _LOG_2PI) - torch.log(sd)


class ConjugateGaussian:
    """z ~ N(0, I_d), x | z ~ N(A z, sigma^2 I_D) with A's columns orthogonal.

    Then the posterior is N(S A^T x / sigma^2, S) with S = (I + A^T A / sigma^2)^{-1}
    diagonal: S_jj = 1 / (1 + |a_j|^2 / sigma^2).

    Parameters
    ----------
    latent_dim, data_dim : int
        d <= D.
    column_norms : sequence of d floats
        |a_j|, the signal strength of each latent coordinate.
    sigma : float
        Observation noise standard deviation.
    seed : int
        The orthonormal directions of A's columns.
    """

    def __init__(self, latent_dim=2, data_dim=5, column_norms=(2.0, 1.0), sigma=1.0, seed=0):
        if not 1 <= latent_dim <= data_dim or len(column_norms) != latent_dim or sigma <= 0:
            raise ConfigError("ConjugateGaussian needs 1 <= d <= D, d column norms and sigma > 0")
        gen = checks.torch_generator(seed, "seed")
        q, _ = torch.linalg.qr(torch.randn(data_dim, data_dim, generator=gen, dtype=torch.float64))
        self.A = q[:, :latent_dim] * torch.tensor(column_norms, dtype=torch.float64)
        self.sigma = float(sigma)
        self.latent_dim, self.data_dim = latent_dim, data_dim
        norms2 = torch.tensor(column_norms, dtype=torch.float64) ** 2
        self.posterior_var = 1.0 / (1.0 + norms2 / self.sigma**2)  # (d,)

    def simulate(self, generator: torch.Generator, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """n pairs (z (n, d), x (n, D)) drawn from ``generator``, on its device."""
        dev = generator.device
        z = torch.randn(n, self.latent_dim, generator=generator, dtype=torch.float64, device=dev)
        noise = torch.randn(n, self.data_dim, generator=generator, dtype=torch.float64, device=dev)
        return z, z @ self.A.to(dev).T + self.sigma * noise

    def posterior_mean(self, x: torch.Tensor) -> torch.Tensor:
        a, var = self.A.to(x.device), self.posterior_var.to(x.device)
        return (x @ a) * var / self.sigma**2

    def posterior_entropy(self) -> float:
        """H[p(z | x)] in nats (the same for every x): the floor of E[-log q(z | x)]."""
        return float(0.5 * (torch.log(2 * math.pi * math.e * self.posterior_var)).sum())

    def posterior_nll(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """-log p(z | x) of each pair, (n,)."""
        sd = self.posterior_var.to(z.device).sqrt()
        return -_normal_log_prob(z, self.posterior_mean(x), sd).sum(-1)


class ShiftedMixture:
    """Amortized clustering with label switching (McNamara, Loper & Regier 2024).

    S ~ N(0, prior_sd^2); Z_k | S ~ N(S + c_k, centre_sd^2) for the K offsets c_k;
    x_i | Z ~ sum_k (1/K) N(Z_k, tau^2), i = 1..n_obs. The latent is z = (S, Z_1..Z_K).
    The likelihood is invariant to permuting the Z_k; the prior is not, and ties each
    Z_k to its offset, so the posterior mode of Z is in increasing order.

    Everything is in the model's units; ``scale`` (100 by default) is the unit the
    encoders see (inputs and outputs divided by it), so networks work with numbers of
    order one.
    """

    def __init__(
        self,
        offsets=(-20.0, -10.0, 0.0, 10.0, 20.0),
        prior_sd=100.0,
        centre_sd=0.5,
        tau=0.1,
        n_obs=1000,
        scale=100.0,
    ):
        self.offsets = torch.tensor(offsets, dtype=torch.float64)
        self.prior_sd, self.centre_sd, self.tau = float(prior_sd), float(centre_sd), float(tau)
        self.n_obs, self.scale = int(n_obs), float(scale)
        self.n_components = len(offsets)

    def simulate_given_shift(self, generator, shift: torch.Tensor) -> tuple:
        """Z and x for given shifts S (n,): returns z (n, 1 + K) and x (n, n_obs), drawn
        from ``generator`` on its device (``shift`` is moved there)."""
        dev = generator.device
        shift = shift.to(dev)
        n = shift.shape[0]
        k = self.n_components
        centres = (
            shift[:, None]
            + self.offsets.to(dev)
            + self.centre_sd
            * torch.randn(n, k, generator=generator, dtype=torch.float64, device=dev)
        )
        labels = torch.randint(0, k, (n, self.n_obs), generator=generator, device=dev)
        x = torch.gather(centres, 1, labels) + self.tau * torch.randn(
            n, self.n_obs, generator=generator, dtype=torch.float64, device=dev
        )
        return torch.cat([shift[:, None], centres], 1), x

    def simulate(self, generator, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """n pairs (z (n, 1 + K), x (n, n_obs)) drawn from ``generator``, on its device."""
        dev = generator.device
        shift = self.prior_sd * torch.randn(n, generator=generator, dtype=torch.float64, device=dev)
        return self.simulate_given_shift(generator, shift)

    def log_joint(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(z, x) for z (..., 1 + K) and x (..., n_obs) broadcasting over leading dims."""
        shift, centres = z[..., 0], z[..., 1:]
        prior = _normal_log_prob(shift, 0.0, self.prior_sd)
        prior = prior + _normal_log_prob(
            centres, shift[..., None] + self.offsets.to(z.device), self.centre_sd
        ).sum(-1)
        comp = _normal_log_prob(x[..., :, None], centres[..., None, :], self.tau)
        lik = (torch.logsumexp(comp, -1) - math.log(self.n_components)).sum(-1)
        return prior + lik


def rotate(images: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Rotate square images counterclockwise by angles (radians), bilinear, zeros outside.

    Parameters
    ----------
    images : (N, H, W) tensor
    angles : (M,) tensor

    Returns
    -------
    (M, N, H, W) tensor: every image rotated by every angle (differentiable in the angles).
    """
    m, (n, h, w) = angles.shape[0], images.shape
    cos, sin = torch.cos(angles), torch.sin(angles)
    # affine_grid maps output coordinates to input ones: rotate the sampling grid by -angle
    # so the picture turns by +angle (counterclockwise as displayed, y pointing down).
    theta = torch.stack(
        [
            torch.stack([cos, -sin, torch.zeros_like(cos)], -1),
            torch.stack([sin, cos, torch.zeros_like(cos)], -1),
        ],
        -2,
    )  # (M, 2, 3)
    theta = theta.repeat_interleave(n, 0).to(images.dtype)
    grid = F.affine_grid(theta, (m * n, 1, h, w), align_corners=False)
    src = images[None].expand(m, n, h, w).reshape(m * n, 1, h, w)
    out = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.reshape(m, n, h, w)


class RotatedDigits:
    """Known images t_i rotated by one angle theta ~ Uniform[0, 2 pi), plus N(0, sigma^2) noise.

    x_i = rotate(t_i, theta) + sigma eps_i. ``log_likelihood`` is exact (the templates
    are known), so the posterior over theta is available on a grid.

    Parameters
    ----------
    templates : (N, H, W) tensor
        The digits, pixels in [0, 1].
    sigma : float
        Pixel noise standard deviation.
    """

    def __init__(self, templates: torch.Tensor, sigma: float = 0.5):
        if templates.dim() != 3 or sigma <= 0:
            raise ConfigError("RotatedDigits needs (N, H, W) templates and sigma > 0")
        self.templates = templates.to(torch.float32)
        self.sigma = float(sigma)

    def simulate(self, generator, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """n pairs (theta (n,), x (n, N, H, W)) drawn from ``generator``, on its device."""
        dev = generator.device
        theta = 2 * math.pi * torch.rand(n, generator=generator, dtype=torch.float64, device=dev)
        return theta, self.observe(generator, theta)

    def observe(self, generator, theta: torch.Tensor) -> torch.Tensor:
        """Noisy rotated sets for given angles: (n, N, H, W), on ``generator``'s device
        (``theta`` is moved there)."""
        dev = generator.device
        clean = rotate(self.templates.to(dev), theta.to(dev, torch.float32))
        return clean + self.sigma * torch.randn(clean.shape, generator=generator, device=dev)

    def log_likelihood(self, theta: torch.Tensor, x: torch.Tensor, chunk: int = 64) -> torch.Tensor:
        """log p(x | theta) for angles theta (M,) and one observed set x (N, H, W), nats,
        on x's device."""
        out = []
        n_pix = x.numel()
        templates = self.templates.to(x.device)
        theta = theta.to(x.device)
        for i in range(0, theta.shape[0], chunk):
            mean = rotate(templates, theta[i : i + chunk].to(torch.float32))
            sq = ((x[None] - mean) ** 2).flatten(1).sum(1).to(torch.float64)
            out.append(-0.5 * sq / self.sigma**2 - n_pix * (math.log(self.sigma) + 0.5 * _LOG_2PI))
        return torch.cat(out)

    def log_joint(self, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(theta, x) with the uniform prior density 1 / (2 pi) on the circle."""
        return self.log_likelihood(torch.remainder(theta, 2 * math.pi), x) - _LOG_2PI

    def posterior_grid(self, x: torch.Tensor, n_grid: int = 7200) -> dict:
        """Exact posterior density over theta on a uniform grid of [0, 2 pi) (normalized),
        on x's device."""
        grid = torch.arange(n_grid, dtype=torch.float64, device=x.device) * (2 * math.pi / n_grid)
        ll = self.log_likelihood(grid, x)
        step = 2 * math.pi / n_grid
        log_norm = torch.logsumexp(ll, 0) + math.log(step)
        return {
            "theta": grid,
            "log_density": ll - log_norm,
            "step": step,
            "log_evidence": float(log_norm - _LOG_2PI),
        }
