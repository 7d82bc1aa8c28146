"""The ``surgery`` study's numbers: the models' results joined into ``metrics.json``
(:func:`collect`); the claims are in :mod:`.claims`."""

from __future__ import annotations

from .. import vae_runs
from .config import Config


def collect(cfg: Config, data: dict, results: dict, timings: dict) -> dict:
    """metrics.json: the data, one row of :func:`~elbolab.studies.vae_runs.evaluate` per
    latent size (keyed by d) under ``"surgery"``, and the timings."""
    return {
        "data": vae_runs.data_summary(data),
        "surgery": {str(d): results[f"d{d}"] for d in cfg.latents},
        "timings": timings,
    }
