"""The ``zoo`` study's numbers: the models' results joined into ``metrics.json`` with their
labels and the published values (:func:`collect`); the claims are in :mod:`.claims`."""

from __future__ import annotations

from .. import vae_runs
from .published import PUBLISHED


def collect(models: dict[str, vae_runs.ModelSpec], data: dict, zoo: dict, timings: dict) -> dict:
    """metrics.json: the data, one row of :func:`~elbolab.studies.vae_runs.evaluate` per
    model under ``"zoo"`` (with its label, its test KL as ``"kl"`` and the published
    NLL where there is one), and the timings."""
    for name, r in zoo.items():
        r["kl"] = r["test_kl"]
        r["label"] = models[name].label
        if name in PUBLISHED:
            ref = PUBLISHED[name]
            r["published_test_nll"] = ref["nll"]
            r["published_setting"] = (
                f"{ref['source']}; binarization: {ref['binarization']}; "
                f"estimator: {ref['estimator']}"
            )
    return {"data": vae_runs.data_summary(data), "zoo": zoo, "timings": timings}
