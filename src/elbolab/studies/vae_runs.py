"""Training and evaluating one VAE on binarized MNIST: shared by the ``surgery`` and ``zoo``
studies so that both report the same numbers the same way.

Every number is in nats per datum. The evaluation of a trained model gives

- on the test set: the ELBO (analytic KL for the standard-normal prior, one-sample Monte
  Carlo otherwise), its reconstruction and KL terms, and the importance-sampled
  log-likelihood with ``nll_k`` samples on ``nll_n`` test images (its negative is the
  test NLL papers report) with the ELBO of the same images: all 10,000 on a GPU, a
  seeded random subset of ``CPU_NLL_IMAGES`` on the CPU unless ``nll_n`` says otherwise;
- on the whole training set (the N the mutual information refers to): the ELBO-surgery
  terms with the aggregate posterior q(z) over all N points, and the active units.

Each model trains on ``device`` (``"auto"``: CUDA when available), resolved inside its
unit, so that every Dask worker uses its own GPU; the trained model is saved as
``models/NAME.pt`` in the run directory (:func:`elbolab.models.load` reads it on any
machine).
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from .. import checks
from ..data import load_binarized_mnist
from ..diagnostics import (
    active_units,
    collapsed_fraction,
    kl_per_dimension,
    log_likelihood,
    surgery_model,
)
from ..distributions import concatenate, select_rows
from ..models import VAE
from ..models.trainer import train
from ..objectives import ELBOObjective, IWAEObjective, elbo
from .runner import cached_map

# Test images for the importance-sampled NLL on a CPU when ``nll_n`` is None: k = 5000
# on all 10,000 images would take minutes per model on 2 cores (seconds on a GPU).
CPU_NLL_IMAGES = 500


@dataclass(frozen=True)
class TrainingConfig:
    """Training and evaluation settings the ``surgery`` and ``zoo`` configs share.

    epochs, batch_size, lr : Adam on minibatches, the best validation state kept.
    patience : stop after this many epochs without a better validation loss (None:
        max(3, epochs // 5)).
    kl_warmup : epochs over which the KL weight of ELBO objectives rises linearly to 1
        (0: none; the IWAE objective has no warm-up).
    nll_k, nll_n : importance samples per image and test images for the test NLL
        (nll_n None: all test images on a GPU, ``CPU_NLL_IMAGES`` on a CPU).
    n_train : use a seeded random subset of n_train training images (None = all 50,000).
    device : where the models train and are evaluated: auto (CUDA when available), cpu,
        cuda or cuda:N.
    """

    epochs: int = 50
    batch_size: int = 100
    lr: float = 1e-3
    patience: int | None = None
    kl_warmup: int = 0
    nll_k: int = 5000
    nll_n: int | None = None
    n_train: int | None = None
    device: str = "auto"
    seed: int = 0

    def validate(self) -> None:
        for name in ("epochs", "batch_size", "nll_k", "nll_n", "patience"):
            value = getattr(self, name)
            if value is not None:
                checks.integer(value, name, 1)
        checks.integer(self.kl_warmup, "kl_warmup", 0)
        checks.positive(self.lr, "lr")
        if self.n_train is not None:
            checks.integer(self.n_train, "n_train", 2)
        checks.device(self.device, "device")


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
        keep = torch.randperm(len(data["train"]), generator=checks.torch_generator(seed))
        data["train"] = data["train"][keep[:n_train]]
    return data


@dataclass(frozen=True)
class ModelSpec:
    """One VAE of a study: its networks, prior and training objective.

    latent, hidden : latent size d and encoder hidden widths (the decoder mirrors them).
    objective : the bound it trains on (a beta-ELBO, or IWAE-k with DReG).
    prior : ``"normal"`` (N(0, I)) or ``"vamp"`` (VampPrior with ``n_pseudo``
        pseudo-inputs, initialized from training images).
    epochs : training epochs (None: the study's ``epochs``).
    label : how the reports name the model.
    """

    latent: int
    hidden: tuple[int, ...]
    objective: ELBOObjective | IWAEObjective = ELBOObjective()
    prior: str = "normal"
    n_pseudo: int = 500
    epochs: int | None = None
    label: str = ""


def make_model(spec: ModelSpec, seed: int) -> VAE:
    """The untrained VAE of a spec (Bernoulli likelihood on 784 pixels)."""
    return VAE(
        784,
        spec.latent,
        hidden=tuple(spec.hidden),
        likelihood="bernoulli",
        prior=spec.prior,
        n_pseudo=spec.n_pseudo,
        generator=seed,
    )


def nll_images(nll_n: int | None, n_test: int, device: torch.device) -> int:
    """How many test images the NLL is taken on (see ``TrainingConfig.nll_n``)."""
    if nll_n is None:
        nll_n = n_test if device.type == "cuda" else CPU_NLL_IMAGES
    return min(nll_n, n_test)


def fit(
    spec: ModelSpec,
    data: dict,
    cfg: TrainingConfig,
    epochs: int,
    checkpoint,
    init_state: dict | None = None,
) -> tuple[VAE, dict]:
    """Train one model on the device of ``data`` (resuming from ``checkpoint``), keeping
    its best validation state.

    ``init_state`` starts from another model's parameters (IWAE fine-tuned from a VAE).
    """
    device = data["train"].device
    model = make_model(spec, cfg.seed).to(device)
    if init_state is not None:
        model.load_state_dict(init_state)
    elif spec.prior == "vamp":
        model.init_pseudo_inputs(data["train"], generator=cfg.seed)
    history = train(
        model,
        spec.objective.loss,
        data["train"],
        data["valid"],
        generator=cfg.seed + 1,
        epochs=epochs,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        patience=cfg.patience or max(3, epochs // 5),
        checkpoint=checkpoint,
        # The KL warm-up is the beta-ELBO's; the IWAE bound has no KL weight to raise.
        kl_warmup=min(cfg.kl_warmup, epochs) if isinstance(spec.objective, ELBOObjective) else 0,
    )
    return model, history


def evaluate(
    model: VAE, data: dict, seed: int, nll_k: int, nll_n: int | None, surgery_samples: int = 1
) -> dict:
    """Test ELBO terms, test log-likelihood, surgery terms and active units (nats per
    datum), on the device of ``data``."""
    model.eval()
    test = data["test"]
    device = test.device
    started = time.perf_counter()
    with torch.no_grad():
        sums = {"elbo": 0.0, "reconstruction": 0.0, "kl": 0.0}
        gen = checks.torch_generator(seed, device=device)
        # One sample per image: the KL is analytic for N(0, I) and a one-sample Monte
        # Carlo estimate for the VampPrior; both are unbiased and averaged over the test set.
        posteriors = []
        for i0 in range(0, len(test), 1000):
            terms = elbo(model, test[i0 : i0 + 1000], gen)
            for key in sums:
                sums[key] += float(terms[key])
            posteriors.append(terms["posterior"])
        # The test images are encoded once: the NLL below reuses these posteriors.
        test_posterior = concatenate(posteriors)
    out = {f"test_{k}": v / len(test) for k, v in sums.items()}
    # The test file is sorted by class: score a seeded random subset (the same images on
    # every device), and the ELBO on the same images, so that the two are comparable
    # (NLL <= -ELBO image by image).
    n_images = nll_images(nll_n, len(test), device)
    subset = torch.randperm(len(test), generator=checks.torch_generator(seed))[:n_images]
    subset = subset.to(device)
    images, posterior = test[subset], select_rows(test_posterior, subset)
    with torch.no_grad():
        subset_elbo = elbo(
            model, images, checks.torch_generator(seed + 3, device=device), posterior=posterior
        )
    ll = log_likelihood(model, images, k=nll_k, generator=seed + 1, posterior=posterior)
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
        kl_per_dimension=kl_dims.mean(0).cpu().numpy(),
        evaluate_seconds=time.perf_counter() - started,
    )
    return out


def train_and_evaluate(
    spec: ModelSpec, data: dict, cfg, rundir, key: str, init_state: dict | None = None
) -> dict:
    """One model end to end on ``cfg.device``, its training checkpointed under
    ``KEY_trainer`` and the trained model saved as ``models/KEY.pt``; returns its numbers
    and trained state (on the CPU, so that checkpoints load on any machine)."""
    # Resolved here, in the unit: on a cluster each worker picks its own GPU.
    device = checks.device(cfg.device, "device")
    data = {split: x.to(device) for split, x in data.items()}  # on the device once
    epochs = cfg.epochs if spec.epochs is None else spec.epochs
    model, history = fit(
        spec,
        data,
        cfg,
        epochs,
        checkpoint=rundir.checkpoints / f"{key}_trainer",
        init_state=init_state,
    )
    rundir.save_model(key, model)
    result = evaluate(model, data, cfg.seed + 10, cfg.nll_k, cfg.nll_n)
    result.update(
        device=str(device),
        epochs_run=history["epochs_run"],
        best_epoch=history["best_epoch"],
        train_seconds=history["seconds"],
        valid_loss=np.asarray(history["valid_loss"]),
        train_loss=np.asarray(history["train_loss"]),
    )
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return {"result": result, "state": state}


def run_all(
    specs: dict[str, ModelSpec], data: dict, cfg, rundir, warm_start: dict | None = None
) -> tuple:
    """Train and evaluate every spec (name -> spec), each an independent unit on
    study's dispatcher checkpointed under its name in ``rundir``; a model in ``warm_start``
    (name -> earlier name whose trained parameters it starts from) runs after the others.

    Returns (results name -> numbers, arrays for ``arrays.npz``, timings).
    """
    warm_start = warm_start or {}
    done = cached_map(
        rundir,
        {
            name: functools.partial(train_and_evaluate, spec, data, cfg, rundir, name)
            for name, spec in specs.items()
            if name not in warm_start
        },
        desc="models",
    )
    done.update(
        cached_map(
            rundir,
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


def nll_images_text(row: dict, n_test: int) -> str:
    """How a report names the images the test NLL was taken on."""
    if row["nll_n"] >= n_test:
        return f"all {n_test:,} test images"
    return f"{row['nll_n']:,} of the {n_test:,} test images drawn at random"


def data_summary(data: dict) -> dict:
    return {
        "source": "binarized MNIST (Larochelle & Murray 2011, fixed binarization)",
        "n_train": len(data["train"]),
        "n_valid": len(data["valid"]),
        "n_test": len(data["test"]),
        "normalization": "nats per datum",
    }
