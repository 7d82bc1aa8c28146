"""Ground floor: writing files atomically.

Every file that elbolab writes for a user (JSON, arrays, checkpoints, figures, reports,
saved models) goes through :func:`atomic_write`, so that a file that exists is always
complete: an interrupted or failing write leaves the previous version of the file, or
no file, and never a half-written one.

This module imports nothing from elbolab but :mod:`elbolab.errors` and
:mod:`elbolab.checks` (it is below :mod:`elbolab.models` and :mod:`elbolab.report`,
which both use it).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_write"]


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
    The temporary file ``.NAME.<random>.tmp`` lies in the target's folder so that the
    final ``os.replace`` is a rename within one file system, which is atomic. It is
    created with ``open(..., "x")`` rather than ``tempfile.mkstemp`` so that it gets the
    ordinary permissions (0666 less the umask) instead of mkstemp's 0600. On any
    exception, ``KeyboardInterrupt`` included, the temporary file is removed and the
    exception propagates; the target keeps its previous content.
    """
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    try:
        if text:
            fh = open(tmp, "x", encoding="utf-8", newline="\n")
        else:
            fh = open(tmp, "xb")
        with fh:
            write_fn(fh)
            fh.flush()
            # Without fsync a power loss after the rename can leave an empty target.
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(target.parent)
    return target


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
