"""Settings of the ``zoo`` study and its presets."""

from __future__ import annotations

from dataclasses import dataclass

from ... import checks
from .. import vae_runs


@dataclass(frozen=True)
class Config(vae_runs.TrainingConfig):
    """Settings of the ``zoo`` study (training settings: ``vae_runs.TrainingConfig``).

    latent, hidden : latent size d and encoder hidden widths (decoder mirrors them).
    betas : beta-VAE weights besides beta = 1 (the VAE).
    iwae_k : importance samples of the IWAE objective.
    iwae_epochs : IWAE epochs; with ``iwae_from_vae`` they continue from the trained VAE.
    n_pseudo : VampPrior pseudo-inputs K.
    """

    latent: int = 20
    hidden: tuple[int, ...] = (200, 200)
    betas: tuple[float, ...] = (0.5, 2.0, 4.0)
    iwae_k: int = 50
    iwae_epochs: int = 5
    iwae_from_vae: bool = True
    n_pseudo: int = 500

    def validate(self) -> None:
        super().validate()
        for name in ("latent", "iwae_k", "iwae_epochs", "n_pseudo"):
            checks.integer(getattr(self, name), name, 1)
        for beta in checks.list_of(self.betas, "betas", "numbers > 0"):
            checks.positive(beta, "betas")


PRESETS = {
    "smoke": Config(
        latent=3,
        hidden=(32,),
        betas=(2.0,),
        iwae_k=4,
        iwae_epochs=1,
        n_pseudo=10,
        epochs=1,
        nll_k=20,
        nll_n=50,
        n_train=500,
    ),
    # The tour (`elbolab demo`): 10,000 training images, 5 epochs, one beta.
    "tour": Config(
        latent=10,
        betas=(2.0,),
        iwae_k=10,
        iwae_epochs=1,
        n_pseudo=100,
        epochs=5,
        nll_k=300,
        nll_n=300,
        n_train=10000,
    ),
    "default": Config(),
    # Tomczak & Welling's (2018) recipe for every model, from their code
    # (github.com/jmtomczak/vae_vampprior, experiment.py and utils/training.py): 40
    # latents, two hidden layers of 300 units (theirs are gated; ours tanh), Adam with
    # lr 5e-4 (theirs normalizes each gradient first), batch 100, at most 2000 epochs,
    # early stopping after 50 epochs without improvement, KL warm-up over 100 epochs,
    # K = 500 pseudo-inputs, test NLL with 5000 importance samples on all 10,000 test
    # images. The IWAE (k = 50) trains from scratch on the same recipe (Burda et al.
    # used 3280 epochs with a decaying lr, batch 20, and no warm-up).
    "paper": Config(
        latent=40,
        hidden=(300, 300),
        lr=5e-4,
        batch_size=100,
        epochs=2000,
        patience=50,
        kl_warmup=100,
        n_pseudo=500,
        iwae_k=50,
        iwae_epochs=2000,
        iwae_from_vae=False,
        nll_k=5000,
        nll_n=10000,
    ),
}
