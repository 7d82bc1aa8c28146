"""Time one training epoch of a VAE: elbolab's trainer against a plain PyTorch loop.

Usage::

    python benchmarks/vae_epoch.py [--device cpu|cuda|cuda:N] [--epochs 2] [--repeats 3]
                                   [--n-train 50000] [--data ROOT] [--data-on-host]
                                   [--threads N] [--json OUT]

The task is one epoch of the 784-200-200-20 tanh VAE of Kingma & Welling on binarized
MNIST (the fixed binarization, ``--n-train`` images: all 50,000 by default, else a
seeded random subset): Bernoulli likelihood, standard-normal prior, diagonal Gaussian
posterior, one reparameterized sample per image, analytic KL, minibatches of 100
reshuffled every epoch, Adam with lr 1e-3 on the per-image mean of the negative ELBO.
Both run in the same process on the same device, with float32 parameters.

* elbolab: ``elbolab.models.train(model, elbolab.objectives.elbo_loss, x, None,
  generator=seed, epochs=E, batch_size=100, lr=1e-3, progress=False)`` with
  ``model = elbolab.models.VAE(784, 20, hidden=(200, 200), activation="tanh",
  generator=seed).to(device)``. No validation set (the plain loop has none either), so
  each epoch is the training pass plus the trainer's per-epoch bookkeeping (the best
  state is kept when the training loss improves). The data are handed over already on
  the device; with ``--data-on-host`` they are given as CPU tensors and the trainer
  moves them (once per ``train`` call, which is inside the timed interval).
* plain PyTorch: what a user writes by hand on the same device: the data moved to the
  device once, ``torch.randperm`` per epoch, ``nn.Sequential`` encoder (784-200-200-40)
  and decoder (20-200-200-784) with tanh, ``z = mu + std * eps``, the Bernoulli
  log-likelihood by ``binary_cross_entropy_with_logits``, the analytic KL,
  ``loss = -elbo.sum() / B``, ``torch.optim.Adam``; the epoch's loss is accumulated on
  the device and read once per epoch.

Timing. Each implementation first trains one warm-up epoch (untimed: allocator, cuBLAS
and kernel start-up). Then ``--repeats`` rounds, interleaved (elbolab, plain, elbolab,
plain, ...), each timing ``--epochs`` consecutive epochs of the same, continuing model
with one clock around them (for elbolab one ``train`` call of ``--epochs`` epochs, so
its per-call set-up is included); the per-epoch time of a round is its time / epochs. On
CUDA the device is synchronized before every clock reading. The table gives the median
over rounds and every round, and the ratio elbolab / plain of the medians.

Thread count: torch's default (all cores of the machine) unless ``--threads N``; printed.
On a machine shared with other busy processes, torch's default threads spin against
them and an epoch can slow down twenty-fold: time on an idle machine, or with
``--threads 1``. Progress bars are off. Nothing is written to disk except ``--json OUT``.

Targets (issue "The VAE half runs where its users' compute is"): on one H200, at most
0.25 s per epoch on the 50,000 images; on the CPU, within 10% of the plain loop
(ratio <= 1.10).

The pieces (:func:`load_train`, :func:`time_elbolab_epochs`, :func:`time_plain_epochs`,
:func:`benchmark`) are importable by path, e.g. by ``benchmarks/gpu_check.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the sibling _timing.py
from _timing import device_name, sync  # noqa: E402

DATA_DIM, LATENT, HIDDEN = 784, 20, (200, 200)
BATCH_SIZE, LR = 100, 1e-3
CPU_TARGET_RATIO = 1.10
H200_TARGET_SECONDS = 0.25


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    parser.add_argument(
        "--epochs", type=int, default=2, help="timed epochs per round (after 1 warm-up epoch)"
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="rounds of each, interleaved elbolab/plain"
    )
    parser.add_argument(
        "--n-train", type=int, default=50_000, help="training images (a seeded random subset)"
    )
    parser.add_argument(
        "--data", default=None, help="data root (default: $ELBOLAB_DATA, then elbolab's search)"
    )
    parser.add_argument(
        "--data-on-host",
        action="store_true",
        help="give elbolab's trainer CPU tensors (it moves them) instead of device tensors",
    )
    parser.add_argument(
        "--threads", type=int, default=0, help="torch CPU threads (default 0: torch's default)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the models and the data")
    parser.add_argument("--json", metavar="OUT", help="also write the numbers to OUT")
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.repeats < 1 or args.n_train < 1 or args.threads < 0:
        parser.error("need --epochs >= 1, --repeats >= 1, --n-train >= 1, --threads >= 0")
    return args


# ------------------------------------------------------------------------- helpers
def resolve_device(name: str) -> torch.device:
    """The device ``--device`` names (elbolab's rule: one line where CUDA is missing)."""
    from elbolab import checks

    return checks.device(name, "--device")


def load_train(data_root=None, n_train: int = 50_000, seed: int = 0) -> torch.Tensor:
    """The binarized-MNIST training images as a float32 CPU tensor (n_train, 784).

    Fewer than all 50,000 images: a seeded random subset (the file is sorted by class).
    """
    from elbolab.data import load_binarized_mnist

    x = torch.as_tensor(load_binarized_mnist(data_root, "train"), dtype=torch.float32)
    if n_train < len(x):
        keep = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n_train]
        x = x[keep]
    return x


