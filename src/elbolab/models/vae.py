"""Variational autoencoders with MLP encoder and decoder, standard-normal or VampPrior.

Model (Kingma & Welling 2014; Rezende, Mohamed & Wierstra 2014)::

    z ~ p(z)                      standard normal N(0, I), or the VampPrior
    x | z ~ p_theta(x | z)        Bernoulli(logits = f_theta(z)) or N(f_theta(z), sigma2 I)
    q_phi(z | x) = N(mu_phi(x), diag(std_phi(x)^2))

The VampPrior (Tomczak & Welling 2018) is the mixture of the encoder's own posteriors at
K learned pseudo-inputs u_k::

    p(z) = (1/K) sum_k q_phi(z | u_k),  log p(z) = logsumexp_k log q_phi(z | u_k) - log K.

The module follows the protocol that every objective and diagnostic in elbolab relies
on, so a user's own model works with them if it offers the same three methods:

* ``encode(x)`` returns q(z | x) as a ``torch.distributions`` object with batch shape
  ``x.shape[:-1]`` and event shape ``(d,)`` (here ``Independent(Normal(mu, std), 1)``);
* ``decode(z)`` returns p(x | z) with event shape ``(D,)``, for ``z`` of any leading shape;
* ``prior()`` returns p(z), an object with ``log_prob(z)`` and ``sample(shape)``.

Randomness is explicit: weights are initialized from a ``torch.Generator`` (or seed),
and :func:`elbolab.distributions.rsample` draws reparameterized samples of a diagonal
Gaussian from one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.distributions import Bernoulli, Independent, MultivariateNormal

from .. import checks
from ..distributions import DiagonalNormal, StandardNormal, VampPriorDistribution
from ..errors import ConfigError

__all__ = ["VAE"]

_ACTIVATIONS = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "softplus": nn.Softplus,
    "identity": nn.Identity,  # deep *linear* networks (Lucas et al. 2019, section 6)
}


def _linear(fan_in: int, fan_out: int, generator: torch.Generator, dtype) -> nn.Linear:
    # skip_init: nn.Linear's own reset_parameters would draw from the global RNG.
    layer = torch.nn.utils.skip_init(nn.Linear, fan_in, fan_out, dtype=dtype)
    bound = 1.0 / math.sqrt(fan_in)  # PyTorch's default Linear initialization
    with torch.no_grad():
        layer.weight.uniform_(-bound, bound, generator=generator)
        layer.bias.uniform_(-bound, bound, generator=generator)
    return layer


def _mlp(sizes: Sequence[int], activation: str, generator, dtype) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(_linear(a, b, generator, dtype))
        if i < len(sizes) - 2:
            layers.append(_ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


class VAE(nn.Module):
    """Variational autoencoder with MLP encoder and decoder.

    Parameters
    ----------
    data_dim : int
        D, the dimension of x.
    latent_dim : int
        d, the dimension of z.
    hidden : sequence of int
        Hidden layer widths of the encoder (D -> hidden[0] -> ... -> 2d); the decoder uses
        them in reverse (d -> hidden[-1] -> ... -> D) unless ``decoder_hidden`` is given.
        ``()`` gives linear maps (the linear-Gaussian VAE, whose log p(x) is
        :meth:`exact_log_marginal`).
    decoder_hidden : sequence of int, optional
        Hidden widths of the decoder when they differ from the encoder's; ``()`` gives a
        linear decoder p(x | z) = N(W z + b, sigma^2 I) behind any encoder.
    likelihood : {"bernoulli", "gaussian"}
        p(x | z): ``Independent(Bernoulli(logits=f(z)), 1)`` or
        ``Independent(Normal(f(z), sqrt(sigma2)), 1)``.
    sigma2 : float
        Observation noise variance sigma^2 of the Gaussian likelihood (initial value when
        learned).
    learn_sigma2 : bool
        Learn sigma^2 (as log sigma^2, one scalar shared by all pixels).
    prior : {"normal", "vamp"}
        Standard normal N(0, I) or the VampPrior with ``n_pseudo`` pseudo-inputs.
    n_pseudo : int
        K, the number of VampPrior pseudo-inputs u_k.
    activation : {"tanh", "relu", "elu", "softplus"}
        Hidden-layer nonlinearity.
    pseudo_mean, pseudo_std : float
        The pseudo-inputs (K, D) start at N(pseudo_mean, pseudo_std^2) in data space.
        Tomczak & Welling's code draws them from N(-0.05, 0.01^2) behind a hardtanh to
        [0, 1]; in PyTorch that hardtanh has zero gradient below 0, so here the u_k are
        free parameters started at a small positive value (0.05). Call
        :meth:`init_pseudo_inputs` to start them at random training points instead (the
        paper's alternative).
    logvar_min, logvar_max : float
        The encoder's log-variance is clamped to this range, so std is never 0 (nor
        overflows); exp(-20/2) = 4.5e-5.
    generator : torch.Generator or int
        Source of the initial weights (an int is a seed; a generator must be a CPU one).
        Weights are drawn on the CPU, so a seed gives the same model on every device;
        move it with ``model.to(device)``. The global RNG is not used.
    dtype : torch.dtype, optional
        Parameter dtype (float32 by default; ``model.double()`` also works).

    Attributes
    ----------
    encoder : nn.Sequential
        x -> (mu, log sigma^2) concatenated, (..., 2d).
    decoder : nn.Sequential
        z -> logits or means, (..., D).
    log_sigma2 : tensor (parameter when learned, else buffer)
        log sigma^2 of the Gaussian likelihood.
    pseudo_inputs : (K, D) parameter
        VampPrior pseudo-inputs u_k (only with ``prior="vamp"``).
    """

    def __init__(
        self,
        data_dim: int,
        latent_dim: int,
        hidden: Sequence[int] = (512, 256),
        likelihood: str = "bernoulli",
        *,
        decoder_hidden: Sequence[int] | None = None,
        sigma2: float = 1.0,
        learn_sigma2: bool = False,
        prior: str = "normal",
        n_pseudo: int = 500,
        activation: str = "tanh",
        pseudo_mean: float = 0.05,
        pseudo_std: float = 0.01,
        logvar_min: float = -20.0,
        logvar_max: float = 10.0,
        generator: torch.Generator | int = 0,
        dtype: torch.dtype | None = None,
    ):
        super().__init__()
        self.data_dim = checks.integer(data_dim, "data_dim", 1)
        self.latent_dim = checks.integer(latent_dim, "latent_dim", 1)
        # Widths of the hidden layers; none (``()``) makes a linear map.
        hidden = checks.integers(hidden, "hidden", 1, allow_empty=True)
        decoder_hidden = (
            hidden[::-1]
            if decoder_hidden is None
            else checks.integers(decoder_hidden, "decoder_hidden", 1, allow_empty=True)
        )
        if likelihood not in ("bernoulli", "gaussian"):
            raise ConfigError(f"likelihood must be 'bernoulli' or 'gaussian', got {likelihood!r}")
        if prior not in ("normal", "vamp"):
            raise ConfigError(f"prior must be 'normal' or 'vamp', got {prior!r}")
        if activation not in _ACTIVATIONS:
            raise ConfigError(
                f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}"
            )
        sigma2 = checks.positive(sigma2, "sigma2")
        logvar_min = checks.number(logvar_min, "logvar_min")
        logvar_max = checks.number(logvar_max, "logvar_max")
        if not logvar_min < logvar_max:
            raise ConfigError(
                f"logvar_min must be below logvar_max, got {logvar_min}, {logvar_max}"
            )
        if dtype is None:
            dtype = torch.get_default_dtype()
        # Weights are drawn on the CPU (move the model with .to(device) afterwards), so a
        # seed gives the same initial model on every device.
        gen = checks.torch_generator(generator, "generator")

        self.hidden = hidden
        self.decoder_hidden = decoder_hidden
        self.likelihood = likelihood
        self.prior_kind = prior
        self.activation = activation
        self.logvar_min = float(logvar_min)
        self.logvar_max = float(logvar_max)

        data_dim, latent_dim = self.data_dim, self.latent_dim
        self.encoder = _mlp((data_dim, *hidden, 2 * latent_dim), activation, gen, dtype)
        self.decoder = _mlp((latent_dim, *decoder_hidden, data_dim), activation, gen, dtype)

        log_s2 = torch.tensor(math.log(sigma2), dtype=dtype)
        if learn_sigma2:
            self.log_sigma2 = nn.Parameter(log_s2)
        else:
            self.register_buffer("log_sigma2", log_s2)

        if prior == "vamp":
            self.n_pseudo = checks.integer(n_pseudo, "n_pseudo", 1)
            u = torch.empty(self.n_pseudo, self.data_dim, dtype=dtype)
            u.normal_(
                checks.number(pseudo_mean, "pseudo_mean"),
                checks.positive(pseudo_std, "pseudo_std", allow_zero=True),
                generator=gen,
            )
            self.pseudo_inputs = nn.Parameter(u)
        else:
            self.n_pseudo = 0
        # zeros(1) only carries dtype/device for the standard-normal prior.
        self.register_buffer("_anchor", torch.zeros(1, dtype=dtype), persistent=False)

    # -- the protocol ----------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> DiagonalNormal:
        """q_phi(z | x) = N(mu, diag(std^2)).

        Parameters
        ----------
        x : (..., D) tensor

        Returns
        -------
        ``Independent(Normal(mu, std), 1)`` with batch shape ``x.shape[:-1]``, event (d,).
        """
        x = x.to(self._anchor)
        out = self.encoder(x)
        mu, logvar = out[..., : self.latent_dim], out[..., self.latent_dim :]
        logvar = logvar.clamp(self.logvar_min, self.logvar_max)
        return DiagonalNormal(mu, torch.exp(0.5 * logvar))

    def decode(self, z: torch.Tensor) -> Independent:
        """p_theta(x | z).

        Parameters
        ----------
        z : (..., d) tensor

        Returns
        -------
        ``Independent(Bernoulli(logits), 1)`` or ``Independent(Normal(mean, sigma), 1)``
        with batch shape ``z.shape[:-1]`` and event shape (D,).
        """
        out = self.decoder(z)
        if self.likelihood == "bernoulli":
            return Independent(Bernoulli(logits=out, validate_args=False), 1, validate_args=False)
        sigma = torch.exp(0.5 * self.log_sigma2).expand_as(out)
        return DiagonalNormal(out, sigma)

    def prior(self) -> DiagonalNormal | VampPriorDistribution:
        """p(z): N(0, I) (a :class:`StandardNormal`) or the VampPrior mixture.

        The VampPrior is rebuilt from the current pseudo-inputs at each call, so call it
        once per step and keep the result (it is differentiable in u_k and phi).
        """
        if self.prior_kind == "normal":
            return StandardNormal(self.latent_dim, self._anchor)
        q_u = self.encode(self.pseudo_inputs)
        return VampPriorDistribution(q_u.loc, q_u.scale)

    # -- helpers ---------------------------------------------------------------------
    @property
    def sigma2(self) -> float:
        """Current observation noise variance sigma^2 (Gaussian likelihood)."""
        return float(torch.exp(self.log_sigma2.detach()))

    def init_pseudo_inputs(self, x: torch.Tensor, generator: torch.Generator | int) -> None:
        """Set the VampPrior pseudo-inputs to K distinct random rows of ``x`` (N >= K).

        Parameters
        ----------
        x : (N, D) training data
        generator : torch.Generator or int
        """
        if self.prior_kind != "vamp":
            raise ConfigError("init_pseudo_inputs needs prior='vamp'")
        if x.ndim != 2 or x.shape[1] != self.data_dim or x.shape[0] < self.n_pseudo:
            raise ConfigError(
                f"x must have shape (N >= {self.n_pseudo}, {self.data_dim}), got {tuple(x.shape)}"
            )
        gen = checks.torch_generator(generator, "generator", device=x.device)
        idx = torch.randperm(x.shape[0], generator=gen, device=x.device)[: self.n_pseudo]
        with torch.no_grad():
            self.pseudo_inputs.copy_(x[idx].to(self.pseudo_inputs))

    def exact_log_marginal(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log p(x) of a linear-decoder Gaussian VAE (any encoder, normal prior).

        With a linear decoder f(z) = W z + b, p(x) = N(x; b, W W^T + sigma^2 I) (the
        probabilistic-PCA marginal, Tipping & Bishop 1999). Computed in float64.

        Parameters
        ----------
        x : (N, D) tensor

        Returns
        -------
        (N,) float64 tensor of log p(x_n) in nats.
        """
        if (
            self.decoder_hidden != ()
            or self.likelihood != "gaussian"
            or self.prior_kind != "normal"
        ):
            raise ConfigError(
                "exact_log_marginal needs a linear decoder (decoder_hidden=()), "
                "likelihood='gaussian' and prior='normal'"
            )
        lin = self.decoder[0]
        w = lin.weight.detach().double()
        b = lin.bias.detach().double()
        cov = w @ w.T + torch.exp(self.log_sigma2.detach().double()) * torch.eye(
            self.data_dim, dtype=torch.float64, device=w.device
        )
        x = torch.as_tensor(x)
        checks.same_device(x.device, "x", w.device, "the model")
        return MultivariateNormal(b, covariance_matrix=cov).log_prob(x.double())

    def extra_repr(self) -> str:
        return (
            f"data_dim={self.data_dim}, latent_dim={self.latent_dim}, hidden={self.hidden}, "
            f"likelihood={self.likelihood!r}, prior={self.prior_kind!r}, "
            f"n_pseudo={self.n_pseudo}, activation={self.activation!r}"
        )
