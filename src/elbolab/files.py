"""Ground floor: writing files atomically.

Every file that elbolab writes for a user (JSON, arrays, checkpoints, figures, reports,
saved models, corpora, downloaded datasets) goes through :func:`atomic_write` or
:func:`atomic_path`, so that a file that exists is always complete: an interrupted or
failing write leaves the previous version of the file, or no file, and never a
half-written one.

Reading goes through :func:`reading`, so that a file that cannot be read is one
:class:`~elbolab.errors.DataError` naming it, whichever reader met it.

This module imports nothing from elbolab but :mod:`elbolab.errors` (it is below
:mod:`elbolab.data`, :mod:`elbolab.models` and :mod:`elbolab.report`, which all use it).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from .errors import DataError

__all__ = ["atomic_path", "atomic_write", "reading", "scratch_file"]


def atomic_write(
    path: str | os.PathLike, write_fn: Callable[[IO], Any], *, text: bool = False
) -> Path:
    """Write a file atomically: all of it or, after any failure, nothing new.

    Parameters
    ----------
    path : str or path-like
        The target file. Its folder must exist.
    write_fn : callable
        Called with an open file object (binary, or UTF-8 text with ``"\\n"`` line
        endings when ``text=True``) and writes the content to it.
    text : bool
        Open the temporary file in text mode.

    Returns
    -------
    Path
        The target path.

    Notes
    -----
    The content goes to a temporary file that :func:`atomic_path` moves over the
    target; see there for the guarantees.
    """
    target = Path(path)
    with atomic_path(target) as tmp:
        if text:
            fh = open(tmp, "w", encoding="utf-8", newline="\n")
        else:
            fh = open(tmp, "wb")
        with fh:
            write_fn(fh)
    return target


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A new empty temporary file that becomes ``path`` when the block succeeds.

    For writers that open a file by name (several files committed together, a copy
    through ``gzip``); :func:`atomic_write` is the short form for one callback. After
    the block the temporary file is fsync'ed and renamed over ``path`` with
    ``os.replace``; if the block raises (``KeyboardInterrupt`` included) it is removed
    and ``path`` keeps its previous content, or stays absent.

    Notes
    -----
    The temporary file ``.NAME.<random>.tmp`` lies in the target's folder (which must
    exist) so that the rename stays within one file system, which makes it atomic. It
    is created with ``open(..., "x")`` rather than ``tempfile.mkstemp`` so that it gets
    the ordinary permissions (0666 less the umask) instead of mkstemp's 0600.
    """
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    open(tmp, "xb").close()
    try:
        yield tmp
        # Without fsync a power loss after the rename can leave an empty target.
        _fsync(tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


@contextlib.contextmanager
def scratch_file(folder: str | os.PathLike, tag: str = "scratch") -> Iterator[Path]:
    """A new empty hidden file ``.TAG.<random>.tmp`` in ``folder`` for intermediate data
    (a download before it is unpacked), removed after the block whatever happens."""
    tmp = Path(folder) / f".{tag}.{secrets.token_hex(6)}.tmp"
    open(tmp, "xb").close()
    try:
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def reading(path: str | os.PathLike, what: str) -> Iterator[None]:
    """Within the block, an ``OSError`` (a missing file, a directory, no permission) is a
    DataError naming ``what`` (e.g. "vocabulary file") and ``path``."""
    try:
        yield
    except FileNotFoundError:
        raise DataError(f"{what} not found", path) from None
    except IsADirectoryError:
        raise DataError(f"{what} is a directory, expected a file", path) from None
    except OSError as exc:
        raise DataError(f"cannot read {what}: {exc.strerror or exc}", path) from None


def _fsync(file: Path) -> None:
    fd = os.open(file, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; best effort, not possible on Windows.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
