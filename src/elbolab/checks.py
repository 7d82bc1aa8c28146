"""Ground floor: the small checks of arguments, data and numbers that every layer uses.

Bad input is decided once, where it enters the library, by these functions, so that
every public function answers the same input the same way: it is either handled (a
numpy scalar is a number, ``np.int64(5)`` is 5; a batch of d independent Normals is a
diagonal prior) or refused with one :mod:`elbolab.errors` exception whose message names
the argument and what was expected:

* :class:`~elbolab.errors.ConfigError` -- a setting of the wrong type or out of range;
* :class:`~elbolab.errors.DataError` -- data of the wrong shape, dtype or content
  (NaN, infinity, complex, negative or non-integer counts);
* :class:`~elbolab.errors.NumericalError` -- a computation on accepted input reached
  NaN, infinity or an impossible value (:func:`finite`).

This module imports nothing from elbolab but :mod:`elbolab.errors`.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import numbers
import os
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from .errors import ConfigError, DataError, NumericalError

__all__ = [
    "MAX_CONCENTRATION",
    "MAX_COUNT",
    "array_or_tensor",
    "concentration",
    "count_matrix",
    "data_matrix",
    "device",
    "diagonal_prior",
    "finite",
    "fraction",
    "integer",
    "integers",
    "is_integer",
    "is_real",
    "list_of",
    "number",
    "numpy_rng",
    "output_file",
    "path",
    "positive",
    "probability",
    "real_tensor",
    "same_device",
    "value_checks",
    "value_checks_enabled",
    "torch_generator",
]

# Largest Dirichlet concentration accepted (alpha, eta of LDA): the ELBO's Dirichlet
# terms cancel at the size alpha log(alpha), so beyond ~1e8 float64 loses whole nats
# (measured: at 1e12 the ELBO of a small corpus was off by 0.06 nats, at 1e15 by 26).
MAX_CONCENTRATION = 1e8

# Largest count (and total of counts) accepted: every integer up to 2**53 is exact in
# float64, the dtype the models compute in, and sums of such counts fit in int64.
MAX_COUNT = 2**53


def _what(value) -> str:
    return f"{value!r} ({type(value).__name__})"


def is_integer(value) -> bool:
    """True for Python and numpy integers (``np.int64(5)``), False for bools and floats."""
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(
        value, (bool, np.bool_)
    )


def is_real(value) -> bool:
    """True for real Python and numpy scalars (not bool, not complex)."""
    return isinstance(value, (numbers.Real, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def integer(value, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as a Python int; numpy integers accepted, bools and floats refused.

    Raises ConfigError naming ``name``: "must be an integer" for the wrong type (with the
    type given), the bound for a value out of range.
    """
    bounds = ""
    if minimum is not None:
        bounds = f" >= {minimum}"
    if maximum is not None:
        bounds += f"{' and' if bounds else ''} <= {maximum}"
    if not is_integer(value):
        raise ConfigError(f"{name} must be an integer{bounds}, got {_what(value)}")
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ConfigError(f"{name} must be an integer{bounds}, got {value}")
    return value


def number(
    value,
    name: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    open_min: bool = False,
    open_max: bool = False,
) -> float:
    """``value`` as a finite Python float; numpy scalars accepted; bool, complex, str refused.

    ``minimum`` / ``maximum`` bound it (exclusive with ``open_min`` / ``open_max``). An
    integer too large for a float (``10**400``) is refused like infinity.
    """
    lo = "" if minimum is None else f"{'>' if open_min else '>='} {minimum}"
    hi = "" if maximum is None else f"{'<' if open_max else '<='} {maximum}"
    bounds = " and ".join(b for b in (lo, hi) if b)
    need = f"a finite real number{' ' + bounds if bounds else ''}"
    if not is_real(value):
        raise ConfigError(f"{name} must be {need}, got {_what(value)}")
    try:
        out = float(value)
    except OverflowError:
        raise ConfigError(
            f"{name} must be {need}, got a {type(value).__name__} too large for a float"
        ) from None
    if not math.isfinite(out):
        raise ConfigError(f"{name} must be {need}, got {out}")
    if minimum is not None and (out < minimum or (open_min and out == minimum)):
        raise ConfigError(f"{name} must be {need}, got {out}")
    if maximum is not None and (out > maximum or (open_max and out == maximum)):
        raise ConfigError(f"{name} must be {need}, got {out}")
    return out


