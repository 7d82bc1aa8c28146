"""What the objectives and the diagnostics ask of a model and its data: the VAE protocol.

A model speaks it when ``encode(x)`` returns q(z | x) with event shape (d,), ``decode(z)``
returns p(x | z) and ``prior()`` returns p(z) over R^d (:class:`elbolab.models.vae.VAE`).
These helpers check a data batch against the model (its width ``data_dim``, its device),
cast it to the model's floating dtype, read the model's prior and its device, and check
the per-datum terms an objective computed, each with one clear error naming what is
wrong. They are shared by :mod:`~elbolab.objectives.elbo`,
:mod:`~elbolab.objectives.iwae` and the diagnostics (:func:`elbolab.diagnostics.log_likelihood`,
:func:`elbolab.diagnostics.surgery_model`), so that all of them refuse the same inputs
the same way.
"""

from __future__ import annotations

import torch

from .. import checks
from ..errors import ConfigError, DataError, NumericalError

__all__ = [
    "as_data",
    "check_data",
    "check_terms",
    "given_posterior",
    "model_device",
    "model_prior",
    "to_model",
]


def _model_dtype(model: torch.nn.Module) -> torch.dtype:
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.get_default_dtype()


def check_data(model: torch.nn.Module, x: object, name: str = "x") -> torch.Tensor:
    """x validated but not moved: a finite real (B, D) tensor in its own dtype and on its
    own device, D the model's ``data_dim`` when it has one (checks.data_matrix). Loops
    over batches of a large data set cast each batch with :func:`to_model`."""
    width = getattr(model, "data_dim", None)
    return checks.data_matrix(
        x, name, width=width if checks.is_integer(width) else None, shape_error=ConfigError
    )


def to_model(model: torch.nn.Module, x: torch.Tensor, name: str = "x") -> torch.Tensor:
    """A validated x (or a batch of it) in the model's floating dtype (uint8 MNIST
    included); ConfigError naming both devices if x is not on the model's device,
    DataError if the cast overflows (float64 data beyond the float32 range)."""
    p = next(model.parameters(), None)
    if p is not None:
        checks.same_device(x.device, name, p.device, "the model")
    out = x.to(dtype=p.dtype if p is not None and p.is_floating_point() else _model_dtype(model))
    if out is not x and x.is_floating_point() and not bool(torch.isfinite(out).all()):
        raise DataError(f"{name} has values beyond the range of the model's dtype {out.dtype}")
    return out


def as_data(model: torch.nn.Module, x: object, name: str = "x") -> torch.Tensor:
    """x as a finite floating tensor in the model's dtype (uint8 MNIST included), shape
    (B, D) with D the model's ``data_dim`` when it has one: :func:`check_data`, then
    :func:`to_model`."""
    return to_model(model, check_data(model, x, name), name)


def model_prior(model: torch.nn.Module, q: torch.distributions.Distribution):
    """model.prior() as a prior over the encoder's R^d (checks.diagonal_prior), d read
    from q = model.encode(x): a batch of d independent Normals becomes
    Independent(..., 1), other shapes are refused."""
    event = tuple(getattr(q, "event_shape", ()))
    if len(event) != 1:
        raise ConfigError(
            f"model.encode(x) must return a distribution with event shape (d,), got {event}"
        )
    return checks.diagonal_prior(model.prior(), event[0], "model.prior()")


def model_device(model: torch.nn.Module, fallback: torch.device) -> torch.device:
    """The device of the model's first parameter (or buffer), else ``fallback``."""
    for attr in ("parameters", "buffers"):
        fn = getattr(model, attr, None)
        if callable(fn):
            for t in fn():
                return t.device
    return fallback


def check_terms(where: str, batch: int, **terms: torch.Tensor) -> None:
    """Each per-datum term has shape (B,) and is finite, else a clear error naming it
    (ConfigError for a shape that breaks the protocol, NumericalError for NaN or
    infinity)."""
    for name, value in terms.items():
        if tuple(value.shape) != (batch,):
            raise ConfigError(
                f"{where}: the {name} term has shape {tuple(value.shape)}, expected ({batch},); "
                "the model's encode/decode/prior must follow the VAE protocol"
            )
    # One host read for all terms: any NaN or infinity makes the total non-finite.
    if not checks.value_checks_enabled() or bool(
        torch.isfinite(sum(v.detach().sum() for v in terms.values()))
    ):
        return
    for name, value in terms.items():
        if not bool(torch.isfinite(value.detach()).all()):
            raise NumericalError(
                f"{where}: the {name} term is NaN or infinite for x (the model's encoder or "
                "decoder returned non-finite values; check the parameters and the data)"
            )


def given_posterior(
    posterior: torch.distributions.Distribution, batch: int
) -> torch.distributions.Distribution:
    """A posterior passed in for x: a distribution with batch shape (B,), else ConfigError."""
    shape = getattr(posterior, "batch_shape", None)
    if shape is None or tuple(shape) != (batch,):
        got = f"batch shape {tuple(shape)}" if shape is not None else type(posterior).__name__
        raise ConfigError(
            f"posterior must be q(z | x) with batch shape ({batch},), one per row of x; got {got}"
        )
    return posterior
