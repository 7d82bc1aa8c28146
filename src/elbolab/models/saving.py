"""Saving a trained model and loading it again, on any machine (a GPU is not needed).

A saved model is one ``torch.save`` file holding only plain values and tensors::

    {
        "format": "elbolab-model",
        "version": 1,
        "class": "VAE",                      # which class rebuilds it
        "spec": {"data_dim": 784, ...},      # the keyword arguments that rebuild it
        "state": {"encoder.0.weight": tensor, ...},   # state_dict, every tensor on the CPU
    }

:func:`load` rebuilds the model from ``spec`` (with a fixed seed: the weights are
overwritten at once), loads ``state`` into it with ``strict=True`` and moves it to the
requested device. Nothing in the file is a pickled Python object, so it is read with
``torch.load(..., weights_only=True)``: opening a model file cannot run code (an
ordinary pickle can), and a file stays readable when elbolab's classes are renamed or
moved, as long as their constructor arguments keep their meaning. The tensors are
stored on the CPU, so a model trained on a GPU loads on a machine without one.

Supported classes (exactly these types; a subclass may add behaviour that the spec does
not describe, so it is refused):

* :class:`~elbolab.models.vae.VAE`: ``data_dim``, ``latent_dim``, ``hidden``,
  ``decoder_hidden``, ``likelihood``, ``learn_sigma2``, ``prior``, ``n_pseudo``,
  ``activation``, ``logvar_min``, ``logvar_max``, ``dtype``;
* :class:`~elbolab.models.linear_vae.LinearVAE`: ``data_dim``, ``latent_dim``,
  ``learn_sigma2``, ``dtype``;
* :class:`~elbolab.models.amortized.MLP`: ``in_dim``, ``out_dim``, ``width``, ``depth``,
  ``activation``, ``parameterization``, ``dtype``;
* :class:`~elbolab.models.amortized.EnsembleMLP`: ``n_models``, ``in_dim``, ``out_dim``,
  ``width``, ``depth``, ``activation``, ``dtype`` (read from the weights' shapes; the
  seeds only set the initial weights and are not kept);
* :class:`~elbolab.models.amortized.Amortized` whose net is an MLP or the
  :class:`~elbolab.models.amortized.Linearized` expansion of one, and whose family is a
  name in :data:`~elbolab.models.amortized.FAMILIES`: ``net`` (the MLP's spec),
  ``linearized``, ``family``.

Values that the state holds (sigma^2, the VampPrior's pseudo-inputs) are not part of the
spec; ``dtype`` is stored as a string such as ``"float32"``.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from .. import checks
from ..errors import ConfigError, DataError
from ..files import atomic_write
from .amortized import _ACTIVATIONS as _MLP_ACTIVATIONS
from .amortized import FAMILIES, MLP, Amortized, EnsembleMLP, Linearized
from .linear_vae import LinearVAE
from .vae import VAE

if TYPE_CHECKING:
    from .._types import Device

__all__ = ["save", "load", "FORMAT", "VERSION"]

FORMAT = "elbolab-model"
VERSION = 1

_DTYPES = {
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float32": torch.float32,
    "float64": torch.float64,
}


# ----------------------------------------------------------------------------- specs


def _dtype_name(model: nn.Module) -> str:
    dtypes = {p.dtype for p in model.parameters()}
    names = [name for name, dtype in _DTYPES.items() if dtypes == {dtype}]
    if not names:
        raise ConfigError(
            f"a {type(model).__name__} can be saved when all its parameters share one "
            f"floating dtype ({', '.join(_DTYPES)}); it has {sorted(map(str, dtypes))}"
        )
    return names[0]


def _learns_sigma2(model: nn.Module) -> bool:
    return isinstance(model.log_sigma2, nn.Parameter)


def _activation_name(modules, table: dict[str, type]) -> str:
    """The name in ``table`` of the first of ``modules`` that is one of its activations."""
    for module in modules:
        for name, cls in table.items():
            if type(module) is cls:
                return name
    raise ConfigError(f"found no activation of {sorted(table)} to save")


def _vae_spec(model: VAE) -> dict:
    return {
        "data_dim": model.data_dim,
        "latent_dim": model.latent_dim,
        "hidden": list(model.hidden),
        "decoder_hidden": list(model.decoder_hidden),
        "likelihood": model.likelihood,
        "learn_sigma2": _learns_sigma2(model),
        "prior": model.prior_kind,
        "n_pseudo": model.n_pseudo,
        "activation": model.activation,
        "logvar_min": model.logvar_min,
        "logvar_max": model.logvar_max,
        "dtype": _dtype_name(model),
    }


def _kwargs(spec: dict, *leave_out: str) -> dict:
    """Constructor keywords from a spec: ``dtype`` as a torch.dtype, ``leave_out`` dropped."""
    kwargs = {k: v for k, v in spec.items() if k not in leave_out}
    kwargs["dtype"] = _DTYPES[spec["dtype"]]
    return kwargs


def _vae_build(spec: dict) -> VAE:
    # n_pseudo is 0 for the normal prior, where it means nothing.
    kwargs = _kwargs(spec) if spec["prior"] == "vamp" else _kwargs(spec, "n_pseudo")
    return VAE(**kwargs, generator=0)


def _linear_vae_spec(model: LinearVAE) -> dict:
    return {
        "data_dim": model.data_dim,
        "latent_dim": model.latent_dim,
        "learn_sigma2": _learns_sigma2(model),
        "dtype": _dtype_name(model),
    }


def _linear_vae_build(spec: dict) -> LinearVAE:
    return LinearVAE(**_kwargs(spec), generator=0)


def _mlp_spec(model: MLP) -> dict:
    return {
        "in_dim": model.in_dim,
        "out_dim": model.out_dim,
        "width": model.width,
        "depth": model.depth,
        "activation": _activation_name(model.net, _MLP_ACTIVATIONS),
        "parameterization": model.parameterization,
        "dtype": _dtype_name(model),
    }


def _mlp_build(spec: dict) -> MLP:
    return MLP(**_kwargs(spec), generator=0)


def _ensemble_spec(model: EnsembleMLP) -> dict:
    first, last = model.weights[0], model.weights[-1]  # (R, fan_in, fan_out)
    return {
        "n_models": model.n_models,
        "in_dim": first.shape[1],
        "out_dim": last.shape[2],
        "width": first.shape[2],  # unused when depth is 0
        "depth": len(model.weights) - 1,
        "activation": _activation_name([model.activation], _MLP_ACTIVATIONS),
        "dtype": _dtype_name(model),
    }


def _ensemble_build(spec: dict) -> EnsembleMLP:
    return EnsembleMLP(range(spec["n_models"]), **_kwargs(spec, "n_models"))


def _amortized_spec(model: Amortized) -> dict:
    family = next((name for name, fn in FAMILIES.items() if model.family is fn), None)
    if family is None:
        raise ConfigError(
            f"an Amortized model can be saved when its family is one of {sorted(FAMILIES)} "
            f"(given by name); this one has {getattr(model.family, '__qualname__', model.family)}"
        )
    net, linearized = model.net, isinstance(model.net, Linearized)
    if linearized:
        net = net.base
        theta0 = getattr(model.net, "_theta0", {})
        for name, p in net.named_parameters():
            if name in theta0 and not torch.equal(p.detach(), theta0[name].to(p.device)):
                raise ConfigError(
                    f"the linearized net's base parameter {name} has changed since the "
                    "linearization; such a model cannot be rebuilt from its state"
                )
    if type(net) is not MLP:
        raise ConfigError(
            "an Amortized model can be saved when its net is an MLP or Linearized(MLP); "
            f"this one has {type(net).__name__}"
        )
    return {"net": _mlp_spec(net), "linearized": linearized, "family": family}


def _amortized_build(spec: dict) -> Amortized:
    net = _mlp_build(spec["net"])
    return Amortized(Linearized(net) if spec["linearized"] else net, spec["family"])


def _amortized_after_load(model: Amortized, device: torch.device) -> None:
    # Linearized keeps a copy of its base parameters (theta_0) taken at construction,
    # outside the state_dict, so after loading it still holds the rebuilt net's initial
    # weights: linearize again around the loaded base parameters, on the target device,
    # and keep the loaded displacement.
    if isinstance(model.net, Linearized):
        old = model.net
        new = Linearized(old.base.to(device))
        with torch.no_grad():
            for d_new, d_old in zip(new.delta, old.delta, strict=True):
                d_new.copy_(d_old)
        model.net = new


# Spec fields: name -> type check. The constructors check the ranges.
def _is_int(v) -> bool:
    return type(v) is int


def _is_number(v) -> bool:
    return type(v) in (int, float)


def _is_str(v) -> bool:
    return type(v) is str


def _is_bool(v) -> bool:
    return type(v) is bool


def _is_widths(v) -> bool:
    return isinstance(v, (list, tuple)) and all(_is_int(h) for h in v)


def _is_dtype(v) -> bool:
    return type(v) is str and v in _DTYPES


@dataclass(frozen=True)
class _Kind:
    cls: type
    fields: dict[str, Callable]
    spec: Callable[[nn.Module], dict]
    build: Callable[[dict], nn.Module]
    after_load: Callable[[nn.Module, torch.device], None] | None = None


_MLP_FIELDS = {
    "in_dim": _is_int,
    "out_dim": _is_int,
    "width": _is_int,
    "depth": _is_int,
    "activation": _is_str,
    "parameterization": _is_str,
    "dtype": _is_dtype,
}

_KINDS = {
    "VAE": _Kind(
        VAE,
        {
            "data_dim": _is_int,
            "latent_dim": _is_int,
            "hidden": _is_widths,
            "decoder_hidden": _is_widths,
            "likelihood": _is_str,
            "learn_sigma2": _is_bool,
            "prior": _is_str,
            "n_pseudo": _is_int,
            "activation": _is_str,
            "logvar_min": _is_number,
            "logvar_max": _is_number,
            "dtype": _is_dtype,
        },
        _vae_spec,
        _vae_build,
    ),
    "LinearVAE": _Kind(
        LinearVAE,
        {"data_dim": _is_int, "latent_dim": _is_int, "learn_sigma2": _is_bool, "dtype": _is_dtype},
        _linear_vae_spec,
        _linear_vae_build,
    ),
    "MLP": _Kind(MLP, _MLP_FIELDS, _mlp_spec, _mlp_build),
    "EnsembleMLP": _Kind(
        EnsembleMLP,
        {
            "n_models": _is_int,
            "in_dim": _is_int,
            "out_dim": _is_int,
            "width": _is_int,
            "depth": _is_int,
            "activation": _is_str,
            "dtype": _is_dtype,
        },
        _ensemble_spec,
        _ensemble_build,
    ),
    "Amortized": _Kind(
        Amortized,
        {"net": dict, "linearized": _is_bool, "family": _is_str},
        _amortized_spec,
        _amortized_build,
        _amortized_after_load,
    ),
}


def _check_spec(spec, fields: dict, where: str) -> str | None:
    """What is wrong with ``spec`` (a message), or None."""
    if not isinstance(spec, dict):
        return f"{where} is a {type(spec).__name__}, not a dict"
    missing = [k for k in fields if k not in spec]
    extra = [k for k in spec if k not in fields]
    if missing or extra:
        return "; ".join(
            ([f"{where} lacks {missing}"] if missing else [])
            + ([f"{where} has unknown {extra}"] if extra else [])
        )
    for key, check in fields.items():
        if check is dict:
            problem = _check_spec(spec[key], _MLP_FIELDS, f"{where}.{key}")
            if problem:
                return problem
        elif not check(spec[key]):
            return f"{where}.{key} = {spec[key]!r} is not a valid value"
    return None


# ----------------------------------------------------------------------------- save


def save(model: nn.Module, path: str | os.PathLike) -> Path:
    """Save a model's weights and the spec that rebuilds it, atomically.

    Parameters
    ----------
    model : VAE, LinearVAE, MLP, EnsembleMLP or Amortized
        See the module docstring for what each class stores. It may live on any device
        and be in train or eval mode; it is not changed.
    path : str or path-like
        The file to write (``.pt`` by convention); its folder is created if missing,
        an existing file is replaced.

    Returns
    -------
    Path
        The path written.

    Raises
    ------
    ConfigError
        If the model's type is not supported (the message names it and the supported
        ones) or it cannot be described by a spec, or ``path`` is not a file path. The
        check comes before anything is written.

    Notes
    -----
    The file holds only strings, numbers, lists, dicts and CPU tensors (format in the
    module docstring), so :func:`load` and ``torch.load(path, weights_only=True)`` read
    it without unpickling any Python object. The write is atomic
    (:func:`elbolab.files.atomic_write`): a failure leaves the previous file or none.
    """
    target = checks.output_file(path, "path", "model.pt")
    kind_name = next((n for n, k in _KINDS.items() if type(model) is k.cls), None)
    if kind_name is None:
        raise ConfigError(
            f"cannot save a {type(model).__module__}.{type(model).__qualname__}: "
            f"elbolab.models.save supports {', '.join(_KINDS)}"
        )
    kind = _KINDS[kind_name]
    spec = kind.spec(model)
    problem = _check_spec(spec, kind.fields, "spec")
    if problem:  # e.g. attributes changed by hand after construction
        raise ConfigError(f"cannot describe this {kind_name} by a spec: {problem}")
    state = {name: t.detach().cpu().clone() for name, t in model.state_dict().items()}
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "class": kind_name,
        "spec": spec,
        "state": state,
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(target, lambda fh: torch.save(payload, fh))


# ----------------------------------------------------------------------------- load


def load(path: str | os.PathLike, device: Device = "cpu") -> nn.Module:
    """Load a model written by :func:`save`, in eval mode, on ``device``.

    Parameters
    ----------
    path : str or path-like
        The model file.
    device : str or torch.device
        ``"cpu"`` (default), ``"cuda"``, ``"cuda:N"`` or ``"auto"`` (CUDA when present).

    Returns
    -------
    nn.Module
        A new model of the saved class, its weights equal to the saved ones, in eval
        mode (call ``.train()`` to train it further).

    Raises
    ------
    DataError
        If the file is missing or unreadable, is not an elbolab model file (another
        torch file, a pickle, a truncated or corrupt file), was written by a newer
        format version, names an unknown class, has a spec that does not rebuild a
        model, or has a state that does not fit it (missing or unknown entries, wrong
        shapes or dtypes). The message begins with the path.
    ConfigError
        If ``device`` is not a device or asks for CUDA where there is none.

    Notes
    -----
    The file is read with ``torch.load(path, map_location="cpu", weights_only=True)``,
    which unpickles no Python object, so loading a file from elsewhere cannot run code.
    The model is rebuilt from the spec with a fixed seed (its initial weights are then
    replaced by the saved ones, ``load_state_dict(strict=True)``) inside
    ``torch.random.fork_rng``, so loading leaves torch's global generator untouched.
    """
    src = checks.path(path, "path")
    dev = checks.device(device, "device")

    def bad(message: str) -> DataError:
        return DataError(message, src)

    if not src.exists():
        raise bad("no such model file")
    if not src.is_file():
        raise bad("is not a file")
    try:
        obj = torch.load(src, map_location="cpu", weights_only=True)
    except Exception as exc:  # any failure to read means: not a model file we can use
        if isinstance(exc, pickle.UnpicklingError):
            # torch's own message suggests weights_only=False, which we never do.
            detail = "corrupt, or it holds pickled Python objects, which are never loaded"
        else:
            first = (str(exc).strip().splitlines() or [""])[0].split(". ")[0]
            detail = f"{type(exc).__name__}: {first[:160]}"
        raise bad(f"cannot read as an elbolab model file ({detail})") from exc

    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise bad(f"not an elbolab model file (no format {FORMAT!r}; write one with save())")
    version = obj.get("version")
    if type(version) is not int or version < 1:
        raise bad(f"invalid format version {version!r}")
    if version > VERSION:
        raise bad(
            f"written in model-file format version {version}, newer than this elbolab "
            f"reads ({VERSION}); upgrade elbolab"
        )
    kind_name = obj.get("class")
    if kind_name not in _KINDS:
        raise bad(f"unknown model class {kind_name!r}; this elbolab knows {', '.join(_KINDS)}")
    kind = _KINDS[kind_name]
    spec = obj.get("spec")
    problem = _check_spec(spec, kind.fields, "spec")
    if problem:
        raise bad(f"bad {kind_name} spec: {problem}")
    state = obj.get("state")
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise bad("the state is not a dict of named tensors")

    try:
        with torch.random.fork_rng(devices=[]):
            model = kind.build(spec)
    except (ConfigError, TypeError, ValueError) as exc:
        raise bad(f"the {kind_name} spec does not rebuild a model: {exc}") from exc

    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    extra = [k for k in state if k not in expected]
    if missing or extra:
        raise bad(
            f"the state does not fit the {kind_name}: missing {missing[:5]}, unknown "
            f"{extra[:5]}" + (" (and more)" if len(missing) > 5 or len(extra) > 5 else "")
        )
    for key, want in expected.items():
        got = state[key]
        if got.shape != want.shape or got.dtype != want.dtype:
            raise bad(
                f"the state's {key} is {got.dtype} {tuple(got.shape)}; the {kind_name} "
                f"needs {want.dtype} {tuple(want.shape)}"
            )
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:  # not expected after the checks above
        raise bad(f"the state does not fit the {kind_name}: {exc}") from exc

    model.to(dev)
    if kind.after_load is not None:
        kind.after_load(model, dev)
    model.eval()
    return model
