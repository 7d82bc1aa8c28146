"""The ``linear`` study's data and its run: every part, and every deep VAE of parts 4
and 5, is an independent unit, dispatched and checkpointed through the run directory."""

from __future__ import annotations

from functools import partial

import numpy as np
import torch

from ...data import load_mnist
from ..runner import cached_map
from .collapse import collapse_at_sigma2
from .config import Config
from .encoders import logit_space, three_encoders
from .metrics import collect
from .ppca_maximum import against_latent_size, against_ppca
from .ppca_surgery import ppca_surgery
from .spurious_maxima import deep_random_start, linear_random_starts


def prepare(cfg: Config, data_root=None) -> dict:
    """Load MNIST; pixels scaled to [0, 1] (float64) and the raw uint8 for dequantizing."""
    images, _ = load_mnist(data_root, split="train")
    raw = images.reshape(len(images), -1)
    return {"raw": raw, "pixels": raw.astype(np.float64) / 255.0}


def run(cfg: Config, inputs: dict, rundir) -> tuple[dict, dict]:
    """Run every unit (checkpoint keys ``part1`` .. ``part6``, kept from the first
    version so that older runs resume) and collect metrics and arrays."""
    pixels = inputs["pixels"]
    x = pixels[: cfg.n_data]
    timings = {}

    order = np.random.default_rng([cfg.seed, 4]).permutation(len(pixels))
    train_idx = order[: cfg.deep_n_train]
    eval_idx = order[cfg.deep_n_train : cfg.deep_n_train + cfg.deep_n_eval]
    x_train = torch.as_tensor(pixels[train_idx], dtype=torch.float32)
    x_eval = torch.as_tensor(pixels[eval_idx], dtype=torch.float32)
    settings = [(s, learned) for learned in (True, False) for s in cfg.sigma2_inits]
    y = logit_space(inputs["raw"][: cfg.n_data], cfg.seed)
    units = {
        "part1": partial(against_ppca, cfg, x, rundir),
        "part2": partial(against_latent_size, cfg, x, rundir),
        "part3": partial(three_encoders, cfg, y, rundir),
    }
    for i, (s, learned) in enumerate(settings):
        units[f"part4_{i}"] = partial(
            collapse_at_sigma2, cfg, x_train, x_eval, s, learned, i, rundir
        )
    units["part5_linear"] = partial(linear_random_starts, cfg, x)
    for i in range(cfg.n_inits):
        units[f"part5_deep_{i}"] = partial(deep_random_start, cfg, x_train, x_eval, i)
    units["part6"] = partial(ppca_surgery, cfg, x_train)
    done = cached_map(rundir, units, timings, desc="linear units")
    return collect(cfg, done, len(x), timings)
