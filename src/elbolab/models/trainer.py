"""Minibatch training of VAE-like models: Adam, early stopping, exact resume.

One loop for every objective: the caller passes ``loss_fn(model, x, generator)``
returning the loss SUMMED over the minibatch (the ``*_loss`` convention of
:mod:`elbolab.objectives`, e.g. ``elbo_loss``, ``functools.partial(iwae_loss, k=50,
dreg=True)``). The optimizer steps on the per-datum mean (so ``lr`` does not depend on
the batch size) and the history reports nats per data point.

Reproducibility. Every random number comes from the one ``generator``: the shuffling
of the training set each epoch (``randperm``; binarized MNIST files are sorted by
class, so unshuffled minibatches would be single-digit), and the Monte Carlo noise of
the loss. Validation uses its own generator, re-seeded identically every epoch (the
seed is drawn once from ``generator`` at the start), so that validation losses of
different epochs are compared on the same noise (common random numbers) and early
stopping does not react to Monte Carlo noise.

Checkpoints. With ``checkpoint=DIR`` the state after every epoch (model, optimizer,
generator state, history, best state so far) is written atomically to
``DIR/trainer.pt``; a later call with the same DIR continues from it, and the resumed
run produces bit-identical losses and parameters to an uninterrupted run (same
machine, same thread count). With a callable, it is called with that state dict.
"""

from __future__ import annotations

import copy
import functools
import inspect
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .. import checks
from ..errors import ConfigError, DataError, NumericalError
from ..files import atomic_write
from ..progress import progress as progress_bar

if TYPE_CHECKING:
    from .._types import ArrayOrTensor

__all__ = ["train", "CHECKPOINT_NAME"]

CHECKPOINT_NAME = "trainer.pt"
_FORMAT = 1
# Minibatches between host reads of the losses on a GPU (see train's notes on the
# device); on the CPU a read costs nothing and happens after every minibatch.
_GPU_SYNC_EVERY = 50


def _sync_every(device: torch.device) -> int:
    """Minibatches between host reads of the losses: each one on the CPU, where a read
    costs nothing, ``_GPU_SYNC_EVERY`` elsewhere."""
    return 1 if device.type == "cpu" else _GPU_SYNC_EVERY


def _nan_loss(value: float, epoch: int, batch: int, lr: float) -> NumericalError:
    return NumericalError(
        f"train: loss is {value} at epoch {epoch}, minibatch {batch}; lower lr (now {lr}) or "
        "check the data"
    )


def _check_losses(losses: torch.Tensor, first: int, epoch: int, lr: float) -> None:
    """NumericalError naming the first minibatch whose loss is not finite; ``losses`` are
    those of minibatches ``first``, ``first + 1``, ... of this epoch."""
    bad = (~torch.isfinite(losses)).nonzero()
    if len(bad):
        i = int(bad[0])
        raise _nan_loss(float(losses[i]), epoch, first + i, lr)


def _data(a, name: str, width: int | None) -> torch.Tensor:
    return checks.data_matrix(
        checks.array_or_tensor(a, name), name, width=width, shape_error=ConfigError
    )


def _check_state_fits(state, model: torch.nn.Module) -> None:
    """Raise ValueError unless ``state`` has exactly the keys of ``model.state_dict()``
    with tensors of the same shapes (what ``load_state_dict`` needs), without copying
    the model."""
    if not isinstance(state, dict):
        raise ValueError(f"best_state is a {type(state).__name__}, not a state dict")
    ref = model.state_dict()
    missing = sorted(set(ref) - set(state))
    unexpected = sorted(set(state) - set(ref))
    if missing or unexpected:
        raise ValueError(
            f"best_state keys differ from the model's (missing {missing[:3]}, "
            f"unexpected {unexpected[:3]})"
        )
    for key, value in ref.items():
        other = state[key]
        if not isinstance(other, torch.Tensor) or other.shape != value.shape:
            got = tuple(other.shape) if isinstance(other, torch.Tensor) else type(other).__name__
            raise ValueError(
                f"best_state[{key!r}] is {got}, the model has shape {tuple(value.shape)}"
            )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else ""
    return f"{type(exc).__name__}: {line[:200]}"