# ------------------------------------------------------------------------- elbolab
def make_elbolab_model(device, seed: int = 0):
    from elbolab.models import VAE

    return VAE(DATA_DIM, LATENT, hidden=HIDDEN, activation="tanh", generator=seed).to(device)


def elbolab_epochs(model, data: torch.Tensor, epochs: int, seed: int) -> dict:
    """``epochs`` epochs of elbolab's trainer on ``model``; returns its history."""
    from elbolab.models import train
    from elbolab.objectives import elbo_loss

    return train(
        model,
        elbo_loss,
        data,
        None,
        generator=seed,
        epochs=epochs,
        batch_size=BATCH_SIZE,
        lr=LR,
        progress=False,
    )


def time_elbolab_epochs(model, data: torch.Tensor, epochs: int, seed: int, device) -> dict:
    """Seconds per epoch of ``epochs`` epochs of elbolab's trainer (one ``train`` call,
    one clock around it, the device synchronized before each reading)."""
    sync(device)
    t0 = time.perf_counter()
    hist = elbolab_epochs(model, data, epochs, seed)
    sync(device)
    seconds = time.perf_counter() - t0
    return {
        "seconds_per_epoch": seconds / epochs,
        "train_loss": float(hist["train_loss"][-1]),
        "trainer_epoch_seconds": [float(s) for s in hist["epoch_seconds"]],
    }


