"""Run directories: where a study writes its results, atomically and resumably.

A run directory only stores; where a study's units of work run, and how their results
become checkpoints, is :mod:`elbolab.studies.runner`.

Layout of a run directory::

    RUNDIR/
      config.json        the study's Config, written first
      arrays.npz         numerical results (``save_arrays``)
      figures/NAME.png   figures (``save_figure``)
      models/NAME.pt     trained models (``save_model``; ``elbolab.models.load`` reads them)
      models/lda-kK.npz  fitted LDA models (``LDA.save``; ``LDA.load`` reads them)
      checkpoints/*.pkl  partial work, removed once the run completes
      metrics.json       scalar results, written LAST among the results
      report.html        the self-contained report, written after metrics.json

Conventions
-----------
* **Every write is atomic.** Data go to a hidden temporary file in the target's own
  folder, are flushed and fsync'ed, and only then renamed over the target with
  ``os.replace`` (atomic on POSIX and Windows when both lie on one file system, which a
  temporary file in the same folder guarantees). An interrupted or failing write leaves
  the previous version of the file (or no file) and removes its temporary file, so a
  file that exists is always complete. One helper, :func:`atomic_write` (from
  :mod:`elbolab.files`), does this for JSON, arrays, checkpoints, figures, models and
  the report alike.
* **metrics.json and report.html mark completion.** Studies write ``metrics.json``
  after every other result and ``report.html`` after it. Together with atomic writes,
  this means a crash can never leave a directory that looks finished: a directory
  without both is an unfinished run (:meth:`RunDir.is_complete`), and ``--resume``
  continues it from its checkpoints, which are removed only after the report.
* **Existing directories are protected.** A non-empty directory is refused unless
  ``resume`` or ``overwrite`` is given, and neither option touches a non-empty folder
  that has no ``config.json`` (it is not a run directory, perhaps a typo for one), so a
  mistyped path cannot wipe or litter a user's folder. Whether ``config.json`` of a
  resumed run matches the current config is for the caller to decide
  (compare ``rundir.read_json("config.json")`` with ``to_jsonable(cfg)``).
* **JSON stays valid JSON.** ``write_json`` converts numpy scalars and arrays, paths,
  dataclasses, tuples and sets to plain JSON, and writes non-finite floats as the
  strings ``"nan"``, ``"inf"`` and ``"-inf"`` (``allow_nan=False``: bare ``NaN`` is not
  JSON and breaks strict readers such as browsers' ``JSON.parse``). ``read_json``
  returns the stored values unchanged unless ``decode_nonfinite=True``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pickle
import re
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from elbolab.errors import ConfigError
from elbolab.files import atomic_write

if TYPE_CHECKING:
    import torch
    from matplotlib.figure import Figure

    from .._types import Device

__all__ = ["RunDir", "atomic_write", "to_jsonable", "from_jsonable"]

# Folders that RunDir itself creates: a directory holding only these, empty, is a run
# that crashed before writing anything and counts as empty.
_OWN_SUBDIRS = ("figures", "checkpoints", "models")
_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def to_jsonable(obj: Any, _where: str = "$") -> Any:
    """Convert ``obj`` to plain JSON values (dict, list, str, int, float, bool, None).

    Numpy scalars and arrays become Python numbers and (nested) lists, torch tensors and
    other objects with ``tolist`` likewise, paths become strings, dataclasses become
    dicts of their fields, tuples and sets become lists, mapping keys become strings,
    and non-finite floats become ``"nan"``, ``"inf"`` or ``"-inf"``.

    Raises
    ------
    TypeError
        For any other type, naming where in ``obj`` it was found (e.g. ``$.fit.model``).
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (int, np.integer)) and not isinstance(obj, np.bool_):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        x = float(obj)
        if math.isfinite(x):
            return x
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, (np.ndarray, np.generic)):
        if np.iscomplexobj(obj):
            raise TypeError(f"{_where}: complex values cannot be written as JSON")
        return to_jsonable(obj.tolist(), _where)
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        # Not dataclasses.asdict: that deep-copies every field (large arrays included).
        return {
            f.name: to_jsonable(getattr(obj, f.name), f"{_where}.{f.name}")
            for f in dataclasses.fields(obj)
        }
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v, f"{_where}.{k}") for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = sorted(obj, key=repr) if isinstance(obj, (set, frozenset)) else obj
        return [to_jsonable(v, f"{_where}[{i}]") for i, v in enumerate(items)]
    if hasattr(obj, "tolist") and callable(obj.tolist):  # torch.Tensor and friends
        return to_jsonable(obj.tolist(), _where)
    raise TypeError(f"{_where}: cannot write {type(obj).__name__} as JSON")