def _load_checkpoint(path: Path) -> dict:
    """The trainer's state from ``path``; DataError naming the file if it is not one."""
    try:
        st = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad file
        raise DataError(
            f"cannot read the checkpoint ({_first_line(exc)}); delete it or pass resume=False",
            path,
        ) from None
    if not isinstance(st, dict) or st.get("format") != _FORMAT:
        raise DataError(
            "not a checkpoint written by elbolab's trainer; delete it or pass resume=False", path
        )
    missing = [
        k
        for k in (
            "model",
            "optimizer",
            "generator",
            "history",
            "best_state",
            "valid_seed",
            "bad_epochs",
        )
        if k not in st
    ]
    if missing:
        raise DataError(f"checkpoint is incomplete (missing {missing})", path)
    hist = st["history"]
    keys = ("train_loss", "valid_loss", "best_epoch", "best_loss", "stopped_early", "seconds")
    if not isinstance(hist, dict) or any(k not in hist for k in keys):
        raise DataError("checkpoint history is incomplete", path)
    return st


def _clone_state(model: torch.nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _evaluate(model, loss_fn, data: torch.Tensor, batch_size: int, seed: int) -> float:
    gen = checks.torch_generator(seed, "valid_seed", device=data.device)
    total = torch.zeros((), dtype=torch.float64, device=data.device)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for i0 in range(0, data.shape[0], batch_size):
            total += loss_fn(model, data[i0 : i0 + batch_size], gen).double()
    model.train(was_training)
    return float(total) / data.shape[0]


def _device(model: torch.nn.Module) -> torch.device:
    """Where the model's parameters (and buffers) live; the CPU for a model without any."""
    for t in (*model.parameters(), *model.buffers()):
        return t.device
    return torch.device("cpu")


def _takes_beta(loss_fn: Callable) -> bool:
    try:
        params = inspect.signature(loss_fn).parameters.values()
    except (TypeError, ValueError):  # a builtin or C callable: it cannot be told
        return False
    return any(p.name == "beta" or p.kind is p.VAR_KEYWORD for p in params)


def train(
    model: torch.nn.Module,
    loss_fn: Callable,
    train_data: ArrayOrTensor,
    valid_data: ArrayOrTensor | None = None,
    generator: torch.Generator | int = 0,
    epochs: int = 100,
    batch_size: int = 100,
    lr: float = 1e-3,
    patience: int | None = None,
    checkpoint: str | os.PathLike | Callable[[dict], None] | None = None,
    progress: bool = True,
    resume: bool = True,
    kl_warmup: int = 0,
) -> dict:
    """Train ``model`` with Adam on minibatches, with validation-based early stopping.

    Parameters
    ----------
    model : torch.nn.Module
    loss_fn : callable ``(model, x, generator) -> scalar tensor``
        Loss summed over the minibatch x (B, D), e.g. ``elbolab.objectives.elbo_loss``.
    train_data : (N, D) tensor or array
        Shuffled every epoch with ``generator``.
    valid_data : (M, D) tensor or array, optional
        Monitored for early stopping and best-state selection; without it the training
        loss is monitored.
    generator : torch.Generator or int
        The only source of randomness (shuffling, loss noise, the validation seed).
    epochs : int
        Maximum number of epochs.
    batch_size : int
        Minibatch size (the last minibatch of an epoch may be smaller).
    lr : float
        Adam learning rate.
    patience : int, optional
        Stop after this many epochs without a new best monitored loss (``None``: never).
    checkpoint : path-like or callable, optional
        A directory (created if needed) where ``trainer.pt`` is written atomically after
        every epoch and resumed from; or a callable called with the state dict.
    progress : bool
        Show a bar over minibatches with rate, ETA and the running loss.
    resume : bool
        Continue from ``checkpoint/trainer.pt`` when it exists (else start afresh and
        overwrite it).
    kl_warmup : int
        KL warm-up (deterministic annealing, Bowman et al. 2016; Sonderby et al. 2016):
        over the first W = ``kl_warmup`` epochs the loss is called as
        ``loss_fn(model, x, generator, beta=(epoch + 1) / W)`` (0-based epoch), so the KL
        weight rises linearly to 1; ``loss_fn`` must accept ``beta`` (``elbo_loss``
        does). Validation always uses the plain loss, and the best state and early
        stopping only consider epochs at full weight. 0: no warm-up.

    Notes
    -----
    Device: the model's. The data are moved there once, before the first epoch;
    shuffling and the loss noise come from ``generator`` on that device (a seed gives
    one there, a given generator must live there), so a CPU and a GPU run of the same
    seed draw different noise. On a GPU the losses stay there during an epoch and the
    host reads them every ``_GPU_SYNC_EVERY`` minibatches (progress and the NaN check).

    Returns
    -------
    dict with
        ``"train_loss"``, ``"valid_loss"`` : per-epoch losses in nats per data point
        (``valid_loss`` is empty without valid data); ``"best_epoch"`` (0-based) and
        ``"best_loss"``: the epoch whose parameters the model holds on return;
        ``"epochs_run"``; ``"stopped_early"`` : bool; ``"seconds"`` : total training time
        (including time before a resume); ``"epoch_seconds"``; ``"resumed_from"`` :
        number of epochs loaded from a checkpoint (0 for a fresh run).

    Raises
    ------
    ConfigError
        Bad settings.
    DataError
        Bad data (wrong width, NaN or infinity), or a checkpoint that cannot be read
        (corrupt, or not written by this trainer) or does not fit this model and optimizer.
    NumericalError
        A non-finite training or validation loss (the learning rate is the usual culprit).
    """
    width = getattr(model, "data_dim", None)
    device = _device(model)
    train_data = _data(train_data, "train_data", width if checks.is_integer(width) else None)
    train_data = train_data.to(device)
    if valid_data is not None:
        valid_data = _data(valid_data, "valid_data", train_data.shape[1]).to(device)
    gen = checks.torch_generator(generator, "generator", device=device)
    kl_warmup = checks.integer(kl_warmup, "kl_warmup", 0)
    if kl_warmup and not _takes_beta(loss_fn):
        raise ConfigError(
            "kl_warmup needs a loss_fn that accepts beta (like elbo_loss); "
            f"{getattr(loss_fn, '__name__', type(loss_fn).__name__)} does not"
        )
    epochs = checks.integer(epochs, "epochs", 0)
    batch_size = checks.integer(batch_size, "batch_size", 1)
    if patience is not None:
        patience = checks.integer(patience, "patience", 1)
    lr = checks.positive(lr, "lr")
    ckpt_path = None
    if checkpoint is not None and not callable(checkpoint):
        folder = Path(checkpoint)
        if folder.exists() and not folder.is_dir():
            raise ConfigError(f"checkpoint must be a directory, got the file {folder}")
        folder.mkdir(parents=True, exist_ok=True)
        ckpt_path = folder / CHECKPOINT_NAME

    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    n = train_data.shape[0]
    n_batches = math.ceil(n / batch_size)

    if ckpt_path is not None and resume and ckpt_path.exists():
        st = _load_checkpoint(ckpt_path)
        if st.get("device", "cpu") != device.type:
            raise DataError(
                f"the checkpoint was written by a run on {st.get('device', 'cpu')} and this "
                f"model is on {device.type}: generator states and results differ between "
                "devices; resume on the same device, or delete it or pass resume=False",
                ckpt_path,
            )
        try:
            model.load_state_dict(st["model"])
            optimizer.load_state_dict(st["optimizer"])
            gen.set_state(st["generator"])
            if st["best_state"] is not None:
                # Checked now, not at the end of training: it must fit this model too.
                _check_state_fits(st["best_state"], model)
        except (RuntimeError, ValueError, KeyError, TypeError) as exc:
            raise DataError(
                f"the checkpoint does not fit this model and optimizer ({_first_line(exc)}); "
                "delete it or "
                "pass resume=False",
                ckpt_path,
            ) from None
        hist = st["history"]
        best_state = st["best_state"]
        valid_seed = st["valid_seed"]
        bad = st["bad_epochs"]
        resumed_from = len(hist["train_loss"])
    else:
        hist = {
            "train_loss": [],
            "valid_loss": [],
            "best_epoch": -1,
            "best_loss": math.inf,
            "stopped_early": False,
            "seconds": 0.0,
            "epoch_seconds": [],
        }
        best_state = None
        valid_seed = int(torch.randint(0, 2**62, (1,), generator=gen, device=device))
        bad = 0
        resumed_from = 0

    start = len(hist["train_loss"])
    sync_every = _sync_every(device)
    bar = progress_bar(
        total=epochs * n_batches,
        desc="train",
        unit="batch",
        disable=None if progress else True,
        initial=min(start, epochs) * n_batches,
    )
    # On a GPU the objectives' own NaN checks would read the device back at every
    # minibatch; the loop checks its losses itself (the data were checked above).
    with bar, checks.value_checks(sync_every == 1):
        for epoch in range(start, epochs):
            if hist["stopped_early"]:
                break
            t0 = time.perf_counter()
            model.train()
            beta = min(1.0, (epoch + 1) / kl_warmup) if kl_warmup else 1.0
            step_loss = functools.partial(loss_fn, beta=beta) if kl_warmup else loss_fn
            perm = torch.randperm(n, generator=gen, device=device)
            # Losses are summed on the device and read back (progress, NaN check) every
            # sync_every minibatches, before the step: on the CPU, after every minibatch,
            # so a NaN loss never reaches the weights; on a GPU a few NaN steps may.
            total = torch.zeros((), dtype=torch.float64, device=device)
            unread = torch.zeros(min(sync_every, n_batches), dtype=torch.float64, device=device)
            first = 0  # the first minibatch in `unread`
            for b in range(n_batches):
                xb = train_data[perm[b * batch_size : (b + 1) * batch_size]]
                loss = step_loss(model, xb, gen)
                if sync_every == 1:
                    value = float(loss.detach())
                    if not math.isfinite(value):
                        raise _nan_loss(value, epoch, b, lr)
                    total += value
                else:
                    unread[b - first] = loss.detach()
                    if b + 1 - first == sync_every or b + 1 == n_batches:
                        _check_losses(unread[: b + 1 - first], first, epoch, lr)
                        total += unread[: b + 1 - first].sum()
                        first = b + 1
                if (b + 1) % _GPU_SYNC_EVERY == 0 or b + 1 == n_batches:
                    seen = min(n, (b + 1) * batch_size)
                    bar.set_postfix(epoch=epoch, loss=f"{float(total) / seen:.3f}", refresh=False)
                optimizer.zero_grad(set_to_none=True)
                (loss / xb.shape[0]).backward()
                optimizer.step()
                bar.update(1)
            train_loss = float(total) / n
            hist["train_loss"].append(train_loss)
            if valid_data is not None:
                monitored = _evaluate(model, loss_fn, valid_data, batch_size, valid_seed)
                if not math.isfinite(monitored):
                    raise NumericalError(
                        f"train: the validation loss is {monitored} at epoch {epoch}; lower lr "
                        f"(now {lr}) or check valid_data"
                    )
                hist["valid_loss"].append(monitored)
            else:
                monitored = train_loss
            if beta < 1.0:
                pass  # still warming up: the model is not yet trained on its objective
            elif monitored < hist["best_loss"]:
                hist["best_loss"] = monitored
                hist["best_epoch"] = epoch
                best_state = _clone_state(model)
                bad = 0
            else:
                bad += 1
            if patience is not None and bad >= patience:
                hist["stopped_early"] = True
            dt = time.perf_counter() - t0
            hist["epoch_seconds"].append(dt)
            hist["seconds"] += dt
            bar.set_postfix(
                epoch=epoch,
                loss=f"{train_loss:.3f}",
                valid=f"{monitored:.3f}" if valid_data is not None else "-",
            )
            if checkpoint is not None:
                state = {
                    "format": _FORMAT,
                    "device": device.type,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "generator": gen.get_state(),
                    "history": hist,
                    "best_state": best_state,
                    "valid_seed": valid_seed,
                    "bad_epochs": bad,
                }
                if ckpt_path is not None:
                    atomic_write(ckpt_path, functools.partial(torch.save, state))
                else:
                    checkpoint(copy.deepcopy(state))

    if best_state is not None:
        model.load_state_dict(best_state)
    out = copy.deepcopy(hist)
    out["epochs_run"] = len(hist["train_loss"])
    out["resumed_from"] = resumed_from
    return out
