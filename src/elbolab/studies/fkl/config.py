"""Settings of the ``fkl`` study: the flat :class:`Config` (its fields are the CLI's
``--set`` keys and the ``config.json`` record, one prefix per experiment) and its
presets."""

from __future__ import annotations

from dataclasses import dataclass

from ... import checks


@dataclass(frozen=True)
class Config:
    """Settings of the ``fkl`` study (the experiments are described in the package docstring).

    width_* : experiment 1. widths, MLP depth, the most steps a run may take, seeds per
        width, batch of simulated pairs per step, Adam learning rate, steps between
        evaluations, the stopping rule's window (evaluations) and relative tolerance
        (:func:`converged`), test pairs (and as many validation pairs), NTK probe points.
    cluster_* : experiment 2. replicates R, Adam steps, simulated data sets per replicate
        and step (forward KL), Monte Carlo samples (ELBO), learning rate, hidden width,
        order statistics read by the encoder, true shift, and the tolerance on the
        shift for a replicate to count as recovered (5 = half the spacing of the
        offsets: within it every centre sits nearest its own cluster).
    rotated_* : experiment 3. digits N, pixel noise sd, true angle (degrees), grid
        points of the exact posterior, IWBO samples k, steps and learning rate, forward-KL
        steps, batch and learning rate, hidden width, steps between evaluations.
    device : where the networks train: auto (CUDA when available), cpu, cuda or cuda:N.
    """

    width_widths: tuple[int, ...] = (64, 256, 1024)
    width_depth: int = 1
    width_steps: int = 3000
    width_seeds: int = 3
    width_batch: int = 64
    width_lr: float = 1e-3
    width_eval_every: int = 100
    width_window: int = 5
    width_rtol: float = 0.01
    width_test_pairs: int = 4000
    width_probe: int = 32
    cluster_replicates: int = 50
    cluster_steps: int = 2000
    cluster_batch: int = 8
    cluster_samples: int = 8
    cluster_lr: float = 1e-3
    cluster_width: int = 128
    cluster_quantiles: int = 50
    cluster_true_shift: float = 100.0
    cluster_shift_tol: float = 5.0
    rotated_n_images: int = 20
    rotated_sigma: float = 1.0
    rotated_true_deg: float = 260.0
    rotated_grid: int = 7200
    rotated_iwbo_k: int = 16
    rotated_iwbo_steps: int = 500
    rotated_iwbo_lr: float = 0.01
    rotated_fkl_steps: int = 3000
    rotated_fkl_batch: int = 32
    rotated_fkl_lr: float = 1e-3
    rotated_width: int = 256
    rotated_eval_every: int = 25
    device: str = "auto"
    seed: int = 0

    def validate(self) -> None:
        for name, value in vars(self).items():
            if name in ("seed", "device"):
                continue
            # Every other setting is a count, a positive real or a tuple of widths.
            if isinstance(value, tuple):
                checks.integers(value, name, 1)
            elif checks.is_integer(value):
                checks.integer(value, name, 1)
            else:
                checks.positive(value, name)
        checks.integer(self.cluster_replicates, "cluster_replicates", 2)
        checks.device(self.device, "device")


PRESETS = {
    "smoke": Config(
        width_widths=(8, 16),
        width_steps=20,
        width_seeds=2,
        width_eval_every=10,
        width_window=1,
        width_test_pairs=200,
        width_probe=4,
        cluster_replicates=3,
        cluster_steps=10,
        cluster_batch=2,
        cluster_samples=2,
        cluster_width=16,
        cluster_quantiles=10,
        rotated_n_images=3,
        rotated_grid=360,
        rotated_iwbo_k=2,
        rotated_iwbo_steps=5,
        rotated_fkl_steps=10,
        rotated_fkl_batch=4,
        rotated_width=16,
        rotated_eval_every=5,
    ),
    # The tour (`elbolab demo`): three widths, 10 clustering replicates, short training.
    "tour": Config(
        width_widths=(16, 64, 256),
        width_steps=300,
        width_seeds=2,
        width_eval_every=50,
        width_window=3,
        width_test_pairs=1000,
        width_probe=16,
        cluster_replicates=10,
        cluster_steps=200,
        cluster_samples=4,
        cluster_width=64,
        cluster_quantiles=20,
        rotated_n_images=5,
        rotated_grid=1800,
        rotated_iwbo_k=8,
        rotated_iwbo_steps=100,
        rotated_fkl_steps=500,
        rotated_fkl_batch=16,
        rotated_width=64,
    ),
    "default": Config(),
    # The paper: widths up to 4096, 100 clustering replicates, long training.
    "paper": Config(
        width_widths=(64, 128, 256, 512, 1024, 2048, 4096),
        width_steps=50000,
        width_seeds=5,
        width_eval_every=500,
        cluster_replicates=100,
        cluster_steps=20000,
        rotated_n_images=100,
        rotated_iwbo_steps=5000,
        rotated_fkl_steps=50000,
        rotated_eval_every=250,
    ),
}
