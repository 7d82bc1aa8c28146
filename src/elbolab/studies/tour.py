"""The tour that ``elbolab demo`` runs: every study at its ``tour`` preset, then one index.

Each study's ``tour`` preset is small but meaningful: real data, every part of the study,
sizes chosen so that the six runs take a few minutes on 2 CPU cores. The index page
(``index.html`` beside the six run directories) shows, per study, its question, its
headline figure, its claims table and a link to its full report.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from ..report import Report, to_jsonable
from . import STUDIES, claims, resolved, run_study

# Study order on the index and in the run: LDA's two studies, then the VAE studies.
ORDER = ("lda", "landscape", "surgery", "zoo", "linear", "fkl")

# The figure that answers each study's question at a glance.
HEADLINE = {
    "lda": ("elbo_curves.png", "ELBO per token along CAVI for every restart and topic count."),
    "landscape": (
        "elbo_along_paths.png",
        "ELBO along the straight line and the optimized paths between two CAVI maxima.",
    ),
    "surgery": (
        "surgery_terms.png",
        "The KL term split into index-code mutual information and marginal KL, per latent size.",
    ),
    "zoo": ("zoo.png", "ELBO, log-likelihood, KL and active units across the VAE zoo."),
    "linear": (
        "linear_vs_ppca.png",
        "The linear VAE's ELBO against the exact pPCA log-likelihood.",
    ),
    "fkl": ("width.png", "Gap to the exact posterior against network width."),
}

# Which dataset each study reads (for the check before anything runs).
DATASET = {
    "lda": "ap",
    "landscape": "ap",
    "surgery": "binarized_mnist",
    "zoo": "binarized_mnist",
    "linear": "mnist",
    "fkl": "mnist",
}


def run_tour(
    out: str | Path,
    *,
    data_root: str | Path | None = None,
    preset: str = "tour",
    scheduler: str = "auto",
    say: Callable[[str], None] = print,
) -> Path:
    """Run every study's ``preset`` into ``out/<study>`` and write ``out/index.html``.

    A run already finished there with the same settings is kept (only re-rendered); an
    unfinished one continues from its checkpoints; one with other settings (an older
    tour) is replaced, since ``out`` is the tour's own folder.

    Parameters
    ----------
    out : path
        The tour's folder.
    data_root : path, optional
        Where the datasets are (see :func:`elbolab.data.find_root`).
    preset : str
        The preset of every study (``tour``; the tests use ``smoke``).
    scheduler : str
        Where independent units run (see ``elbolab run --scheduler``).
    say : callable
        Receives one line per finished study.

    Returns
    -------
    Path
        The index page.
    """
    out = Path(out).expanduser()
    rundirs = {}
    for name in ORDER:
        study = STUDIES[name]
        cfg = study.PRESETS[preset]
        rundir = out / name
        command = f"elbolab run {name} --preset {preset} --out {shlex.quote(str(rundir))} --resume"
        started = time.perf_counter()
        metrics = run_study(
            study,
            cfg,
            rundir,
            data_root=data_root,
            resume=True,
            overwrite=_holds_other_run(rundir, name, cfg),
            command=command,
            scheduler=scheduler,
        )
        verdicts = _verdict_counts(metrics)
        counts = ", ".join(f"{verdicts[v]} {v}" for v in claims.VERDICTS if verdicts[v])
        say(f"{name:10s} {time.perf_counter() - started:6.1f} s  claims: {counts or 'none'}")
        rundirs[name] = rundir
    return write_index(out, rundirs)


def _holds_other_run(rundir: Path, name: str, cfg) -> bool:
    """True when ``rundir`` holds a run of ``name`` with settings other than ``cfg``."""
    path = rundir / "config.json"
    if not path.is_file():
        return False
    saved = json.loads(path.read_text())
    wanted = to_jsonable(dataclasses.asdict(resolved(cfg)))
    return saved.get("study") == name and saved.get("config") != wanted


def _verdict_counts(metrics: dict) -> Counter:
    """How many of a run's claims got each verdict."""
    return Counter(row["verdict"] for row in metrics.get("claims", []))


def write_index(out: str | Path, rundirs: dict[str, Path]) -> Path:
    """Write ``out/index.html``: for every finished run in ``rundirs`` (study name to run
    directory), its question, headline figure, claims table and a link to its report."""
    out = Path(out)
    rep = Report(
        "elbolab tour",
        subtitle="Every study at a small size on the real data: what it asks, what it "
        "found, and whether the papers' claims hold at this budget.",
    )
    runs = {name: json.loads((d / "metrics.json").read_text()) for name, d in rundirs.items()}
    summary = []
    for name, metrics in runs.items():
        verdicts = _verdict_counts(metrics)
        summary.append(
            [
                name,
                STUDIES[name].DESCRIPTION,
                *(verdicts[v] for v in claims.VERDICTS),
                metrics["timings"]["total_seconds"],
            ]
        )
    rep.table(
        ["study", "question", *claims.VERDICTS, "seconds"],
        summary,
        caption="The studies and their claims' verdicts",
    )
    for name, rundir in rundirs.items():
        metrics = runs[name]
        rep.heading(f"{name}: {STUDIES[name].DESCRIPTION}")
        figure, caption = HEADLINE[name]
        rep.figure(rundir / "figures" / figure, caption)
        rows = metrics.get("claims", [])
        if rows:
            rep.table(
                ["claim", "measured", "verdict"],
                [[r["claim"], r["measured"], r["verdict"]] for r in rows],
                caption="Claims (references and reasons are in the report)",
            )
        report = Path(os.path.relpath(rundir / "report.html", out)).as_posix()
        rep.link(report, f"The full {name} report")
    return rep.write(out / "index.html")
