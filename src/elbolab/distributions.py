"""Distributions every layer uses: diagonal Gaussians whose samples come from a given
``torch.Generator``, the standard-normal prior with its short closed-form KL, the
VampPrior mixture, and reparameterized sampling (:func:`rsample`) and stopped-gradient
copies (:func:`detached`) of an encoder's q(z | x), and the posteriors of some data points
(:func:`select_rows`) or of consecutive batches as one (:func:`concatenate`), so that
data encoded once need not be encoded again.

They sit below models, objectives and diagnostics (which all take q(z | x) and p(z) as
``torch.distributions`` objects), so that an objective does not import a model module
to draw a sample.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.distributions import (
    Categorical,
    Distribution,
    Independent,
    MixtureSameFamily,
    Normal,
    register_kl,
)

from . import checks
from .errors import ConfigError

# torch's sample shapes and batch shapes: a torch.Size or any sequence of ints.
_Shape = Sequence[int]

__all__ = [
    "DiagonalNormal",
    "StandardNormal",
    "VampPriorDistribution",
    "rsample",
    "detached",
    "select_rows",
    "concatenate",
]


class DiagonalNormal(Independent):
    """``Independent(Normal(loc, scale), 1)`` whose samples can come from a given generator.

    It *is* an ``Independent(Normal)`` (``isinstance`` holds and torch's analytic KL
    registry applies); only ``sample`` and ``rsample`` gain a ``generator`` argument.

    Parameters
    ----------
    loc : (..., d) tensor
        Means (mu).
    scale : (..., d) tensor
        Standard deviations (sigma), positive.
    """

    def __init__(self, loc: torch.Tensor, scale: torch.Tensor, validate_args: bool = False):
        super().__init__(Normal(loc, scale, validate_args=validate_args), 1, validate_args=False)

    @property
    def loc(self) -> torch.Tensor:
        return self.base_dist.loc

    @property
    def scale(self) -> torch.Tensor:
        return self.base_dist.scale

    def expand(self, batch_shape: _Shape, _instance: object = None) -> DiagonalNormal:
        shape = torch.Size(batch_shape) + self.event_shape
        return DiagonalNormal(self.loc.expand(shape), self.scale.expand(shape))

    def rsample(
        self, sample_shape: _Shape = (), generator: torch.Generator | None = None
    ) -> torch.Tensor:
        shape = self._extended_shape(torch.Size(sample_shape))
        eps = torch.randn(shape, generator=generator, dtype=self.loc.dtype, device=self.loc.device)
        return self.loc + self.scale * eps

    def sample(
        self, sample_shape: _Shape = (), generator: torch.Generator | None = None
    ) -> torch.Tensor:
        with torch.no_grad():
            return self.rsample(sample_shape, generator=generator)


class StandardNormal(DiagonalNormal):
    """N(0, I) over R^d: the standard-normal prior, a :class:`DiagonalNormal` whose KL
    from a diagonal Gaussian has its own short closed form (registered below)."""

    def __init__(self, d: int, like: torch.Tensor):
        zeros = like.new_zeros(d)
        super().__init__(zeros, torch.ones_like(zeros))

    def expand(self, batch_shape: _Shape, _instance: object = None) -> DiagonalNormal:
        shape = torch.Size(batch_shape) + self.event_shape
        return DiagonalNormal(self.loc.expand(shape), self.scale.expand(shape))


@register_kl(DiagonalNormal, StandardNormal)
def _kl_diagonal_standard(q: DiagonalNormal, p: StandardNormal) -> torch.Tensor:
    # KL(N(mu, diag s^2) || N(0, I)) = sum_j (mu_j^2 + s_j^2 - 1) / 2 - log s_j: the same
    # value as torch's general Normal-Normal formula in fewer operations (it runs at
    # every training step).
    mu, s = q.loc, q.scale
    return 0.5 * (mu.square() + s.square() - 1.0).sum(-1) - s.log().sum(-1)


def rsample(dist: Distribution, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` reparameterized samples of a diagonal Gaussian, drawn from ``generator``.

    Parameters
    ----------
    dist : Independent(Normal(mu, std), 1) with batch shape (B,) and event shape (d,)
        q(z | x); any distribution with ``rsample`` is accepted when ``generator`` is None.
    n : int
        Number of samples S.
    generator : torch.Generator, optional

    Returns
    -------
    z : (S, B, d) tensor, ``mu + std * eps`` with eps ~ N(0, I) (differentiable in mu, std).
    """
    if isinstance(dist, Independent) and isinstance(dist.base_dist, Normal):
        base = dist.base_dist
        if generator is not None:
            checks.same_device(generator.device, "the generator", base.loc.device, "q(z | x)")
        shape = (n,) + tuple(dist.batch_shape) + tuple(dist.event_shape)
        eps = torch.randn(shape, generator=generator, dtype=base.loc.dtype, device=base.loc.device)
        return base.loc + base.scale * eps
    if generator is not None:
        raise ConfigError(
            f"cannot draw samples of {type(dist).__name__} from an explicit generator; "
            "the encoder must return Independent(Normal(mu, std), 1)"
        )
    return dist.rsample((n,))


