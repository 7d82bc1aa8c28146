"""Experiment 2: does the forward KL avoid the label-switched optima the ELBO falls into?

Amortized clustering of the shifted mixture: R replicates trained together as one
ensemble, by the forward KL on simulated data sets or by the ELBO on each replicate's
own data set, in the mean-only and the natural parameterization; each fit reports the
posterior modes of the shift and the centres at the observed data.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ... import checks
from ...distributions import DiagonalNormal
from ...models.amortized import EnsembleMLP, mean_only, natural_about
from ...models.simulators import ShiftedMixture
from ...objectives.forward_kl import elbo_amortized, forward_kl
from ...optimize import descend
from .config import Config


def cluster_features(model: ShiftedMixture, x: torch.Tensor, n_q: int) -> torch.Tensor:
    """Permutation-invariant summary of data sets x (..., n_obs): mean and order statistics."""
    xs = x / model.scale
    mean = xs.mean(-1, keepdim=True)
    ranks = torch.linspace(0, x.shape[-1] - 1, n_q, device=x.device).round().long()
    quantiles = torch.sort(xs, -1).values[..., ranks]
    return torch.cat([mean, 10.0 * (quantiles - mean)], -1)


def cluster_family(kind: str, model: ShiftedMixture) -> Callable:
    """``(outputs, x) -> q`` over u = z / scale.

    mean: N(outputs, sd 1 unit of z). natural: natural parameters about the data's mean
    (:func:`natural_about`), with the reference precision of the same 1 unit of z. The
    reference is the same for the shift and every centre, so it carries no order of the
    centres (which the label-switching question is about).
    """
    if kind == "mean":
        family = mean_only(1.0 / model.scale)
        return lambda out, x: family(out)

    def family(out, x):
        reference = (x.mean(-1, keepdim=True) / model.scale).expand(
            out.shape[:-1] + (out.shape[-1] // 2,)
        )
        return natural_about(out, reference, model.scale**2)

    return family


def cluster_fit(
    cfg: Config, model: ShiftedMixture, objective: str, kind: str, x_obs: torch.Tensor, rundir
) -> dict:
    device = checks.device(cfg.device, "device")  # here, in the unit: on its worker
    x_obs = x_obs.to(device)
    r = x_obs.shape[0]
    d = 1 + model.n_components
    out_dim = d if kind == "mean" else 2 * d
    ens = EnsembleMLP(
        [cfg.seed * 1000 + i for i in range(r)],
        1 + cfg.cluster_quantiles,
        out_dim,
        width=cfg.cluster_width,
    ).to(device)
    family = cluster_family(kind, model)
    log_scale = d * math.log(model.scale)  # density of z = scale * u

    def q_fn(x):  # x (R, B, n_obs) -> q over u, batch (R, B)
        return family(ens(cluster_features(model, x, cfg.cluster_quantiles)), x)

    opt = torch.optim.Adam(ens.parameters(), lr=cfg.cluster_lr)
    gen = checks.torch_generator(cfg.seed + 2, "seed", device=device)

    def q_flat(x):  # x (R * B, n_obs), replicate-major -> q with batch (R * B,)
        q = q_fn(x.reshape(r, -1, model.n_obs))
        return DiagonalNormal(q.loc.reshape(-1, d), q.scale.reshape(-1, d))

    def q_observed(x):  # x (R, n_obs): replicate r's own data set -> q with batch (R,)
        q = q_fn(x[:, None])
        return DiagonalNormal(q.loc[:, 0], q.scale[:, 0])

    def simulate(g, n):  # pairs (u, x) from the joint, u = z / scale
        z, x = model.simulate(g, n)
        return z / model.scale, x

    def lj(u, x):  # u (S, R, d) in scaled units, x (R, n_obs)
        return model.log_joint(u * model.scale, x) + log_scale

    def loss(_step) -> torch.Tensor:
        if objective == "fkl":
            # Each replicate trains on its own cluster_batch fresh data sets per step.
            return forward_kl(q_flat, simulate, r * cfg.cluster_batch, gen)["loss"]
        return elbo_amortized(q_observed, lj, x_obs, gen, cfg.cluster_samples)["loss"]

    descend(loss, opt, cfg.cluster_steps, desc=f"clustering {objective} ({kind})")
    with torch.no_grad():
        q_obs = q_fn(x_obs[:, None])
        mode = q_obs.mean[:, 0] * model.scale  # (R, d): Gaussian mode = mean
        sd = q_obs.scale[:, 0] * model.scale  # (R, d), in the model's units
    centres = mode[:, 1:]
    ordered = (torch.diff(centres, dim=1) > 0).all(1)
    shift = mode[:, 0]
    recovered = ordered & ((shift - cfg.cluster_true_shift).abs() < cfg.cluster_shift_tol)
    rundir.save_model(f"cluster_{objective}_{kind}", ens)
    return {
        "shift_mode": shift.cpu().numpy(),
        "centre_mode": centres.cpu().numpy(),
        "shift_sd": sd[:, 0].cpu().numpy(),
        "centre_sd": sd[:, 1:].cpu().numpy(),
        "ordered": ordered.cpu().numpy(),
        "recovered": recovered.cpu().numpy(),
        "device": str(device),
    }
