"""Settings of the ``linear`` study: the flat :class:`Config` (its fields are the CLI's
``--set`` keys and the ``config.json`` record) and its presets."""

from __future__ import annotations

from dataclasses import dataclass

from ... import checks
from ...errors import ConfigError


@dataclass(frozen=True)
class Config:
    """Settings of the ``linear`` study (the parts are listed in the package docstring).

    n_data : MNIST training images used in parts 1-3 (the first ones).
    latent : latent size of part 1.
    lbfgs_iter : L-BFGS iterations at most for every analytic-ELBO fit (parts 1, 2, 5).
    steps, lr : Adam steps and learning rate of part 1's stochastic-ELBO fit.
    latent_sizes, fixed_sigma2 : part 2.
    encoder_latent, encoder_steps, encoder_hidden, encoder_lr : part 3 (full-batch Adam).
    deep_n_train, deep_n_eval, deep_latent, deep_hidden, deep_epochs : part 4.
    sigma2_inits : initial (or fixed) observation variances of part 4.
    n_inits, inits_latent : part 5, random starts of the linear VAE (latent size
        inits_latent, sigma^2 learned) and of the deep VAE (deep_init_epochs epochs,
        sigma^2 learned from 1).
    surgery_latent, surgery_samples : part 6, ELBO surgery of the pPCA posterior with
        that latent size on the deep_n_train images, samples per datum.
    device : where part 4's deep VAEs train: auto (CUDA when available), cpu, cuda or
        cuda:N (parts 1-3, small float64 problems, run on the CPU).
    """

    n_data: int = 1000
    latent: int = 200
    lbfgs_iter: int = 1000
    steps: int = 5000
    lr: float = 3e-3
    latent_sizes: tuple[int, ...] = (10, 50, 200)
    fixed_sigma2: float = 0.05
    encoder_latent: int = 64
    encoder_steps: int = 1500
    encoder_hidden: tuple[int, ...] = (512, 256)
    encoder_lr: float = 1e-3
    deep_n_train: int = 10000
    deep_n_eval: int = 2000
    deep_latent: int = 32
    deep_hidden: tuple[int, ...] = (512, 256)
    deep_epochs: int = 8
    sigma2_inits: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0, 30.0)
    n_inits: int = 10
    inits_latent: int = 50
    deep_init_epochs: int = 1
    surgery_latent: int = 20
    surgery_samples: int = 1
    batch_size: int = 100
    eval_samples: int = 100
    device: str = "auto"
    seed: int = 0

    def validate(self) -> None:
        counts = (
            "n_data",
            "latent",
            "lbfgs_iter",
            "steps",
            "encoder_latent",
            "encoder_steps",
            "deep_n_train",
            "deep_n_eval",
            "deep_latent",
            "deep_epochs",
            "batch_size",
            "eval_samples",
            "inits_latent",
            "deep_init_epochs",
            "surgery_latent",
            "surgery_samples",
        )
        for name in counts:
            checks.integer(getattr(self, name), name, 1)
        for name in ("lr", "encoder_lr", "fixed_sigma2"):
            checks.positive(getattr(self, name), name)
        sigma2_inits = checks.list_of(self.sigma2_inits, "sigma2_inits", "numbers > 0")
        if not sigma2_inits:
            raise ConfigError("sigma2_inits must be a non-empty list of numbers > 0, got none")
        for sigma2 in sigma2_inits:
            checks.positive(sigma2, "sigma2_inits")
        checks.integer(self.n_inits, "n_inits", 2)  # a spread needs two
        checks.integers(self.latent_sizes, "latent_sizes", 1, allow_empty=True)
        latents = (self.latent, *self.latent_sizes, self.encoder_latent, self.inits_latent)
        if self.n_data < 2 or max((*latents, self.surgery_latent)) >= 784:
            raise ConfigError("latent sizes must be below 784 and n_data >= 2")
        if self.deep_n_train + self.deep_n_eval > 60000:
            raise ConfigError("deep_n_train + deep_n_eval must be at most 60000")
        checks.device(self.device, "device")


PRESETS = {
    "smoke": Config(
        n_data=100,
        latent=10,
        steps=20,
        latent_sizes=(5, 10),
        encoder_latent=5,
        encoder_steps=10,
        encoder_hidden=(32,),
        deep_n_train=200,
        deep_n_eval=100,
        deep_latent=4,
        deep_hidden=(32,),
        deep_epochs=1,
        sigma2_inits=(0.01, 1.0),
        eval_samples=5,
        lbfgs_iter=100,
        n_inits=3,
        inits_latent=5,
        surgery_latent=4,
    ),
    # The tour (`elbolab demo`): 500 images, q = 50 instead of 200, shorter Adam and deep
    # training.
    "tour": Config(
        n_data=500,
        latent=50,
        lbfgs_iter=300,
        steps=300,
        latent_sizes=(10, 50),
        encoder_latent=16,
        encoder_steps=150,
        encoder_hidden=(128,),
        deep_n_train=2000,
        deep_n_eval=500,
        deep_latent=16,
        deep_hidden=(256,),
        deep_epochs=3,
        sigma2_inits=(0.001, 0.1, 10.0),
        n_inits=5,
        inits_latent=20,
        surgery_latent=10,
        eval_samples=20,
    ),
    "default": Config(),
    # Longer runs on more data (hours on 2 cores). Lucas et al.'s (2019) own settings for
    # the deep VAEs of their section 6 (architecture, optimizer, epochs) are not in a
    # source we could read, so part 4 keeps this study's architecture and Adam (lr 1e-3,
    # batch 100) and trains for 100 epochs.
    "paper": Config(
        steps=50000,
        latent_sizes=(10, 25, 50, 100, 200, 300),
        lbfgs_iter=10000,
        encoder_steps=10000,
        deep_n_train=50000,
        deep_n_eval=10000,
        deep_latent=64,
        deep_epochs=100,
        sigma2_inits=(1e-4, 1e-3, 1e-2, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0),
    ),
}
