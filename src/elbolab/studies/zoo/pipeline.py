"""The ``zoo`` study's computation: every model of the line-up trained and evaluated by
:mod:`elbolab.studies.vae_runs` (test ELBO and NLL, surgery terms, active units)."""

from __future__ import annotations

from .. import vae_runs
from .config import Config
from .lineup import specs
from .metrics import collect


def prepare(cfg: Config, data_root=None) -> dict:
    """Binarized MNIST (``n_train`` training images drawn with the study's seed)."""
    return vae_runs.load(data_root, cfg.n_train, cfg.seed)


def run(cfg: Config, data: dict, rundir) -> tuple[dict, dict]:
    """Every model of the line-up trained and evaluated as a unit of ``rundir`` (the IWAE
    after the VAE when it starts from it); returns (metrics, arrays)."""
    models = specs(cfg)
    iwae = f"iwae_k{cfg.iwae_k}"
    warm = {iwae: "vae"} if cfg.iwae_from_vae else {}
    zoo, arrays, timings = vae_runs.run_all(models, data, cfg, rundir, warm_start=warm)
    return collect(models, data, zoo, timings), arrays
