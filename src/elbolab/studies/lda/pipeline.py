"""The study's run: every restart of every K as one batch of units, then each K's model
saved and measured."""

from __future__ import annotations

from ...models import LDA
from ..lda_runs import CaviSettings, restart_histories, restart_units
from ..runner import cached_map
from .config import Config
from .inputs import has_vocab
from .measures import measure_fit
from .metrics import data_metrics, fit_metrics


def cavi_settings(cfg: Config) -> CaviSettings:
    """How each K's restarts are fitted, from the study's settings."""
    return CaviSettings(
        restarts=cfg.restarts,
        max_iter=cfg.max_iter,
        tol=cfg.tol,
        alpha=cfg.alpha,
        eta=cfg.eta,
        seed=cfg.seed,
    )


def run(cfg: Config, inputs: dict, rundir) -> tuple[dict, dict]:
    """Every restart of every K (units cached in ``rundir``), each K's merged model saved
    under ``models/`` and measured: metrics.json's fields and arrays.npz."""
    train, corpus = inputs["train"], inputs["corpus"]
    timings = {}
    # Every restart of every K at once, so that a cluster gets all of them together.
    init = inputs.get("init")
    settings = cavi_settings(cfg)
    units = {k: restart_units(settings, k, train, rundir, f"fit_K{k}", init) for k in cfg.topics}
    fits = cached_map(
        rundir,
        {key: fn for per_k_units in units.values() for key, fn in per_k_units.items()},
        timings,
        desc="LDA restarts",
    )
    per_k, arrays = {}, {}
    for k in cfg.topics:
        keys = list(units[k])
        model = LDA.merged([fits[key] for key in keys])
        # After every fit, like arrays.npz: a resumed run writes the same bytes again.
        model_file = model.save(
            rundir.models / f"lda-k{k}.npz", vocab=corpus.vocab if has_vocab(cfg) else None
        )
        history = restart_histories(model)
        per_k[str(k)] = fit_metrics(
            cfg,
            model,
            history,
            inputs,
            model_file=model_file.relative_to(rundir.path).as_posix(),
            fit_seconds=sum(timings[f"{key}_seconds"] for key in keys),
            measured=measure_fit(cfg, k, model, inputs, rundir, timings),
        )
        arrays[f"history_K{k}"] = history
        arrays[f"components_K{k}"] = model.components_
    return {"data": data_metrics(inputs), "per_k": per_k, "timings": timings}, arrays