def positive(value, name: str, allow_zero: bool = False) -> float:
    """A finite number > 0 (>= 0 with ``allow_zero``)."""
    return number(value, name, minimum=0.0, open_min=not allow_zero)


def concentration(value, name: str) -> float:
    """A Dirichlet concentration: a number in (0, :data:`MAX_CONCENTRATION`]."""
    return number(value, name, minimum=0.0, open_min=True, maximum=MAX_CONCENTRATION)


def probability(value, name: str) -> float:
    """A number in [0, 1]."""
    return number(value, name, minimum=0.0, maximum=1.0)


def fraction(value, name: str) -> float:
    """A number in the open interval (0, 1)."""
    return number(value, name, minimum=0.0, maximum=1.0, open_min=True, open_max=True)


def device(value, name: str = "device") -> torch.device:
    """A ``torch.device`` from ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a device.

    ``"auto"`` is CUDA when it is available, else the CPU. Asking for CUDA where there is
    none, or for ``cuda:N`` past the last GPU, is a ConfigError in one line.
    """
    if isinstance(value, str) and value.strip().lower() == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(value)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(f"{name} must be auto, cpu, cuda or cuda:N, got {_what(value)}") from None
    if dev.type == "cpu":
        return torch.device("cpu")
    if dev.type != "cuda":
        raise ConfigError(f"{name} must be auto, cpu, cuda or cuda:N, got {_what(value)}")
    if not torch.cuda.is_available():
        raise ConfigError(
            f"{name}={dev} asks for CUDA, but this torch ({torch.__version__}) sees no GPU; "
            "use cpu or auto"
        )
    count = torch.cuda.device_count()
    if dev.index is not None and dev.index >= count:
        raise ConfigError(f"{name}={dev}, but this machine has {count} GPU(s)")
    return dev


def _same(a: torch.device, b: torch.device) -> bool:
    # "cuda" means the current GPU; a generator or tensor always carries its index.
    if a.type != b.type:
        return False
    if a.type != "cuda":
        return a.index == b.index or a.type == "cpu"
    current = torch.cuda.current_device()
    return (current if a.index is None else a.index) == (current if b.index is None else b.index)


def same_device(dev: torch.device, what: str, other_dev: torch.device, other: str) -> None:
    """ConfigError naming ``what`` and ``other`` when ``dev`` and ``other_dev`` are different
    devices (each device before its name, like the value before its name elsewhere)."""
    if not _same(torch.device(dev), torch.device(other_dev)):
        raise ConfigError(f"{what} is on {dev} but {other} is on {other_dev}; move them together")


def torch_generator(value, name: str = "generator", *, device=None) -> torch.Generator:
    """The one way a seed becomes randomness: a ``torch.Generator`` on ``device``.

    An integer seed (numpy integers too, in [0, 2**64)) gives a new generator on
    ``device`` (the CPU by default); a given generator is returned as is after checking
    that it lives on ``device`` (ConfigError naming both devices otherwise). ``None`` is
    refused: randomness in elbolab is always explicit.
    """
    dev = torch.device("cpu") if device is None else torch.device(device)
    if isinstance(value, torch.Generator):
        same_device(value.device, name, dev, "the model and data it draws for")
        return value
    if not is_integer(value):
        raise ConfigError(
            f"{name} must be a torch.Generator or an integer seed, got {_what(value)}"
        )
    seed = int(value)
    if not 0 <= seed < 2**64:
        raise ConfigError(f"{name}: an integer seed must lie in [0, 2**64), got {seed}")
    return torch.Generator(device=dev).manual_seed(seed)


def numpy_rng(value, name: str = "seed") -> np.random.Generator:
    """``numpy.random.default_rng`` of an integer seed >= 0 (numpy integers too), a
    sequence of them, or a ``numpy.random.Generator`` (returned as is)."""
    if isinstance(value, np.random.Generator):
        return value
    if is_integer(value):
        if int(value) < 0:
            raise ConfigError(f"{name} must be an integer >= 0, got {int(value)}")
        return np.random.default_rng(int(value))
    if isinstance(value, (list, tuple)) and value and all(is_integer(v) and v >= 0 for v in value):
        return np.random.default_rng([int(v) for v in value])
    raise ConfigError(
        f"{name} must be an integer >= 0 or a numpy.random.Generator, got {_what(value)}"
    )


