"""Part 3: does the encoder matter? A linear decoder behind three encoders.

On dequantized logit-space MNIST, a linear Gaussian decoder is trained behind a linear,
a deep linear and an MLP encoder; each ELBO is compared with its own decoder's exact
log p(x) and with the pPCA maximum, the best any linear decoder can reach.
"""

from __future__ import annotations

import numpy as np
import torch

from ... import checks
from ...models import PPCA, VAE, train
from ...objectives import elbo, elbo_loss
from .config import Config

LOGIT_LAMBDA = 1e-6  # logit(lambda + (1 - 2 lambda) x), as MAF / RealNVP on MNIST


def logit_space(raw: np.ndarray, seed: int) -> np.ndarray:
    """Dequantized logit-space MNIST: logit(l + (1 - 2l) (x + u) / 256), u ~ U(0, 1).

    Values are in the logit space itself (no Jacobian back to pixel space).
    """
    u = np.random.default_rng([seed, 3]).random(raw.shape)
    x = (raw.astype(np.float64) + u) / 256.0
    p = LOGIT_LAMBDA + (1 - 2 * LOGIT_LAMBDA) * x
    return np.log(p) - np.log1p(-p)


def three_encoders(cfg: Config, y: np.ndarray, rundir) -> dict:
    """Part 3: a linear decoder behind a linear, a deep linear and an MLP encoder, on
    logit-space data y (N, 784), against the exact pPCA maximum of y."""
    q = cfg.encoder_latent
    ppca = PPCA(q).fit(y)
    yt = torch.as_tensor(y)
    out = {"ppca_log_likelihood": ppca.score(y), "encoders": {}}
    encoders = {
        "linear": ((), "identity"),
        "deep linear": (cfg.encoder_hidden, "identity"),
        "MLP (tanh)": (cfg.encoder_hidden, "tanh"),
    }
    for i, (name, (hidden, activation)) in enumerate(encoders.items()):
        model = VAE(
            784,
            q,
            hidden=hidden,
            decoder_hidden=(),
            likelihood="gaussian",
            sigma2=float(y.var(0).mean()),
            learn_sigma2=True,
            activation=activation,
            generator=cfg.seed + 10 + i,
            dtype=torch.float64,
        )
        with torch.no_grad():
            # Start the decoder's bias at the data mean (pPCA's mu), and scale the first
            # encoder layer by 1/std per pixel: logit-space pixels spread over +-14, and
            # unscaled, at lr 3e-3, the deep linear encoder diverged (ELBO -72,000).
            model.decoder[-1].bias.copy_(yt.mean(0))
            model.encoder[0].weight.div_(yt.std(0).clamp_min(1e-3))
        history = train(
            model,
            elbo_loss,
            yt,
            None,
            generator=cfg.seed + 20 + i,
            epochs=cfg.encoder_steps,
            batch_size=len(y),
            lr=cfg.encoder_lr,
            progress=False,
        )
        with torch.no_grad():
            gen = checks.torch_generator(cfg.seed + 30 + i)
            value = float(elbo(model, yt, gen, n_samples=cfg.eval_samples)["elbo"]) / len(y)
            exact = float(model.exact_log_marginal(yt).mean())
        rundir.save_model(f"part3_{name.split()[0]}_{i}", model)
        out["encoders"][name] = {
            "elbo": value,
            "exact_log_likelihood_of_decoder": exact,
            "train_seconds": history["seconds"],
        }
    return out
