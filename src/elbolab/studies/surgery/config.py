"""Settings of the ``surgery`` study and its presets."""

from __future__ import annotations

from dataclasses import dataclass

from ... import checks
from .. import vae_runs


@dataclass(frozen=True)
class Config(vae_runs.TrainingConfig):
    """Settings of the ``surgery`` study (training settings: ``vae_runs.TrainingConfig``).

    latents : latent sizes d, one VAE each.
    hidden : encoder hidden widths (the decoder mirrors them).
    """

    latents: tuple[int, ...] = (2, 10, 20)
    hidden: tuple[int, ...] = (200, 200)

    def validate(self) -> None:
        super().validate()
        checks.integers(self.latents, "latents", 1)


PRESETS = {
    "smoke": Config(latents=(2, 3), hidden=(32,), epochs=1, nll_k=20, nll_n=50, n_train=500),
    # The tour (`elbolab demo`): 10,000 training images, 6 epochs.
    "tour": Config(epochs=6, nll_k=300, nll_n=300, n_train=10000),
    "default": Config(),
    # Hoffman & Johnson (2016) do not give their architecture or training in a source we
    # could read. Hidden layers of 500 units follow Kingma & Welling (2014, section 5:
    # 500 hidden units for MNIST); training runs to convergence with Tomczak & Welling's
    # recipe (github.com/jmtomczak/vae_vampprior, experiment.py: Adam, lr 5e-4, batch
    # 100, at most 2000 epochs, early stopping after 50 without improvement), without
    # KL warm-up, since the study measures the plain ELBO's KL terms; the NLL with
    # k = 5000 on all 10,000 test images.
    "paper": Config(
        hidden=(500, 500),
        epochs=2000,
        patience=50,
        lr=5e-4,
        batch_size=100,
        nll_k=5000,
        nll_n=10000,
    ),
}