# --------------------------------------------------------------------------- plain
class PlainVAE(nn.Module):
    """The same VAE as a user writes it: two ``nn.Sequential`` with PyTorch's default init."""

    def __init__(self, data_dim: int = DATA_DIM, latent: int = LATENT, hidden=HIDDEN):
        super().__init__()
        h1, h2 = hidden
        self.latent = latent
        self.encoder = nn.Sequential(
            nn.Linear(data_dim, h1),
            nn.Tanh(),
            nn.Linear(h1, h2),
            nn.Tanh(),
            nn.Linear(h2, 2 * latent),
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent, h2),
            nn.Tanh(),
            nn.Linear(h2, h1),
            nn.Tanh(),
            nn.Linear(h1, data_dim),
        )

    def neg_elbo(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Per-image negative ELBO (B,), one reparameterized sample, analytic KL."""
        mu, logvar = self.encoder(x).chunk(2, dim=-1)
        std = torch.exp(0.5 * logvar)
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        logits = self.decoder(mu + std * eps)
        nll = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)
        kl = 0.5 * (mu * mu + std * std - 1.0 - logvar).sum(-1)
        return nll + kl


def make_plain(device, seed: int = 0):
    """A :class:`PlainVAE` (initialized from ``seed``) and its Adam optimizer on ``device``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = PlainVAE()
    model = model.to(device)
    return model, torch.optim.Adam(model.parameters(), lr=LR)


def plain_epoch(model, optimizer, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One epoch over ``x`` (already on the model's device); the summed loss as a tensor."""
    n = x.shape[0]
    perm = torch.randperm(n, generator=generator, device=x.device)
    total = torch.zeros((), device=x.device)
    for i in range(0, n, BATCH_SIZE):
        xb = x[perm[i : i + BATCH_SIZE]]
        loss_sum = model.neg_elbo(xb, generator).sum()
        optimizer.zero_grad(set_to_none=True)
        (loss_sum / xb.shape[0]).backward()
        optimizer.step()
        total += loss_sum.detach()
    return total


def time_plain_epochs(model, optimizer, x, epochs: int, generator, device) -> dict:
    """Seconds per epoch of ``epochs`` epochs of the plain loop (one clock around them)."""
    sync(device)
    t0 = time.perf_counter()
    for _ in range(epochs):
        total = plain_epoch(model, optimizer, x, generator)
    loss = float(total) / x.shape[0]  # reads the device once, before the clock stops
    sync(device)
    seconds = time.perf_counter() - t0
    return {"seconds_per_epoch": seconds / epochs, "train_loss": loss}


# ----------------------------------------------------------------------- benchmark
def benchmark(
    train_cpu: torch.Tensor,
    device="cpu",
    epochs: int = 2,
    repeats: int = 3,
    seed: int = 0,
    data_on_host: bool = False,
    log=print,
    time_limit: float | None = None,
) -> dict:
    """One warm-up epoch each, then ``repeats`` interleaved rounds of ``epochs`` epochs.

    ``train_cpu`` : (N, 784) float32 CPU tensor. Returns a dict of the per-round
    seconds per epoch, their medians, the ratio elbolab / plain and the last training
    losses (nats per image), and prints a line per round through ``log``. With
    ``time_limit`` (seconds), rounds and then epochs per round are cut when the warm-up
    epochs say that the timed rounds would take longer (at least one epoch of each runs).
    """
    device = resolve_device(str(device)) if not isinstance(device, torch.device) else device
    repeats_asked, epochs_asked = repeats, epochs
    x_dev = train_cpu.to(device)
    sync(device)
    elbolab_data = train_cpu if data_on_host else x_dev

    ours = make_elbolab_model(device, seed)
    plain, optimizer = make_plain(device, seed)
    plain_gen = torch.Generator(device=device).manual_seed(seed + 1)

    t0 = time.perf_counter()
    elbolab_epochs(ours, elbolab_data, 1, seed + 1000)
    sync(device)
    warm_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    float(plain_epoch(plain, optimizer, x_dev, plain_gen))
    sync(device)
    warm_plain = time.perf_counter() - t0
    log(f"  warm-up epoch: elbolab {warm_ours:.3f} s, plain {warm_plain:.3f} s")
    if time_limit is not None:
        per_round = lambda e: e * (warm_ours + warm_plain)  # noqa: E731
        while repeats > 1 and repeats * per_round(epochs) > time_limit:
            repeats -= 1
        while epochs > 1 and per_round(epochs) > time_limit:
            epochs -= 1
        if (repeats, epochs) != (repeats_asked, epochs_asked):
            log(
                f"  time limit {time_limit:.0f} s: {repeats} round(s) of {epochs} epoch(s) "
                f"instead of {repeats_asked} of {epochs_asked}"
            )

    runs = {"elbolab": [], "plain": []}
    losses = {}
    trainer_seconds = []
    for r in range(repeats):
        a = time_elbolab_epochs(ours, elbolab_data, epochs, seed + 2000 + r, device)
        b = time_plain_epochs(plain, optimizer, x_dev, epochs, plain_gen, device)
        runs["elbolab"].append(a["seconds_per_epoch"])
        runs["plain"].append(b["seconds_per_epoch"])
        trainer_seconds.append(a["trainer_epoch_seconds"])
        losses = {"elbolab": a["train_loss"], "plain": b["train_loss"]}
        log(
            f"  round {r + 1}/{repeats}: elbolab {a['seconds_per_epoch']:.3f} s/epoch, "
            f"plain {b['seconds_per_epoch']:.3f} s/epoch "
            f"(train -ELBO {a['train_loss']:.2f} / {b['train_loss']:.2f} nats)"
        )
    med = {k: statistics.median(v) for k, v in runs.items()}
    return {
        "device": str(device),
        "device_name": device_name(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "n_train": int(train_cpu.shape[0]),
        "batch_size": BATCH_SIZE,
        "epochs_per_round": epochs,
        "repeats": repeats,
        "epochs_per_round_asked": epochs_asked,
        "repeats_asked": repeats_asked,
        "data_on_host": data_on_host,
        "warmup_seconds": {"elbolab": warm_ours, "plain": warm_plain},
        "elbolab_seconds_per_epoch": runs["elbolab"],
        "plain_seconds_per_epoch": runs["plain"],
        "elbolab_median": med["elbolab"],
        "plain_median": med["plain"],
        "ratio": med["elbolab"] / med["plain"],
        "trainer_epoch_seconds": trainer_seconds,
        "final_train_loss": losses,
    }


def report(res: dict, log=print) -> None:
    """The summary table of :func:`benchmark`'s result."""
    log(f"{'implementation':<16}{'median s/epoch':>16}   every round")
    for label, key in (("elbolab train", "elbolab"), ("plain PyTorch", "plain")):
        every = ", ".join(f"{s:.3f}" for s in res[f"{key}_seconds_per_epoch"])
        log(f"{label:<16}{res[f'{key}_median']:>16.3f}   {every}")
    target = (
        f"target <= {CPU_TARGET_RATIO:.2f} on the CPU"
        if res["device"] == "cpu"
        else f"target on one H200: elbolab <= {H200_TARGET_SECONDS} s/epoch at 50,000 images"
    )
    log(f"ratio elbolab / plain: {res['ratio']:.3f} ({target})")


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ["ELBOLAB_NO_PROGRESS"] = "1"
    if args.threads:
        torch.set_num_threads(args.threads)
    from elbolab.errors import ConfigError

    try:
        device = resolve_device(args.device)
    except ConfigError as exc:
        print(f"vae_epoch: {exc}", file=sys.stderr)
        return 2
    x = load_train(args.data, args.n_train, args.seed)
    print(
        f"VAE epoch 784-200-200-20 tanh, N={len(x)}, batch {BATCH_SIZE}, Adam lr {LR}; "
        f"device {device} ({device_name(device)}); torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; {args.epochs} timed epochs x {args.repeats} "
        f"rounds after 1 warm-up epoch",
        flush=True,
    )
    res = benchmark(
        x,
        device,
        epochs=args.epochs,
        repeats=args.repeats,
        seed=args.seed,
        data_on_host=args.data_on_host,
        log=lambda s: print(s, flush=True),
    )
    print()
    report(res)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(res, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
