"""The ``zoo`` study's models: one architecture, trained on each objective and prior."""

from __future__ import annotations

from ...objectives import ELBOObjective, IWAEObjective
from .. import vae_runs
from .config import Config


def specs(cfg: Config) -> dict[str, vae_runs.ModelSpec]:
    """Model name -> spec for :mod:`elbolab.studies.vae_runs`, in training order."""
    nets = {"latent": cfg.latent, "hidden": cfg.hidden}
    out = {"vae": vae_runs.ModelSpec(**nets, label="VAE")}
    for beta in cfg.betas:
        out[f"beta_{beta:g}"] = vae_runs.ModelSpec(
            **nets, objective=ELBOObjective(beta=beta), label=f"beta-VAE (beta = {beta:g})"
        )
    out[f"iwae_k{cfg.iwae_k}"] = vae_runs.ModelSpec(
        **nets,
        objective=IWAEObjective(k=cfg.iwae_k, dreg=True),
        epochs=cfg.iwae_epochs,
        label=f"IWAE (k = {cfg.iwae_k})" + (", from the VAE" if cfg.iwae_from_vae else ""),
    )
    out["vamp"] = vae_runs.ModelSpec(
        **nets, prior="vamp", n_pseudo=cfg.n_pseudo, label=f"VampPrior (K = {cfg.n_pseudo})"
    )
    return out
