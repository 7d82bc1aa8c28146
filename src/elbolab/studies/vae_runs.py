"""Training and evaluating one VAE on binarized MNIST: shared by the ``surgery`` and ``zoo``
studies so that both report the same numbers the same way.

Every number is in nats per datum. The evaluation of a trained model gives

- on the test set: the ELBO (analytic KL for the standard-normal prior, one-sample Monte
  Carlo otherwise), its reconstruction and KL terms, and the importance-sampled
  log-likelihood with ``nll_k`` samples on ``nll_n`` test images drawn at random (its
  negative is the test NLL papers report) with the ELBO of the same images;
- on the whole training set (the N the mutual information refers to): the ELBO-surgery
  terms with the aggregate posterior q(z) over all N points, and the active units.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from ..data import load_binarized_mnist
from ..diagnostics import (
    active_units,
    collapsed_fraction,
    kl_per_dimension,
    log_likelihood,
    surgery_model,
)
from ..errors import ConfigError
from ..models import VAE
from ..models.trainer import train
from ..objectives import elbo, elbo_loss, iwae_loss


@dataclass(frozen=True)
class TrainingConfig:
    """Training and evaluation settings the ``surgery`` and ``zoo`` configs share.

    epochs, batch_size, lr : Adam with early stopping on the validation loss.
    nll_k, nll_n : importance samples per image and test images for the test NLL.
    n_train : use a seeded random subset of n_train training images (None = all 50,000).
    """

    epochs: int = 50
    batch_size: int = 100
    lr: float = 1e-3
    nll_k: int = 5000
    nll_n: int = 500
    n_train: int | None = None
    seed: int = 0

    def validate(self) -> None:
        for name in ("epochs", "batch_size", "nll_k", "nll_n"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if self.n_train is not None and self.n_train < 2:
            raise ConfigError(f"n_train must be >= 2, got {self.n_train}")


def load(data_root=None, n_train: int | None = None, seed: int = 0) -> dict:
    """The fixed binarization (Larochelle & Murray 2011) as float32 tensors.

    ``n_train`` keeps a seeded random subset of the training images (the file is sorted
    by class, so its first rows are all zeros).
    """
    data = {
        split: torch.as_tensor(load_binarized_mnist(data_root, split), dtype=torch.float32)
        for split in ("train", "valid", "test")
    }
    if n_train is not None:
        keep = torch.randperm(len(data["train"]), generator=torch.Generator().manual_seed(seed))
        data["train"] = data["train"][keep[:n_train]]
    return data


def make_model(spec: dict, seed: int) -> VAE:
    """A VAE from a spec dict (``latent``, ``hidden``, ``prior``, ``n_pseudo``)."""
    return VAE(
        784,
        spec["latent"],
        hidden=tuple(spec["hidden"]),
        likelihood="bernoulli",
        prior=spec.get("prior", "normal"),
        n_pseudo=spec.get("n_pseudo", 500),
        generator=seed,
    )


def loss_for(spec: dict):
    """``loss_fn(model, x, generator)`` of a spec: beta-ELBO or IWAE-k (DReG for the encoder)."""
    if spec.get("objective", "elbo") == "iwae":
        return functools.partial(iwae_loss, k=spec["k"], dreg=True)
    return functools.partial(elbo_loss, beta=spec.get("beta", 1.0))


def fit(
    spec: dict,
    data: dict,
    seed: int,
    epochs: int,
    batch_size: int,
    lr: float,
    checkpoint,
    init_state: dict | None = None,
) -> tuple[VAE, dict]:
    """Train one model (resuming from ``checkpoint``); early stopping on the validation loss.

    ``init_state`` starts from another model's parameters (IWAE fine-tuned from a VAE).
    """
    model = make_model(spec, seed)
    if init_state is not None:
        model.load_state_dict(init_state)
    elif spec.get("prior") == "vamp":
        model.init_pseudo_inputs(data["train"], generator=seed)
    history = train(
        model,
        loss_for(spec),
        data["train"],
        data["valid"],
        generator=seed + 1,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        patience=max(3, epochs // 5),
        checkpoint=checkpoint,
    )
    return model, history


def evaluate(
    model: VAE, data: dict, seed: int, nll_k: int, nll_n: int, surgery_samples: int = 1
) -> dict:
    """Test ELBO terms, test log-likelihood, surgery terms and active units (nats per datum)."""
    model.eval()
    test = data["test"]
    started = time.perf_counter()
    with torch.no_grad():
        sums = {"elbo": 0.0, "reconstruction": 0.0, "kl": 0.0}
        gen = torch.Generator().manual_seed(seed)
        # One sample per image: the KL is analytic for N(0, I) and a one-sample Monte
        # Carlo estimate for the VampPrior; both are unbiased and averaged over the test set.
        for i0 in range(0, len(test), 1000):
            terms = elbo(model, test[i0 : i0 + 1000], gen)
            for key in sums:
                sums[key] += float(terms[key])
    out = {f"test_{k}": v / len(test) for k, v in sums.items()}
    # The test file is sorted by class: score a seeded random subset, and the ELBO on the
    # same images, so that the two are comparable (NLL <= -ELBO image by image).
    subset = torch.randperm(len(test), generator=torch.Generator().manual_seed(seed))[:nll_n]
    with torch.no_grad():
        subset_elbo = elbo(model, test[subset], torch.Generator().manual_seed(seed + 3))
    ll = log_likelihood(model, test[subset], k=nll_k, generator=seed + 1)
    out.update(
        test_nll=-ll["mean_log_likelihood"],
        test_nll_se=ll["se_mean"],
        test_nll_se_mc=ll["se_mean_mc"],
        test_elbo_nll_subset=float(subset_elbo["elbo"]) / len(subset),
        nll_k=nll_k,
        nll_n=len(subset),
    )
    s = surgery_model(model, data["train"], generator=seed + 2, n_samples=surgery_samples)
    mu, std = s["mu"], s["std"]
    kl_dims = kl_per_dimension(mu, std)
    out.update(
        reconstruction=s["average_reconstruction"],
        reconstruction_se=s["se_average_reconstruction"],
        mutual_information=s["mutual_info"],
        mutual_information_se=s["se_mutual_info"],
        marginal_kl=s["marginal_kl"],
        marginal_kl_se=s["se_marginal_kl"],
        average_kl=s["average_kl"],
        average_kl_se=s["se_average_kl"],
        log_n=math.log(len(data["train"])),
        train_elbo=s["average_elbo"],
        active_units=int(active_units(mu)["count"]),
        collapsed_fraction=collapsed_fraction(kl_dims, epsilon=0.01, delta=0.01),
        kl_per_dimension=kl_dims.mean(0).numpy(),
        evaluate_seconds=time.perf_counter() - started,
    )
    return out


def train_and_evaluate(
    spec: dict, data: dict, cfg, rundir, key: str, init_state: dict | None = None
) -> dict:
    """One model end to end, its training checkpointed under ``KEY_trainer``; returns its
    numbers and trained state."""
    epochs = spec.get("epochs", cfg.epochs)
    model, history = fit(
        spec,
        data,
        cfg.seed,
        epochs,
        cfg.batch_size,
        cfg.lr,
        checkpoint=rundir.checkpoints / f"{key}_trainer",
        init_state=init_state,
    )
    result = evaluate(model, data, cfg.seed + 10, cfg.nll_k, cfg.nll_n)
    result.update(
        epochs_run=history["epochs_run"],
        best_epoch=history["best_epoch"],
        train_seconds=history["seconds"],
        valid_loss=np.asarray(history["valid_loss"]),
        train_loss=np.asarray(history["train_loss"]),
    )
    return {"result": result, "state": {k: v.clone() for k, v in model.state_dict().items()}}


def run_all(specs: dict, data: dict, cfg, rundir, warm_start: dict | None = None) -> tuple:
    """Train and evaluate every spec (name -> spec), each an independent unit on
    ``rundir``'s dispatcher checkpointed under its name; a model in ``warm_start``
    (name -> earlier name whose trained parameters it starts from) runs after the others.

    Returns (results name -> numbers, arrays for ``arrays.npz``, timings).
    """
    warm_start = warm_start or {}
    done = rundir.cached_map(
        {
            name: functools.partial(train_and_evaluate, spec, data, cfg, rundir, name)
            for name, spec in specs.items()
            if name not in warm_start
        },
        desc="models",
    )
    done.update(
        rundir.cached_map(
            {
                name: functools.partial(
                    train_and_evaluate,
                    specs[name],
                    data,
                    cfg,
                    rundir,
                    name,
                    done[warm_start[name]]["state"],
                )
                for name in warm_start
            },
            desc="warm-started models",
        )
    )
    results, arrays, timings = {}, {}, {}
    for name in specs:
        r = dict(done[name]["result"])
        for field in ("valid_loss", "train_loss", "kl_per_dimension"):
            arrays[f"{field}_{name}"] = r.pop(field)
        timings[f"train_seconds_{name}"] = r["train_seconds"]
        timings[f"evaluate_seconds_{name}"] = r["evaluate_seconds"]
        results[name] = r
    return results, arrays, timings


def data_summary(data: dict) -> dict:
    return {
        "source": "binarized MNIST (Larochelle & Murray 2011, fixed binarization)",
        "n_train": len(data["train"]),
        "n_valid": len(data["valid"]),
        "n_test": len(data["test"]),
        "normalization": "nats per datum",
    }
