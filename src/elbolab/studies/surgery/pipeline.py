"""The ``surgery`` study's computation: one VAE per latent size, trained and evaluated
by :mod:`elbolab.studies.vae_runs` (surgery terms over all training images, test ELBO
and NLL, active units)."""

from __future__ import annotations

from .. import vae_runs
from .config import Config
from .metrics import collect


def prepare(cfg: Config, data_root=None) -> dict:
    """Binarized MNIST (``n_train`` training images drawn with the study's seed)."""
    return vae_runs.load(data_root, cfg.n_train, cfg.seed)


def run(cfg: Config, data: dict, rundir) -> tuple[dict, dict]:
    """One VAE ``d{d}`` per latent size, trained and evaluated as a unit of ``rundir``;
    returns (metrics, arrays)."""
    specs = {f"d{d}": vae_runs.ModelSpec(latent=d, hidden=cfg.hidden) for d in cfg.latents}
    results, arrays, timings = vae_runs.run_all(specs, data, cfg, rundir)
    return collect(cfg, data, results, timings), arrays
