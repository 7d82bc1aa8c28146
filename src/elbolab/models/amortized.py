"""Amortized variational families for the forward-KL experiments, and their kernel regime.

An amortized family is ``q(z; f(x; phi))``: a network ``f`` maps an observation to the
parameters of a distribution. :class:`Amortized` pairs a network with one of the
:data:`FAMILIES` that turn its outputs into a ``torch.distributions`` object.

For the neural-tangent-kernel view of McNamara, Loper & Regier (2024):

- :class:`MLP` with ``parameterization="ntk"`` (Jacot et al. 2018): weights and biases
  start N(0, 1) and each layer's product is scaled by ``1 / sqrt(fan_in)``, so the kernel
  has a limit as the width grows and one learning rate suits every width;
- :class:`Linearized`: the first-order Taylor expansion of a network in its parameters
  around their initial values, ``f_lin(x; theta) = f(x; theta_0) + J(x; theta_0)
  (theta - theta_0)``, evaluated with ``torch.func.jvp`` (no Jacobian is formed); what
  gradient descent on a network of infinite width follows (Lee et al. 2019);
- :func:`empirical_ntk` and :func:`ntk_drift`: the kernel ``J(x) J(x')^T`` on probe
  points and how far it moved from its value at initialization.

Devices: the networks draw their initial weights on the CPU from a seed (so a seed gives
the same initial network on every device) and move with ``.to(device)``; a
:class:`Linearized` expansion moves with them, its theta_0 included.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch
from torch import nn
from torch.func import functional_call, jacrev, jvp, vmap

from .. import checks
from ..distributions import DiagonalNormal
from ..errors import ConfigError

__all__ = [
    "FAMILIES",
    "MLP",
    "EnsembleMLP",
    "Amortized",
    "Centered",
    "Linearized",
    "empirical_ntk",
    "ntk_drift",
]

_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "softplus": nn.Softplus, "elu": nn.ELU}
_LOG_SCALE_RANGE = (-10.0, 5.0)  # keeps scales in [4.5e-5, 148]: never 0, never overflowing


class _NTKLinear(nn.Module):
    """``y = (x W^T) / sqrt(fan_in) + b`` with W, b ~ N(0, 1) (the NTK parameterization)."""

    def __init__(self, fan_in: int, fan_out: int, generator: torch.Generator, dtype):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(fan_out, fan_in, generator=generator, dtype=dtype))
        self.bias = nn.Parameter(torch.randn(fan_out, generator=generator, dtype=dtype))
        self.scale = 1.0 / math.sqrt(fan_in)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x @ self.weight.T) * self.scale + self.bias


class MLP(nn.Module):
    """A multilayer perceptron ``(..., in_dim) -> (..., out_dim)``.

    Parameters
    ----------
    in_dim, out_dim : int
    width : int
        Units per hidden layer.
    depth : int
        Number of hidden layers (>= 1).
    activation : {"relu", "tanh", "softplus", "elu"}
    parameterization : {"ntk", "standard"}
        ``"ntk"``: N(0, 1) weights and biases, products scaled by 1/sqrt(fan_in).
        ``"standard"``: PyTorch's ``nn.Linear`` initialization (drawn from ``generator``).
    generator : torch.Generator or int
        Source of the initial weights: a seed or a CPU generator (the weights are drawn
        on the CPU; move the network with ``.to(device)``).
    dtype : torch.dtype
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        width: int = 256,
        depth: int = 2,
        activation: str = "relu",
        parameterization: str = "ntk",
        generator: torch.Generator | int = 0,
        dtype: torch.dtype = torch.float32,
    ):
        super().__init__()
        in_dim = checks.integer(in_dim, "in_dim", 1)
        out_dim = checks.integer(out_dim, "out_dim", 1)
        width = checks.integer(width, "width", 1)
        depth = checks.integer(depth, "depth", 1)
        if activation not in _ACTIVATIONS:
            raise ConfigError(
                f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}"
            )
        if parameterization not in ("ntk", "standard"):
            raise ConfigError(
                f"parameterization must be 'ntk' or 'standard', got {parameterization!r}"
            )
        gen = checks.torch_generator(generator, "generator")
        sizes = [in_dim] + [width] * depth + [out_dim]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            if parameterization == "ntk":
                layers.append(_NTKLinear(a, b, gen, dtype))
            else:
                layer = nn.Linear(a, b, dtype=dtype)
                bound = 1.0 / math.sqrt(a)
                with torch.no_grad():
                    layer.weight.uniform_(-bound, bound, generator=gen)
                    layer.bias.uniform_(-bound, bound, generator=gen)
                layers.append(layer)
            if i < depth:
                layers.append(_ACTIVATIONS[activation]())
        self.net = nn.Sequential(*layers)
        self.in_dim, self.out_dim, self.width, self.depth = in_dim, out_dim, width, depth
        self.parameterization = parameterization

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class EnsembleMLP(nn.Module):
    """R independent MLPs evaluated together: ``(R, B, in_dim) -> (R, B, out_dim)``.

    Model r has its own weights (stacked on a leading axis and applied with batched
    matrix products), so R replicates train in one optimizer step instead of R Python
    loops; Adam's per-coordinate updates keep them independent. Standard (PyTorch-style)
    initialization, model r's weights drawn from ``seeds[r]`` on the CPU (move the
    ensemble with ``.to(device)``).

    Parameters
    ----------
    seeds : sequence of int
        One seed per model (R = len(seeds)).
    in_dim, out_dim, width, depth, activation : as :class:`MLP`.
    """

    def __init__(
        self,
        seeds,
        in_dim: int,
        out_dim: int,
        width: int = 128,
        depth: int = 2,
        activation: str = "relu",
        dtype: torch.dtype = torch.float64,
    ):
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ConfigError(
                f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}"
            )
        sizes = [in_dim] + [width] * depth + [out_dim]
        weights, biases = [], []
        for a, b in zip(sizes[:-1], sizes[1:], strict=True):
            bound = 1.0 / math.sqrt(a)
            w, c = [], []
            for seed in seeds:
                gen = checks.torch_generator(int(seed) * 1000 + len(weights), "seeds")
                w.append((torch.rand(a, b, generator=gen, dtype=dtype) * 2 - 1) * bound)
                c.append((torch.rand(1, b, generator=gen, dtype=dtype) * 2 - 1) * bound)
            weights.append(nn.Parameter(torch.stack(w)))
            biases.append(nn.Parameter(torch.stack(c)))
        self.weights, self.biases = nn.ParameterList(weights), nn.ParameterList(biases)
        self.activation = _ACTIVATIONS[activation]()
        self.n_models = len(seeds)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            x = torch.baddbmm(b, x, w)
            if i < len(self.weights) - 1:
                x = self.activation(x)
        return x


