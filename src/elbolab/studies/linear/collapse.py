"""Part 4: does the observation noise sigma^2 control posterior collapse in deep VAEs?

Deep Gaussian VAEs are trained with sigma^2 learned from, or fixed at, each of
``sigma2_inits``; on held-out images each reports its ELBO, its active units and its
(epsilon, delta)-collapse curve (Lucas et al. 2019). :func:`train_deep_vae` is also the
deep VAE of part 5's random starts (:mod:`.spurious_maxima`).
"""

from __future__ import annotations

import numpy as np
import torch

from ... import checks
from ...diagnostics import active_units, collapse_curve, collapsed_fraction, kl_per_dimension
from ...models import VAE, train
from ...objectives import elbo, elbo_loss
from .config import Config

EPSILONS = np.logspace(-4, 1, 26)  # the collapse curve's thresholds (nats)


def train_deep_vae(
    cfg: Config,
    x_train: torch.Tensor,
    x_eval: torch.Tensor,
    sigma2: float,
    learned: bool,
    seed: int,
    epochs: int,
    validate: bool,
    progress: bool,
) -> tuple[VAE, dict, dict, torch.Tensor]:
    """Build, train and evaluate a deep Gaussian VAE (parts 4 and 5): returns the model,
    the training history, the held-out ELBO terms (10 samples) and x_eval on the
    device. ``seed`` + 0, 100, 200 seed the weights, the training and the evaluation."""
    # Resolved in the unit: on a cluster each worker picks its own GPU.
    device = checks.device(cfg.device, "device")
    x_train, x_eval = x_train.to(device), x_eval.to(device)
    model = VAE(
        784,
        cfg.deep_latent,
        hidden=cfg.deep_hidden,
        likelihood="gaussian",
        sigma2=sigma2,
        learn_sigma2=learned,
        generator=seed,
    ).to(device)
    history = train(
        model,
        elbo_loss,
        x_train,
        x_eval if validate else None,
        generator=seed + 100,
        epochs=epochs,
        batch_size=cfg.batch_size,
        lr=1e-3,
        progress=progress,
    )
    with torch.no_grad():
        gen = checks.torch_generator(seed + 200, device=device)
        terms = elbo(model, x_eval, gen, n_samples=10)
    return model, history, terms, x_eval


def collapse_at_sigma2(
    cfg: Config, x_train, x_eval, sigma2: float, learned: bool, index: int, rundir
) -> dict:
    """Part 4, one unit: a deep Gaussian VAE with sigma^2 starting at (or fixed to)
    ``sigma2``: held-out ELBO, active units and the (epsilon, delta)-collapse curve."""
    model, history, terms, x_eval = train_deep_vae(
        cfg,
        x_train,
        x_eval,
        sigma2,
        learned,
        cfg.seed + 100 + index,
        cfg.deep_epochs,
        validate=True,
        progress=True,
    )
    q = terms["posterior"]  # q(z | x_eval), as the held-out ELBO encoded it
    mu, std = q.loc.double().cpu(), q.scale.double().cpu()
    rundir.save_model(f"part4_{index}", model)
    kl = kl_per_dimension(mu, std)
    units = active_units(mu)
    return {
        "sigma2_init": sigma2,
        "sigma2_learned": learned,
        "sigma2_final": float(model.sigma2),
        "elbo": float(terms["elbo"]) / len(x_eval),
        "reconstruction": float(terms["reconstruction"]) / len(x_eval),
        "kl": float(terms["kl"]) / len(x_eval),
        "active_units": int(units["count"]),
        "collapsed_fraction": collapsed_fraction(kl, epsilon=0.01, delta=0.01),
        "collapse_curve": np.asarray(collapse_curve(kl, EPSILONS, delta=0.01)["fraction"]),
        "train_seconds": history["seconds"],
        "epochs": history["epochs_run"],
    }