def detached(dist: Distribution) -> Distribution:
    """The same diagonal Gaussian with its parameters cut from the autograd graph.

    Used by DReG (Tucker et al. 2019): log q(z | x) evaluated with stopped parameters
    removes the score-function term from the encoder's gradient.
    """
    if isinstance(dist, Independent) and isinstance(dist.base_dist, Normal):
        return DiagonalNormal(dist.base_dist.loc.detach(), dist.base_dist.scale.detach())
    raise ConfigError(
        f"DReG needs a diagonal Gaussian encoder (Independent(Normal)), got {type(dist).__name__}"
    )


def _loc_scale(dist: Distribution, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(dist, Independent) and isinstance(dist.base_dist, Normal):
        return dist.base_dist.loc, dist.base_dist.scale
    raise ConfigError(
        f"{what} needs a diagonal Gaussian (Independent(Normal)), got {type(dist).__name__}"
    )


def select_rows(dist: Distribution, rows: torch.Tensor | slice) -> DiagonalNormal:
    """Rows of a diagonal Gaussian with batch shape (B,): q(z | x_n) for the data points
    ``rows`` (an index tensor or a slice) of an encoding of all B.

    Parameters
    ----------
    dist : Independent(Normal(mu, std), 1) with batch shape (B,) and event shape (d,)
    rows : index tensor or slice into the B rows

    Returns
    -------
    DiagonalNormal with the selected rows of mu and std (differentiable).
    """
    loc, scale = _loc_scale(dist, "select_rows")
    return DiagonalNormal(loc[rows], scale[rows])


def concatenate(parts: Sequence[Distribution]) -> DiagonalNormal:
    """Diagonal Gaussians with batch shapes (B_1,), (B_2,), ... as one of batch shape
    (B_1 + B_2 + ...,): the posteriors of consecutive data batches as one encoding."""
    if not parts:
        raise ConfigError("concatenate needs at least one distribution")
    pairs = [_loc_scale(q, "concatenate") for q in parts]
    return DiagonalNormal(torch.cat([p[0] for p in pairs]), torch.cat([p[1] for p in pairs]))


class VampPriorDistribution(MixtureSameFamily):
    """Equal-weight mixture of diagonal Gaussians (the VampPrior evaluated at u_1..u_K).

    ``log_prob(z) = logsumexp_k log N(z; mu_k, diag(std_k^2)) - log K``; ``sample`` takes
    a ``generator``.

    Parameters
    ----------
    loc, scale : (K, d) tensors
        Means and standard deviations of q(z | u_k).
    """

    def __init__(self, loc: torch.Tensor, scale: torch.Tensor):
        k = loc.shape[0]
        mix = Categorical(
            logits=torch.zeros(k, dtype=loc.dtype, device=loc.device), validate_args=False
        )
        super().__init__(mix, DiagonalNormal(loc, scale), validate_args=False)

    def sample(
        self, sample_shape: _Shape = (), generator: torch.Generator | None = None
    ) -> torch.Tensor:
        comp = self.component_distribution
        loc, scale = comp.loc, comp.scale
        shape = torch.Size(sample_shape)
        with torch.no_grad():
            idx = torch.randint(loc.shape[0], shape, generator=generator, device=loc.device)
            eps = torch.randn(
                shape + loc.shape[1:], generator=generator, dtype=loc.dtype, device=loc.device
            )
            return loc[idx] + scale[idx] * eps