def from_jsonable(obj: Any) -> Any:
    """Undo the non-finite encoding of :func:`to_jsonable`: ``"nan"`` -> ``float('nan')``.

    Only the exact strings ``"nan"``, ``"inf"`` and ``"-inf"`` are decoded, anywhere in
    nested dicts and lists; everything else is returned unchanged.
    """
    if isinstance(obj, str):
        return _NONFINITE.get(obj, obj)
    if isinstance(obj, dict):
        return {k: from_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [from_jsonable(v) for v in obj]
    return obj


def _is_blank(path: Path) -> bool:
    """True if ``path`` holds nothing but RunDir's own (empty) subfolders."""
    for entry in path.iterdir():
        if entry.name in _OWN_SUBDIRS and entry.is_dir() and not entry.is_symlink():
            if any(entry.iterdir()):
                return False
        else:
            return False
    return True


def _clear(path: Path) -> None:
    """Remove everything inside ``path`` but keep ``path`` (it may be the shell's cwd)."""
    for entry in path.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()  # a symlink is removed, never followed


class RunDir:
    """A study's output directory; see the module docstring for the conventions.

    Parameters
    ----------
    path : str or path-like
        The directory. Created with its parents if missing.
    resume : bool
        Accept an existing run directory (one with ``config.json``) and keep its content,
        so that the study can continue from its checkpoints.
    overwrite : bool
        Empty an existing run directory (one with ``config.json``) first.

    Raises
    ------
    ConfigError
        If ``path`` is a file; if it is a non-empty directory and neither ``resume`` nor
        ``overwrite`` is given; if it is non-empty but has no ``config.json`` (not a run
        directory, so neither option may touch it); if both options are given.

    Attributes
    ----------
    path : Path
        The directory.
    figures : Path
        ``path / "figures"`` (created).
    checkpoints : Path
        ``path / "checkpoints"`` (created by the first :meth:`save_checkpoint`).
    models : Path
        ``path / "models"`` (created by the first :meth:`save_model`).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        resume: bool = False,
        overwrite: bool = False,
    ) -> None:
        if resume and overwrite:
            raise ConfigError("pass either --resume or --overwrite, not both")
        self.path = Path(path).expanduser()
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"{self.path} exists and is not a directory")
        if self.path.is_dir() and not _is_blank(self.path):
            if not (resume or overwrite):
                raise ConfigError(
                    f"{self.path} is not empty; pass --resume to continue it "
                    "or --overwrite to replace it"
                )
            if not (self.path / "config.json").is_file():
                option = "--resume" if resume else "--overwrite"
                raise ConfigError(
                    f"{self.path} is not empty and has no config.json, so it is not an "
                    f"elbolab run directory; refusing to {option} it (choose another path)"
                )
            if overwrite:
                _clear(self.path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.figures = self.path / "figures"
        self.figures.mkdir(exist_ok=True)
        self.checkpoints = self.path / "checkpoints"
        self.models = self.path / "models"

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    # -- JSON ---------------------------------------------------------------------------

    def write_json(self, name: str, obj: Any) -> Path:
        """Write ``obj`` as indented JSON to ``path / name``, atomically.

        Keys keep their insertion order. See :func:`to_jsonable` for the conversions
        (non-finite floats are written as the strings ``"nan"``, ``"inf"``, ``"-inf"``).
        The whole object is converted before the file is opened, so an unconvertible
        value raises ``TypeError`` without touching the file.
        """
        data = json.dumps(to_jsonable(obj), indent=2, sort_keys=False, allow_nan=False)
        return atomic_write(self.path / name, lambda fh: fh.write(data + "\n"), text=True)

    def read_json(self, name: str, *, decode_nonfinite: bool = False) -> Any:
        """Read ``path / name``.

        With ``decode_nonfinite=False`` (default) the values are returned as stored, so
        that ``read_json(n) == to_jsonable(obj)`` after ``write_json(n, obj)``; with
        ``True`` the strings ``"nan"``, ``"inf"``, ``"-inf"`` become floats again.
        """
        with open(self.path / name, encoding="utf-8") as fh:
            obj = json.load(fh)
        return from_jsonable(obj) if decode_nonfinite else obj

    # -- arrays -------------------------------------------------------------------------

    def save_arrays(self, arrays: Mapping[str, np.ndarray], name: str = "arrays.npz") -> Path:
        """Save named arrays with ``np.savez_compressed`` into ``path / name``, atomically.

        Object arrays are refused (they would need pickle to load).
        """
        arrays = {k: np.asarray(v) for k, v in arrays.items()}
        for k, v in arrays.items():
            if v.dtype == object:
                raise TypeError(f"array {k!r} has dtype object; store numbers or strings")
        return atomic_write(self.path / name, lambda fh: np.savez_compressed(fh, **arrays))

    def load_arrays(self, name: str = "arrays.npz") -> dict[str, np.ndarray]:
        """Load every array of ``path / name`` into memory (the file is closed after)."""
        with np.load(self.path / name, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}

    # -- checkpoints --------------------------------------------------------------------

    def _checkpoint_path(self, key: str) -> Path:
        if not _KEY_RE.match(key):
            raise ValueError(f"checkpoint key {key!r} must match {_KEY_RE.pattern}")
        return self.checkpoints / f"{key}.pkl"

    def save_checkpoint(self, key: str, obj: Any) -> Path:
        """Pickle ``obj`` (protocol 5) to ``checkpoints/KEY.pkl``, atomically.

        ``key`` is a plain file name stem (letters, digits, ``.``, ``_``, ``-``).
        """
        target = self._checkpoint_path(key)
        self.checkpoints.mkdir(exist_ok=True)
        return atomic_write(target, lambda fh: pickle.dump(obj, fh, protocol=5))

    def load_checkpoint(self, key: str) -> Any | None:
        """The object saved under ``key``, or None if there is none.

        Raises
        ------
        ConfigError
            If the checkpoint cannot be unpickled (e.g. written by an incompatible
            elbolab version); the message suggests ``--overwrite``.
        """
        target = self._checkpoint_path(key)
        if not target.is_file():
            return None
        try:
            with open(target, "rb") as fh:
                return pickle.load(fh)
        except (pickle.UnpicklingError, EOFError, AttributeError, ImportError) as exc:
            raise ConfigError(
                f"{target}: cannot read checkpoint ({exc}); rerun with --overwrite"
            ) from exc

    def clear_checkpoints(self) -> None:
        """Remove the checkpoints folder (after a run has completed)."""
        if self.checkpoints.is_dir():
            shutil.rmtree(self.checkpoints)

    # -- figures ------------------------------------------------------------------------

    def save_figure(self, fig: Figure, name: str) -> Path:
        """Save a matplotlib figure as ``figures/NAME.png`` (dpi 110), atomically; close it.

        Returns the PNG's path. ``name`` may carry the ``.png`` suffix or not.
        """
        stem = name[:-4] if name.endswith(".png") else name
        try:
            target = atomic_write(
                self.figures / f"{stem}.png",
                lambda fh: fig.savefig(fh, format="png", dpi=110, bbox_inches="tight"),
            )
        finally:
            # Figures made with pyplot stay registered (and in memory) until closed; one
            # made with matplotlib.figure.Figure (plots.new_figure) never was, and then
            # pyplot need not be imported at all.
            if "matplotlib.pyplot" in sys.modules:
                sys.modules["matplotlib.pyplot"].close(fig)
        return target

    # -- models -------------------------------------------------------------------------

    def save_model(self, name: str, model: torch.nn.Module) -> Path:
        """Save a trained model as ``models/NAME.pt`` with :func:`elbolab.models.save`.

        The file holds the model's spec and its weights on the CPU, no pickled objects,
        and is written atomically. ``name`` is a plain file name stem (letters, digits,
        ``.``, ``_``, ``-``) and may carry the ``.pt`` suffix or not. Returns the path.
        """
        from elbolab.models.saving import save  # torch and the models load on first use

        stem = name[:-3] if name.endswith(".pt") else name
        if not _KEY_RE.match(stem):
            raise ValueError(f"model name {name!r} must match {_KEY_RE.pattern}")
        self.models.mkdir(exist_ok=True)
        return save(model, self.models / f"{stem}.pt")

    def load_model(self, name: str, device: Device = "cpu") -> torch.nn.Module:
        """The model saved as ``models/NAME.pt``, rebuilt on ``device`` in eval mode
        (:func:`elbolab.models.load`; DataError if it is missing or unreadable)."""
        from elbolab.models.saving import load

        stem = name[:-3] if name.endswith(".pt") else name
        return load(self.models / f"{stem}.pt", device=device)

    # -- state --------------------------------------------------------------------------

    def is_complete(self) -> bool:
        """True once ``metrics.json`` and ``report.html`` exist: the run finished (a
        crash between the two leaves its checkpoints, and ``--resume`` ends it)."""
        return (self.path / "metrics.json").is_file() and (self.path / "report.html").is_file()
