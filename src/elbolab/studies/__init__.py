"""The study registry and the one way a study is run, resumed and re-rendered.

A study is a module with

- ``NAME`` and ``DESCRIPTION`` (one line),
- ``Config``: a frozen dataclass with a ``seed`` field, and ``PRESETS``: a dict with
  ``smoke`` (seconds, for tests), ``default`` (minutes on 2 CPU cores) and ``paper``
  (the published setting),
- ``prepare(cfg, data_root) -> inputs``: loads and checks the data; runs before the
  run directory is touched, so bad input writes nothing,
- ``run(cfg, inputs, rundir) -> (metrics, arrays)``: the computation, checkpointing
  its long loops through ``rundir``,
- ``render(rundir) -> Report``: figures and report from the saved results only,
- ``claims(cfg, metrics) -> list[Claim]``: the papers' claims against this run's
  numbers (:mod:`elbolab.studies.claims`); stored in ``metrics.json`` under ``claims``
  and shown as the table that opens the report.

:func:`run_study` writes ``config.json`` first, then ``arrays.npz``, then
``metrics.json`` (with version, seed and timings) and last ``report.html``; every
write is atomic, so a directory without ``metrics.json`` is an unfinished run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import shutil
import time
import types
import typing
from pathlib import Path
from typing import TYPE_CHECKING

from .. import __version__, checks
from ..errors import ConfigError, ElbolabError
from . import claims, fkl, landscape, lda, linear, surgery, zoo

if TYPE_CHECKING:
    import os

    from ..report import RunDir

STUDIES: dict[str, types.ModuleType] = {
    m.NAME: m for m in (lda, landscape, linear, surgery, zoo, fkl)
}


def get(name: str) -> types.ModuleType:
    """The study module called ``name``; ConfigError listing the known ones otherwise."""
    try:
        return STUDIES[name]
    except KeyError:
        raise ConfigError(
            f"unknown study {name!r}; known studies: {', '.join(sorted(STUDIES))}"
        ) from None


def preset(study: types.ModuleType, name: str) -> typing.Any:
    """The study's Config for preset ``name``."""
    try:
        return study.PRESETS[name]
    except KeyError:
        raise ConfigError(
            f"study {study.NAME!r} has no preset {name!r}; presets: {', '.join(study.PRESETS)}"
        ) from None


def apply_overrides(cfg: typing.Any, assignments: list[str]) -> typing.Any:
    """Return ``cfg`` with ``key=value`` assignments applied, parsed by the field's type.

    Tuples are written comma-separated (``topics=5,10,20``); ``None`` clears an
    optional field. Unknown keys and unparsable values raise ConfigError naming them.
    """
    fields = {f.name: f for f in dataclasses.fields(cfg)}
    hints = typing.get_type_hints(type(cfg))
    changes = {}
    for item in assignments:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        if key not in fields:
            raise ConfigError(
                f"unknown setting {key!r} for this study; settings: {', '.join(fields)}"
            )
        changes[key] = _parse(hints[key], text.strip(), key)
    return dataclasses.replace(cfg, **changes)


def with_device(study: types.ModuleType, cfg: typing.Any, device: str) -> typing.Any:
    """``cfg`` with its ``device`` setting replaced (the CLI's ``--device``).

    A study without one (its kernels are compiled for the CPU) accepts ``auto`` and
    ``cpu``; a GPU there is a ConfigError, not a silent CPU run.
    """
    resolved = checks.device(device, "--device")
    if any(f.name == "device" for f in dataclasses.fields(cfg)):
        return dataclasses.replace(cfg, device=device)
    if resolved.type != "cpu" and device.strip().lower() != "auto":
        raise ConfigError(
            f"study {study.NAME!r} computes on the CPU (numba kernels); "
            f"--device {device} does not apply (use auto or cpu)"
        )
    return cfg


def _parse(hint, text: str, key: str):
    args = typing.get_args(hint)
    if type(None) in args:  # Optional[...]
        if text.lower() == "none":
            return None
        hint = next(a for a in args if a is not type(None))
        args = typing.get_args(hint)
    try:
        if typing.get_origin(hint) is tuple:
            return tuple(_parse(args[0], part.strip(), key) for part in text.split(",") if part)
        if hint is bool:
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if hint in (int, float, str):
            value = hint(text)
            if hint is float and not math.isfinite(value):
                # No setting means anything at NaN or infinity; it would only surface
                # later as NaN results.
                raise ConfigError(f"setting {key!r} must be a finite number, got {text!r}")
            return value
    except ValueError:
        raise ConfigError(
            f"setting {key!r} expects {getattr(hint, '__name__', hint)}, got {text!r}"
        ) from None
    raise ConfigError(f"setting {key!r} cannot be set from the command line")