class Centered(nn.Module):
    """``module`` minus its own output at initialization: ``f(x; theta) - f(x; theta_0)``.

    The "centering" of lazy-training analyses (Chizat, Oyallon & Bach 2019): the function
    starts at zero for every x while its gradients, and so its tangent kernel, are the
    module's. With a family such as :func:`mean_scale`, q starts at N(0, I) whatever the
    width and seed, so runs of different widths start from the same distribution and
    differ only in how they train. theta_0 is kept in non-persistent buffers, as in
    :class:`Linearized`.

    Parameters
    ----------
    module : nn.Module
        Any module; it is trained in place (its parameters are this module's).
    """

    def __init__(self, module: nn.Module):
        super().__init__()
        self.base = module
        self._names = [name for name, _ in module.named_parameters()]
        for i, (_, p) in enumerate(module.named_parameters()):
            self.register_buffer(f"_theta0_{i}", p.detach().clone(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        theta0 = {name: getattr(self, f"_theta0_{i}") for i, name in enumerate(self._names)}
        # theta_0 are buffers (no gradient): the offset is a constant of training.
        return self.base(x) - functional_call(self.base, theta0, (x,))


class Linearized(nn.Module):
    """First-order Taylor expansion of ``module`` in its parameters around their current values.

    ``forward(x) = f(x; theta_0) + J_theta f(x; theta_0) delta`` where ``theta_0`` is a
    frozen copy of the parameters at construction and ``delta`` (the trainable
    parameters, zero at the start) is ``theta - theta_0``. At construction it equals the
    module exactly; for a module linear in its parameters it equals the module at
    ``theta_0 + delta`` for every delta. theta_0 is kept in non-persistent buffers, so
    ``.to(device)`` moves it with the module and ``state_dict`` holds only the base and
    delta.

    Parameters
    ----------
    module : nn.Module
        Any differentiable module; it is copied (the original is left alone).
    """

    def __init__(self, module: nn.Module):
        super().__init__()
        # A copy, as documented: freezing its parameters must not freeze the original's.
        module = copy.deepcopy(module)
        self.base = module
        names = [name for name, _ in module.named_parameters()]
        self._names = names
        for i, (_, p) in enumerate(module.named_parameters()):
            self.register_buffer(f"_theta0_{i}", p.detach().clone(), persistent=False)
        self.delta = nn.ParameterList(
            [nn.Parameter(torch.zeros_like(p)) for _, p in module.named_parameters()]
        )
        for p in module.parameters():
            p.requires_grad_(False)

    @property
    def _theta0(self) -> dict[str, torch.Tensor]:
        """Base parameter name -> its value at construction (on the module's device)."""
        return {name: getattr(self, f"_theta0_{i}") for i, name in enumerate(self._names)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tangent = dict(zip(self._names, self.delta, strict=True))

        def f(params):
            return functional_call(self.base, params, (x,))

        value, change = jvp(f, (self._theta0,), (tangent,))
        return value + change

    def displacement(self) -> float:
        """Euclidean norm of theta - theta_0."""
        return float(torch.sqrt(sum((d.detach() ** 2).sum() for d in self.delta)))


# --------------------------------------------------------------------------- families


def _split(out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if out.shape[-1] % 2:
        raise ConfigError(f"this family needs an even number of outputs, got {out.shape[-1]}")
    d = out.shape[-1] // 2
    return out[..., :d], out[..., d:]


def mean_scale(out: torch.Tensor) -> DiagonalNormal:
    """Outputs ``(mu, log sigma)`` (2d) -> N(mu, diag sigma^2)."""
    loc, log_scale = _split(out)
    return DiagonalNormal(loc, log_scale.clamp(*_LOG_SCALE_RANGE).exp())


def natural(out: torch.Tensor) -> DiagonalNormal:
    """Outputs ``(eta_1, log precision)`` (2d) -> N(eta_1 / precision, 1 / precision).

    eta_1 = mu / sigma^2 is the first natural parameter of the Gaussian; the second,
    -1 / (2 sigma^2), is kept negative through its logarithm.
    """
    eta1, log_prec = _split(out)
    low, high = _LOG_SCALE_RANGE
    prec = log_prec.clamp(-2 * high, -2 * low).exp()  # the same scale range as mean_scale
    return DiagonalNormal(eta1 / prec, prec.rsqrt())


def natural_about(out: torch.Tensor, reference: torch.Tensor, precision: float) -> DiagonalNormal:
    """Outputs ``(a, b)`` (2d) -> the Gaussian with natural parameters
    ``eta_1 = precision * a + lambda * reference`` and ``eta_2 = -lambda / 2``, where
    ``lambda = precision * exp(b)``.

    The natural parameters measured from a reference point: at zero outputs q is
    N(reference, 1 / precision), and the network learns the (precision-weighted) offset
    from it. At fixed x, eta is linear in (a, lambda), so the expected forward KL stays
    convex in those outputs as in :func:`natural`. Plain natural parameters fail when the
    posterior is much narrower than the distance of its mean from zero: eta_1 = mu *
    lambda must then be huge and exact to a tiny relative error, and training settles for
    a wide q. ``reference`` (a data summary near the posterior mean, broadcasting to
    (..., d)) and ``precision`` (a typical posterior precision) keep the outputs of
    order one.
    """
    if not precision > 0:
        raise ConfigError(f"precision must be > 0, got {precision}")
    a, b = _split(out)
    low, high = _LOG_SCALE_RANGE
    lam = precision * b.clamp(-2 * high, -2 * low).exp()
    eta1 = precision * a + lam * reference
    return DiagonalNormal(eta1 / lam, lam.rsqrt())


def mean_only(scale: float) -> Callable[[torch.Tensor], DiagonalNormal]:
    """Outputs ``mu`` (d) -> N(mu, scale^2 I) with a fixed scale."""
    if not scale > 0:
        raise ConfigError(f"scale must be > 0, got {scale}")

    def family(out: torch.Tensor) -> DiagonalNormal:
        return DiagonalNormal(out, torch.full_like(out, float(scale)))

    return family


FAMILIES = {"mean_scale": mean_scale, "natural": natural}


class Amortized(nn.Module):
    """``x -> q(z; family(net(x)))``, a ``torch.distributions`` object per observation.

    Parameters
    ----------
    net : nn.Module
        ``(..., in_dim) -> (..., out_dim)``; an :class:`MLP` or its :class:`Linearized`.
    family : callable or str
        Outputs -> distribution: a name in :data:`FAMILIES` or a callable such as
        :func:`mean_only`.
    """

    def __init__(self, net: nn.Module, family: Callable | str = "mean_scale"):
        super().__init__()
        if isinstance(family, str):
            if family not in FAMILIES:
                raise ConfigError(f"family must be one of {sorted(FAMILIES)}, got {family!r}")
            family = FAMILIES[family]
        self.net = net
        self.family = family

    def forward(self, x: torch.Tensor):
        return self.family(self.net(x))


# --------------------------------------------------------------------------- kernel


def empirical_ntk(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The empirical neural tangent kernel of ``net`` on probe points x.

    Parameters
    ----------
    net : nn.Module
        ``(n, in_dim) -> (n, out_dim)``. For a :class:`Linearized` net the kernel is that
        of its base at theta_0 (constant by construction).
    x : (n, in_dim) tensor

    Returns
    -------
    (n * out_dim, n * out_dim) tensor
        ``Theta[(i, a), (j, b)] = sum_p d f_a(x_i) / d theta_p  d f_b(x_j) / d theta_p``
        over the trainable parameters theta (rows ordered point-major).
    """
    if isinstance(net, Linearized):
        net = net.base  # its parameters stay at theta_0
    params = {name: p.detach() for name, p in net.named_parameters()}

    def single(p, xi):
        return functional_call(net, p, (xi[None],))[0]

    jac = vmap(jacrev(single), in_dims=(None, 0))(params, x)  # name -> (n, out, *shape)
    rows = torch.cat([j.reshape(x.shape[0] * j.shape[1], -1) for j in jac.values()], dim=1)
    return rows @ rows.T


def ntk_drift(k0: torch.Tensor, k1: torch.Tensor) -> float:
    """Relative change ``||K1 - K0||_F / ||K0||_F`` of a kernel matrix."""
    return float(torch.linalg.norm(k1 - k0) / torch.linalg.norm(k0))