def list_of(value, name: str, what: str, error: type = ConfigError) -> list:
    """``value`` (a list, tuple, array or other iterable) as a new list; a string is one
    item, not a list of them, and is refused like None or a number with ``error``:
    "NAME must be a list of WHAT, got TYPE"."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise error(f"{name} must be a list of {what}, got {type(value).__name__}")
    return list(value)


def integers(value, name: str, minimum: int, *, allow_empty: bool = False) -> tuple[int, ...]:
    """``value`` (a list or tuple, say a study's ``topics``) as a tuple of Python ints,
    each >= ``minimum`` (:func:`integer`); empty only with ``allow_empty``. ConfigError
    naming ``name`` otherwise."""
    items = list_of(value, name, f"integers >= {minimum}")
    if not items and not allow_empty:
        raise ConfigError(f"{name} must be a non-empty list of integers >= {minimum}, got none")
    return tuple(integer(v, name, minimum) for v in items)


def array_or_tensor(value, name: str) -> np.ndarray | torch.Tensor:
    """``value`` itself if it is a ``torch.Tensor`` or a numpy array; anything else (a
    nested list, a scalar, None) is a ConfigError naming ``name``. For arguments that
    are a batch of data, where a list is more likely a mistake than data."""
    if not isinstance(value, (torch.Tensor, np.ndarray)):
        raise ConfigError(f"{name} must be a tensor or numpy array, got {type(value).__name__}")
    return value


def path(value, name: str) -> Path:
    """A file path (str or os.PathLike); anything else (None, a number) is refused."""
    if isinstance(value, (str, os.PathLike)) and str(value) != "":
        return Path(value)
    raise ConfigError(f"{name} must be a file path (str or os.PathLike), got {_what(value)}")


def output_file(value, name: str, example: str) -> Path:
    """A path (:func:`path`) to write a file to: not an existing directory (the message
    suggests a file name such as ``example``)."""
    target = path(value, name)
    if target.is_dir():
        raise ConfigError(f"{name} {target} is a directory; give a file name such as {example}")
    return target


# ----------------------------------------------------------------------------- data


def _tensor(x, name: str, shape_error: type, content_error: type) -> torch.Tensor:
    """``x`` as a tensor of real numbers. ``shape_error`` for None and ragged nested
    lists, ``content_error`` for complex, object and string input; both name ``name``.

    Valid numpy arrays torch cannot wrap as they are (negative strides from ``x[::-1]``
    or ``np.flip``, a non-native byte order such as ``'>f8'``) are copied first.
    """
    if isinstance(x, torch.Tensor):
        t = x
    else:
        if x is None:
            raise shape_error(f"{name} must be an array of real numbers, got None")
        try:
            arr = x if isinstance(x, np.ndarray) else np.asarray(x)
        except (ValueError, TypeError) as exc:
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            raise shape_error(
                f"{name} must be a rectangular array of real numbers (nested lists of "
                f"equal lengths), got {type(x).__name__}: {first}"
            ) from None
        if arr.dtype.kind not in "biuf":
            raise content_error(f"{name} must hold real numbers, got dtype {arr.dtype}")
        if not arr.dtype.isnative:
            arr = arr.astype(arr.dtype.newbyteorder("="))
        if any(step < 0 for step in arr.strides):
            arr = np.ascontiguousarray(arr)
        try:
            t = torch.as_tensor(arr)
        except (ValueError, TypeError) as exc:
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            raise content_error(
                f"{name}: an array of dtype {arr.dtype} cannot be used ({first})"
            ) from None
    if t.is_complex():
        raise content_error(f"{name} must hold real numbers, got complex dtype {t.dtype}")
    return t


def real_tensor(x, name: str, error: type = DataError) -> torch.Tensor:
    """``x`` (tensor, array, nested list) as a tensor of real numbers (bool and integer
    dtypes included); None, ragged nested lists, complex, object and string input
    refused with ``error`` naming ``name``.

    Arrays torch cannot wrap as they are but that are valid (negative strides as from
    ``x[::-1]``, non-native byte order) are copied to a contiguous native array.
    """
    return _tensor(x, name, error, error)


def data_matrix(
    x,
    name: str,
    *,
    width: int | None = None,
    dtype: torch.dtype | None = None,
    device=None,
    finite_values: bool = True,
    shape_error: type = DataError,
) -> torch.Tensor:
    """A non-empty (N, D) tensor of real, finite numbers, D = ``width`` if given.

    Cast to ``dtype`` / ``device`` when given (integer and bool data included, e.g. uint8
    MNIST). Shape problems (None, a ragged list, not 2-D, empty) raise ``shape_error``
    (the layer's established class); content problems -- a wrong width, complex or other
    non-real values, NaN or infinity -- always raise DataError. All name ``name``.
    """
    t = _tensor(x, name, shape_error, DataError)
    if t.ndim != 2 or t.shape[0] == 0 or t.shape[1] == 0:
        raise shape_error(f"{name} must be a non-empty (N, D) batch, got shape {tuple(t.shape)}")
    if width is not None and t.shape[1] != width:
        raise DataError(f"{name} has {t.shape[1]} columns but the model takes D = {width}")
    if dtype is not None or device is not None:
        t = t.to(dtype=dtype or t.dtype, device=device if device is not None else t.device)
    # A NaN or an infinity makes the sum non-finite, and one reduction is far cheaper
    # than an elementwise test (this runs on every minibatch of a training loop); only a
    # non-finite sum (or one that overflowed) looks element by element.
    if (
        finite_values
        and t.is_floating_point()
        and value_checks_enabled()
        and not bool(torch.isfinite(t.sum()))
    ):
        bad = ~torch.isfinite(t)
        if bool(bad.any()):
            row = int(bad.any(1).nonzero()[0, 0])
            raise DataError(
                f"{name} contains NaN or infinite values (first in row {row}); "
                f"the data must be finite"
            )
    return t


_VALUE_CHECKS = contextvars.ContextVar("elbolab_value_checks", default=True)


@contextlib.contextmanager
def value_checks(enabled: bool):
    """Within the block, :func:`data_matrix` and the objectives test values for NaN and
    infinity only if ``enabled`` (shapes, widths and types are always checked).

    A GPU training loop turns them off: each test reads the device back and stalls it
    at every minibatch. The loop then checks its losses itself, as
    :func:`elbolab.models.trainer.train` does.
    """
    token = _VALUE_CHECKS.set(bool(enabled))
    try:
        yield
    finally:
        _VALUE_CHECKS.reset(token)


def value_checks_enabled() -> bool:
    """False inside ``value_checks(False)``."""
    return _VALUE_CHECKS.get()


def _first_bad_count(data: np.ndarray) -> tuple[int, str] | None:
    """Index of the first value of ``data`` (int, uint or float) that is not a count up
    to :data:`MAX_COUNT`, with what is wrong with it; None if all are counts."""
    if data.size == 0:
        return None
    too_large = data > MAX_COUNT
    if data.dtype.kind == "f":
        bad = ~np.isfinite(data) | (data < 0) | (data != np.round(data)) | too_large
    else:
        bad = (data < 0) | too_large
    hit = np.flatnonzero(bad)
    if hit.size == 0:
        return None
    i = int(hit[0])
    value = data[i]
    if data.dtype.kind == "f" and not np.isfinite(value):
        return i, "NaN or infinite"
    if value < 0:
        return i, "a negative count"
    if value > MAX_COUNT:
        return i, "above 2**53, where counts stop being exact in float64"
    return i, "a non-integer count"


def _checked_counts(data: np.ndarray, name: str, error: type, entry) -> np.ndarray:
    """The stored values of a count matrix, checked, as a new int64 array (int32 kept):
    ``error`` naming ``name`` for a dtype that is not numbers or a total above
    :data:`MAX_COUNT`, and naming ``entry(i)`` for a bad value ``data[i]``."""
    if data.dtype.kind not in "biuf":
        raise error(f"{name} must hold integer counts (an integer dtype), got dtype {data.dtype}")
    if data.dtype.kind == "b":
        data = data.astype(np.int64)
    bad = _first_bad_count(data)
    if bad is not None:
        i, reason = bad
        raise error(
            f"{entry(i)} = {data[i]:g} is {reason}; counts must be non-negative integers "
            "up to 2**53 (counts of words, not tf-idf weights)"
        )
    out = data.astype(np.int32 if data.dtype == np.int32 else np.int64)  # always a copy
    # Summed in float64: no int64 wrap-around can hide an overflow.
    if float(out.sum(dtype=np.float64)) > MAX_COUNT:
        raise error(f"{name}: the counts sum to more than 2**53 tokens")
    return out


def count_matrix(X, name: str, error: type = DataError) -> sp.csr_matrix:
    """A (D, V) matrix of word counts as a new canonical CSR matrix (the caller's is never
    changed): the one check of count data that every layer uses.

    ``X`` is a scipy sparse matrix or array, or a dense array (nested lists included) of
    non-negative integers: any integer or bool dtype, or floats that are whole numbers.
    The result holds int64 counts (int32 ones stay int32) in canonical form: sorted
    column indices, no duplicate entries (summed), no stored zeros. Empty matrices are
    accepted; refusing them is for the caller.

    Raises ``error`` naming ``name``: None or a string, ragged nested lists, not 2-D, a
    dtype that is not numbers, an entry that is negative, fractional, not finite or
    above :data:`MAX_COUNT` (``X[row, column] = value``), or counts whose total is above
    :data:`MAX_COUNT`.
    """
    need = f"{name} must be a 2-D (documents x words) count matrix"
    if X is None or isinstance(X, (str, bytes)):
        raise error(f"{need}, got {_what(X)}")
    if sp.issparse(X):
        mat = sp.csr_matrix(X)
    else:
        try:
            arr = np.asarray(X)
        except ValueError as exc:  # ragged nested lists
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            raise error(f"{need}: {first}") from None
        if arr.ndim != 2:
            raise error(f"{need}, got shape {arr.shape}")
        if arr.dtype.kind not in "biuf":
            raise error(
                f"{name} must hold integer counts (an integer dtype), got dtype {arr.dtype}"
            )
        mat = sp.csr_matrix(arr)
    if mat.ndim != 2:
        raise error(f"{need}, got shape {mat.shape}")

    def entry(i: int) -> str:
        row = int(np.searchsorted(mat.indptr, i, side="right")) - 1
        return f"{name}[{row}, {int(mat.indices[i])}]"

    data = _checked_counts(mat.data, name, error, entry)
    out = sp.csr_matrix((data, mat.indices.copy(), mat.indptr.copy()), shape=mat.shape)
    out.sum_duplicates()  # also sorts the indices
    out.eliminate_zeros()
    out.sort_indices()
    return out


# ----------------------------------------------------------------------- numbers


def finite(value, where: str, what: str = "the result"):
    """Return ``value`` (tensor, array or float) if every entry is finite, else raise
    NumericalError saying ``where`` ``what`` became NaN or infinite."""
    if isinstance(value, torch.Tensor):
        ok = bool(torch.isfinite(value.detach()).all())
    else:
        ok = bool(np.all(np.isfinite(np.asarray(value, dtype=np.float64))))
    if not ok:
        raise NumericalError(f"{where}: {what} is NaN or infinite")
    return value


# -------------------------------------------------------------------- distributions


def diagonal_prior(prior, d: int, name: str = "prior"):
    """A prior p(z) over z in R^d with event shape (d,) and batch shape ().

    A batch of d independent univariate distributions (``Normal(zeros(d), ones(d))``,
    batch (d,), event ()) is the diagonal prior ``Independent(prior, 1)``; a prior with
    event (d,) and batch () is returned as is; anything else (another batch shape, the
    wrong d, no ``log_prob``) raises ConfigError naming ``name``.
    """
    if not hasattr(prior, "log_prob"):
        raise ConfigError(f"{name} must be a distribution with log_prob, got {_what(prior)}")
    batch = tuple(getattr(prior, "batch_shape", ()))
    event = tuple(getattr(prior, "event_shape", (d,)))
    if batch == (d,) and event == ():
        return torch.distributions.Independent(prior, 1)
    if batch == () and event == (d,):
        return prior
    raise ConfigError(
        f"{name} must be a distribution over R^{d}: event shape ({d},) and batch shape (), "
        f"or a batch of {d} independent univariate ones (batch ({d},), event ()); got "
        f"batch {batch} and event {event}"
    )
