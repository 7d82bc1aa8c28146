"""MNIST readers: the original IDX files and the fixed binarization in ``.amat`` text.

* :func:`read_idx` reads any IDX file (LeCun's format: a 4-byte magic ``0x0000TTDD`` with
  type code ``TT`` and ``DD`` dimensions, ``DD`` big-endian uint32 sizes, then the data).
* :func:`read_amat` reads Larochelle & Murray's (2011) binarized MNIST: one image per line,
  784 values ``0``/``1`` separated by spaces.
* :func:`load_mnist` and :func:`load_binarized_mnist` find the files under the data root
  (see :func:`elbolab.data.fetch.find_root`).

Both readers accept gzip-compressed or plain files; compression is detected from the
content (the gzip magic bytes), not the file name.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from elbolab import checks
from elbolab.errors import ConfigError, DataError
from elbolab.files import reading

if TYPE_CHECKING:
    import os

    import torch

__all__ = [
    "read_idx",
    "read_amat",
    "load_mnist",
    "load_binarized_mnist",
    "IDX_IMAGES_MAGIC",
    "IDX_LABELS_MAGIC",
]

IDX_IMAGES_MAGIC = 0x00000803  # uint8, 3 dimensions (N, rows, cols)
IDX_LABELS_MAGIC = 0x00000801  # uint8, 1 dimension (N,)

# IDX type codes -> big-endian numpy dtypes.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"
_AMAT_PIXELS = 784
_AMAT_LINE = 2 * _AMAT_PIXELS  # "0 1 0 ... 1\n": one digit and one separator per pixel
# Errors a corrupt or truncated gzip stream raises while reading.
_GZIP_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)


def _open(path: Path, what: str):
    """Open ``path`` for binary reading, transparently decompressing gzip."""
    with reading(path, what):
        with open(path, "rb") as f:
            is_gzip = f.read(2) == _GZIP_MAGIC
        return gzip.open(path, "rb") if is_gzip else open(path, "rb")


def _read_exact(f, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        b = f.read(n - got)
        if not b:
            break
        chunks.append(b)
        got += len(b)
    return b"".join(chunks)


def _read_into(f, buf: np.ndarray) -> int:
    """Fill ``buf`` (1-D uint8) from ``f`` without an extra copy; return bytes read."""
    view = memoryview(buf)
    got = 0
    while got < len(view):
        n = f.readinto(view[got:])
        if not n:
            break
        got += n
    return got


def _magic_name(magic: int) -> str:
    dt = _IDX_DTYPES.get((magic >> 8) & 0xFF)
    kind = dt.name if dt is not None else "unknown type"
    return f"0x{magic:08x} (IDX {kind}, {magic & 0xFF}-D)"


def read_idx(path: str | os.PathLike, magic: int | None = None) -> np.ndarray:
    """Read an IDX file (gzip-compressed or plain) into a numpy array.

    Parameters
    ----------
    path : str or Path
    magic : int, optional
        Required magic number, e.g. ``0x00000803`` for MNIST images (uint8, 3-D) or
        ``0x00000801`` for labels (uint8, 1-D). Without it any valid IDX header is read.

    Returns
    -------
    numpy.ndarray
        Shape given by the header, e.g. ``(N, 28, 28)`` uint8 for images and ``(N,)``
        uint8 for labels; multi-byte types are converted to native byte order.

    Raises
    ------
    DataError
        Missing file, corrupt or truncated gzip stream, wrong magic, or a payload whose
        length disagrees with the header ("expected X bytes, found Y").
    """
    path = checks.path(path, "path")
    if magic is not None:
        magic = checks.integer(magic, "magic", 0, 2**32 - 1)
    with _open(path, "IDX file") as f:
        try:
            return _read_idx_stream(f, path, magic)
        except _GZIP_ERRORS as exc:
            raise DataError(f"corrupt or truncated gzip data ({exc})", path) from None
        except OSError as exc:
            raise DataError(f"cannot read IDX file: {exc}", path) from None


def _read_idx_stream(f, path: Path, magic: int | None) -> np.ndarray:
    head = _read_exact(f, 4)
    if len(head) < 4:
        raise DataError(f"too short for an IDX header ({len(head)} bytes)", path)
    (found,) = struct.unpack(">I", head)
    code, ndim = (found >> 8) & 0xFF, found & 0xFF
    if magic is not None and found != magic:
        raise DataError(f"bad magic 0x{found:08x}, expected {_magic_name(magic)}", path)
    if found >> 16 != 0 or code not in _IDX_DTYPES:
        raise DataError(
            f"bad magic 0x{found:08x}, expected an IDX magic 0x0000TTDD with type TT in "
            f"{{{', '.join(f'{c:02x}' for c in _IDX_DTYPES)}}}",
            path,
        )
    dims_raw = _read_exact(f, 4 * ndim)
    if len(dims_raw) < 4 * ndim:
        raise DataError(f"header truncated: {ndim} dimension sizes expected", path)
    dims = struct.unpack(f">{ndim}I", dims_raw)
    dtype = _IDX_DTYPES[code]
    n_bytes = math.prod(dims) * dtype.itemsize
    try:
        buf = np.empty(n_bytes, dtype=np.uint8)
    except (MemoryError, ValueError):
        raise DataError(f"header claims shape {dims}: too large, file corrupt?", path) from None
    got = _read_into(f, buf)
    extra = len(f.read(1 << 16)) if got == n_bytes else 0
    if got != n_bytes or extra:
        found_txt = f"{got}" if not extra else f"more than {n_bytes}"
        raise DataError(
            f"expected {n_bytes} bytes of data after the header for shape {dims}, "
            f"found {found_txt}",
            path,
        )
    arr = buf.view(dtype).reshape(dims)
    if dtype.itemsize > 1:
        arr = arr.astype(dtype.newbyteorder("="))
    return arr


def _read_all(path: Path, what: str) -> bytes:
    with _open(path, what) as f:
        try:
            return f.read()
        except _GZIP_ERRORS as exc:
            raise DataError(f"corrupt or truncated gzip data ({exc})", path) from None
        except OSError as exc:
            raise DataError(f"cannot read {what}: {exc}", path) from None


def read_amat(path: str | os.PathLike) -> np.ndarray:
    """Read binarized MNIST in ``.amat`` text form (gzip-compressed or plain).

    Parameters
    ----------
    path : str or Path
        One image per line: 784 values ``0`` or ``1`` (row-major 28 x 28) separated by
        whitespace.

    Returns
    -------
    (N, 784) numpy.ndarray of uint8 with values in {0, 1}

    Raises
    ------
    DataError
        Missing or corrupt file, no images, or the first bad line (a value other than
        0/1, or not 784 values) with its 1-based line number.
    """
    path = checks.path(path, "path")
    raw = _read_all(path, "amat file")
    fast = _amat_fast(raw)
    return fast if fast is not None else _amat_slow(raw, path)


def _amat_fast(raw: bytes) -> np.ndarray | None:
    """Parse the canonical layout (every line exactly 1568 bytes) with one frombuffer.

    Returns None when the bytes are not in that layout, so the caller can fall back to
    the line-by-line parser, which names the offending line.
    """
    if not raw or len(raw) % _AMAT_LINE:
        return None
    grid = np.frombuffer(raw, dtype=np.uint8).reshape(-1, _AMAT_LINE)
    seps = grid[:, 1::2]
    if not ((seps[:, :-1] == ord(" ")).all() and (seps[:, -1] == ord("\n")).all()):
        return None
    pixels = grid[:, 0::2] - np.uint8(ord("0"))  # wraps below '0' to large values
    if (pixels > 1).any():
        return None
    return pixels


def _amat_slow(raw: bytes, path: Path) -> np.ndarray:
    lines = raw.split(b"\n")
    if lines and not lines[-1].strip():
        lines.pop()  # final newline, or trailing whitespace after it
    if not lines:
        raise DataError("no images (empty file)", path)
    out = np.empty((len(lines), _AMAT_PIXELS), dtype=np.uint8)
    for i, line in enumerate(lines):
        toks = line.split()
        if len(toks) != _AMAT_PIXELS:
            raise DataError(f"expected {_AMAT_PIXELS} values, found {len(toks)}", path, i + 1)
        digits = b"".join(toks)
        row = np.frombuffer(digits, dtype=np.uint8) - np.uint8(ord("0"))
        if len(digits) != _AMAT_PIXELS or (row > 1).any():
            bad = next(t for t in toks if t not in (b"0", b"1"))
            raise DataError(
                f"values must be 0 or 1, found {bad.decode('ascii', 'replace')!r}",
                path,
                i + 1,
            )
        out[i] = row
    return out


# ------------------------------------------------------------------------------ loaders

_MNIST_FILES = {
    "train": ("mnist/train-images-idx3-ubyte.gz", "mnist/train-labels-idx1-ubyte.gz"),
    "test": ("mnist/t10k-images-idx3-ubyte.gz", "mnist/t10k-labels-idx1-ubyte.gz"),
}
_BINARIZED_SPLITS = ("train", "valid", "test")


def _to_torch(*arrays):
    import torch  # imported lazily: reading data must not pay torch's import time

    out = tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in arrays)
    return out if len(out) > 1 else out[0]


def load_mnist(
    root: str | os.PathLike | None = None, split: str = "train", as_torch: bool = False
) -> tuple[np.ndarray, np.ndarray] | tuple[torch.Tensor, torch.Tensor]:
    """Load the original MNIST images and labels (LeCun, Cortes & Burges).

    Parameters
    ----------
    root : str or Path, optional
        Data root holding ``mnist/*-ubyte.gz``; see :func:`elbolab.data.fetch.find_root`
        for the search order when omitted.
    split : {"train", "test"}
        60000 training or 10000 test images.
    as_torch : bool
        Return ``torch.Tensor`` (uint8) instead of numpy arrays.

    Returns
    -------
    images : (N, 28, 28) uint8, grey levels 0..255
    labels : (N,) uint8, digits 0..9
    """
    from elbolab.data.fetch import find_root

    if split not in _MNIST_FILES:
        raise ConfigError(f"split must be one of {sorted(_MNIST_FILES)}, got {split!r}")
    base = find_root("mnist", root)
    img_path, lab_path = (base / rel for rel in _MNIST_FILES[split])
    images = read_idx(img_path, IDX_IMAGES_MAGIC)
    labels = read_idx(lab_path, IDX_LABELS_MAGIC)
    if images.shape[1:] != (28, 28):
        raise DataError(f"images have shape {images.shape}, expected (N, 28, 28)", img_path)
    if images.shape[0] != labels.shape[0]:
        raise DataError(
            f"{images.shape[0]} images in {img_path.name} but {labels.shape[0]} labels",
            lab_path,
        )
    return _to_torch(images, labels) if as_torch else (images, labels)


def load_binarized_mnist(
    root: str | os.PathLike | None = None, split: str = "train", as_torch: bool = False
) -> np.ndarray | torch.Tensor:
    """Load the fixed binarization of MNIST (Larochelle & Murray 2011).

    The ``.amat`` files hold pixels only: there are no labels. (The rows are sorted by
    class, so shuffle before minibatching.)

    Parameters
    ----------
    root : str or Path, optional
        Data root holding ``binarized_mnist/binarized_mnist_{split}.amat.gz``.
    split : {"train", "valid", "test"}
        50000, 10000 and 10000 images.
    as_torch : bool
        Return a ``torch.Tensor`` (uint8) instead of a numpy array.

    Returns
    -------
    (N, 784) uint8 array with values in {0, 1}, pixels in row-major 28 x 28 order
    """
    from elbolab.data.fetch import find_root

    if split not in _BINARIZED_SPLITS:
        raise ConfigError(f"split must be one of {list(_BINARIZED_SPLITS)}, got {split!r}")
    base = find_root("binarized_mnist", root)
    x = read_amat(base / f"binarized_mnist/binarized_mnist_{split}.amat.gz")
    return _to_torch(x) if as_torch else x