def resolved(cfg: typing.Any) -> typing.Any:
    """``cfg`` validated, with its device (if it has one) resolved: what ``config.json``
    records. "auto" becomes cpu or cuda, so a resume on a machine where it means another
    device is refused rather than continued there."""
    if hasattr(cfg, "validate"):
        cfg.validate()
    if any(f.name == "device" for f in dataclasses.fields(cfg)):
        cfg = dataclasses.replace(cfg, device=str(checks.device(cfg.device, "device")))
    return cfg


def run_study(
    study: types.ModuleType,
    cfg: typing.Any,
    out: str | os.PathLike,
    *,
    data_root: str | os.PathLike | None = None,
    resume: bool = False,
    overwrite: bool = False,
    command: str = "",
    scheduler: str | None = None,
) -> dict:
    """Run ``study`` with ``cfg`` into run directory ``out``; returns the metrics dict.

    With ``resume`` an unfinished run continues from its checkpoints (and a finished
    one is only re-rendered); its saved config must equal ``cfg``. ``scheduler`` says
    where independent units run (:func:`elbolab.cluster.make_dispatcher`, through
    :mod:`elbolab.studies.runner`; default in
    this process, the CLI's default is ``auto``); the results do not depend on it.
    """
    from ..cluster import make_dispatcher
    from .runner import dispatching

    cfg = resolved(cfg)
    on_gpu = getattr(cfg, "device", "cpu").startswith("cuda")
    dispatcher = make_dispatcher(scheduler, on_gpu=on_gpu)
    inputs = study.prepare(cfg, data_root)
    out = Path(out).expanduser()
    new = not out.exists() or (out.is_dir() and not any(out.iterdir()))
    try:
        with contextlib.closing(dispatcher), dispatching(dispatcher):
            return _run_in(study, cfg, inputs, out, resume, overwrite, command, dispatcher)
    except ElbolabError:
        # Bad input found mid-run (a setting that drives a path to NaN, say) leaves no
        # half-written directory behind; an interrupted run keeps its checkpoints.
        if new and out.is_dir():
            shutil.rmtree(out)
        raise


def _run_in(study, cfg, inputs, out, resume, overwrite, command, dispatcher) -> dict:
    from ..report import RunDir, to_jsonable

    record = {"study": study.NAME, "config": dataclasses.asdict(cfg), "command": command}
    rundir = RunDir(out, resume=resume, overwrite=overwrite)
    if resume and (rundir.path / "config.json").exists():
        saved = rundir.read_json("config.json")
        if saved.get("study") != study.NAME or saved.get("config") != to_jsonable(record["config"]):
            raise ConfigError(
                f"{rundir.path} holds a run with a different study or config; "
                "resume it with the same settings or use --overwrite"
            )
        if rundir.is_complete():
            render(rundir)
            return rundir.read_json("metrics.json")
    rundir.write_json("config.json", record)

    started = time.perf_counter()
    metrics, arrays = study.run(cfg, inputs, rundir)
    claim_rows = claims.as_rows(study.claims(cfg, metrics))
    metrics = {
        "study": study.NAME,
        "version": __version__,
        "seed": getattr(cfg, "seed", None),
        "scheduler": dispatcher.description,
        # Studies without a device setting compute on the CPU.
        "device": getattr(cfg, "device", "cpu"),
        "timings": {"total_seconds": time.perf_counter() - started, **metrics.pop("timings", {})},
        **metrics,
        "claims": claim_rows,
    }
    rundir.save_arrays(arrays)
    rundir.write_json("metrics.json", metrics)
    render(rundir)
    rundir.clear_checkpoints()
    return metrics


def render(rundir: RunDir | str | os.PathLike) -> Path:
    """(Re)write ``report.html`` of a finished run from its saved files only."""
    from ..report import RunDir

    if not isinstance(rundir, RunDir):
        rundir = RunDir(rundir, resume=True)
    if not (rundir.path / "metrics.json").is_file():
        raise ConfigError(f"{rundir.path} has no metrics.json: the run has not finished")
    record = rundir.read_json("config.json")
    metrics = rundir.read_json("metrics.json")
    report = get(record["study"]).render(rundir)
    claims.add_table(report, metrics.get("claims", []))  # [] for runs made before claims
    # Every report ends with what produced it.
    report.heading("Settings")
    report.code(record.get("command") or "")
    report.metrics(record["config"], caption="Configuration")
    report.metrics(
        {
            "version": metrics["version"],
            "seed": metrics["seed"],
            "device": metrics.get("device", "cpu"),  # runs before devices were recorded
            **metrics["timings"],
        },
        caption="Version, seed, device and timings (seconds)",
    )
    path = rundir.path / "report.html"
    report.write(path)
    return path
