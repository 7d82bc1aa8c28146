"""The ``fkl`` study's data and its run: each width and seed of experiment 1, each
clustering fit of experiment 2 and experiment 3 are independent units, dispatched and
checkpointed through the run directory."""

from __future__ import annotations

from functools import partial

import torch

from ... import checks
from ...data import load_mnist
from ...models.simulators import ConjugateGaussian, ShiftedMixture
from ..runner import cached_map
from .clustering import cluster_fit
from .config import Config
from .metrics import collect
from .rotated import rotated_digits
from .width import width_pair


def prepare(cfg: Config, data_root=None) -> dict:
    """The first ``rotated_n_images`` MNIST test digits, pixels in [0, 1]: experiment 3's
    templates."""
    images, _ = load_mnist(data_root, "test")
    return {
        "templates": torch.as_tensor(images[: cfg.rotated_n_images] / 255.0, dtype=torch.float32)
    }


def run(cfg: Config, inputs: dict, rundir) -> tuple[dict, dict]:
    """Run every unit (each width and seed, each clustering fit, rotated MNIST) and
    collect metrics and arrays."""
    torch_threads = torch.get_num_threads()
    timings = {}

    # The width runs, the clustering fits and rotated MNIST are independent units, each
    # on cfg.device; the data sets they share are drawn here, on the CPU (the same on
    # every device), and each unit moves them once.
    units = {}
    # 1. Width.
    gauss = ConjugateGaussian(seed=cfg.seed)
    test = gauss.simulate(checks.torch_generator(cfg.seed + 10, "seed"), cfg.width_test_pairs)
    # Validation pairs for the stopping rule, drawn apart from the test pairs reported.
    val = gauss.simulate(checks.torch_generator(cfg.seed + 11, "seed"), cfg.width_test_pairs)
    for w in cfg.width_widths:
        for rep in range(cfg.width_seeds):
            units[f"width_{w}_seed{rep}"] = partial(
                width_pair, cfg, gauss, w, rep, test, val, rundir
            )

    # 2. Clustering.
    mix = ShiftedMixture()
    gen = checks.torch_generator(cfg.seed + 20, "seed")
    shifts = torch.full((cfg.cluster_replicates,), cfg.cluster_true_shift, dtype=torch.float64)
    _, x_obs = mix.simulate_given_shift(gen, shifts)
    for kind in ("mean", "natural"):
        for objective in ("fkl", "elbo"):
            units[f"cluster_{objective}_{kind}"] = partial(
                cluster_fit, cfg, mix, objective, kind, x_obs, rundir
            )

    # 3. Rotated MNIST.
    units["rotated"] = partial(rotated_digits, cfg, inputs["templates"], rundir)

    done = cached_map(rundir, units, timings, desc="fkl units")
    width = {k: v for k, v in done.items() if k.startswith("width_")}
    cluster = {k: v for k, v in done.items() if k.startswith("cluster_")}
    rot = done["rotated"]

    metrics, arrays = collect(cfg, width, cluster, rot, gauss)
    # Where the units ran (resolved on their workers; checkpoints of earlier versions,
    # which ran on the CPU, carry no device).
    devices = sorted({r.get("device", "cpu") for r in done.values()})
    metrics["device"] = devices[0] if len(devices) == 1 else devices
    metrics["timings"] = timings
    metrics["torch_threads"] = torch_threads
    return metrics, arrays
