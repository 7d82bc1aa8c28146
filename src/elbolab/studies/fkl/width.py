"""Experiment 1: does a wider network trained by the forward KL end closer to the exact
posterior, and stay closer to its linearization (the kernel regime)?

On a conjugate Gaussian model with a known posterior, a centred NTK network and its
linearization train side by side on one data stream until both have converged by
:func:`converged` (or ``width_steps``); the unit reports the test gaps, the KL between
the two fits and the NTK drift.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from ... import checks
from ...models.amortized import MLP, Amortized, Centered, Linearized, empirical_ntk, ntk_drift
from ...models.simulators import ConjugateGaussian
from ...objectives.forward_kl import forward_kl
from ...optimize import descend
from .config import Config


def converged(history, window: int, rtol: float) -> bool:
    """The stopping rule of experiment 1, the same for every width and seed.

    True once the mean of the last ``window`` values of ``history`` (a validation gap,
    evaluated at regular steps) is no longer below the mean of the ``window`` before it
    by more than ``rtol`` of that earlier mean: the moving average has stopped
    improving. Needs 2 * window values.
    """
    if len(history) < 2 * window:
        return False
    recent = float(np.mean(history[-window:]))
    before = float(np.mean(history[-2 * window : -window]))
    return before - recent <= rtol * abs(before)


def width_pair(
    cfg: Config, model: ConjugateGaussian, width: int, rep: int, test: tuple, val: tuple, rundir
) -> dict:
    """A centred NTK network and its linearization, trained side by side on one data stream.

    Both start at q = N(0, I) for every x (:class:`Centered`), so every width and seed
    starts from the same gap and the comparison is about training, not the luck of the
    random initial function. Each takes one Adam step per batch of simulated pairs; the
    pair stops when the validation gap of both has converged (:func:`converged`) or at
    ``width_steps``. The gaps are measured on test pairs the rule never sees.
    """
    device = checks.device(cfg.device, "device")  # here, in the unit: on its worker
    mlp = MLP(
        model.data_dim,
        2 * model.latent_dim,
        width=width,
        depth=cfg.width_depth,
        generator=cfg.seed + width + 10_000 * rep,
        dtype=torch.float64,
    ).to(device)
    start = copy.deepcopy(mlp)  # theta_0, kept to save the centred function
    net = Centered(mlp)
    z_test, x_test = (t.to(device) for t in test)
    z_val, x_val = (t.to(device) for t in val)
    floor_test = float(model.posterior_nll(z_test, x_test).mean())
    floor_val = float(model.posterior_nll(z_val, x_val).mean())
    probe = x_test[: cfg.width_probe]
    k0 = empirical_ntk(net, probe)
    qs = {"network": Amortized(net, "mean_scale"), "linearized": Amortized(Linearized(net))}
    opts = {k: torch.optim.Adam(q.parameters(), lr=cfg.width_lr) for k, q in qs.items()}
    # One data stream per seed, the same for every width and for both members of a pair.
    gen = checks.torch_generator(cfg.seed + 1 + 100 * rep, "seed", device=device)
    steps = []
    gaps = {k: [] for k in qs}
    val_gaps = {k: [] for k in qs}
    stopped_at = dict.fromkeys(qs)
    distance = []

    def evaluate(step) -> bool:
        """Record the gaps and the network-linearization KL; True once both stopped."""
        steps.append(step)
        with torch.no_grad():
            for k, q in qs.items():
                gaps[k].append(float(-q(x_test).log_prob(z_test).mean()) - floor_test)
                val_gaps[k].append(float(-q(x_val).log_prob(z_val).mean()) - floor_val)
                if stopped_at[k] is None and converged(
                    val_gaps[k], cfg.width_window, cfg.width_rtol
                ):
                    stopped_at[k] = step
            q_net, q_lin = qs["network"](x_test), qs["linearized"](x_test)
            distance.append(float(torch.distributions.kl_divergence(q_net, q_lin).mean()))
        return all(v is not None for v in stopped_at.values())

    def loss(_step) -> torch.Tensor:
        # One batch of simulated pairs for both; their parameters are disjoint, so the
        # sum gives each its own forward-KL gradient.
        z, x = model.simulate(gen, cfg.width_batch)
        network_loss, linearized_loss = (
            forward_kl(q, lambda _g, _n: (z, x), cfg.width_batch, gen)["loss"] for q in qs.values()
        )
        return network_loss + linearized_loss

    evaluate(0)
    descend(
        loss,
        list(opts.values()),
        cfg.width_steps,
        evaluate=evaluate,
        every=cfg.width_eval_every,
        desc=f"width {width} seed {rep}",
    )
    drift = ntk_drift(k0, empirical_ntk(net, probe))
    # The saved files hold the trained MLP (or its linearization) and the MLP at theta_0:
    # q(x) = mean_scale(trained.net(x) - init.net(x)).
    name = f"width_{width}_seed{rep}"
    rundir.save_model(f"{name}_init", Amortized(start, "mean_scale"))
    rundir.save_model(f"{name}_network", Amortized(mlp, "mean_scale"))
    lin = Linearized(start.to(device))
    with torch.no_grad():
        for d_new, d_old in zip(lin.delta, qs["linearized"].net.delta, strict=True):
            d_new.copy_(d_old)
    rundir.save_model(f"{name}_linearized", Amortized(lin, "mean_scale"))
    return {
        "steps": np.array(steps),
        "nll_gap_network": np.array(gaps["network"]),
        "nll_gap_linearized": np.array(gaps["linearized"]),
        "kl_network_linearized": np.array(distance),
        "stopped_at_network": stopped_at["network"],
        "stopped_at_linearized": stopped_at["linearized"],
        "floor": floor_test,
        "ntk_drift": drift,
        "device": str(device),
    }
