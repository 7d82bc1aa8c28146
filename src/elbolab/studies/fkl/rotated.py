"""Experiment 3: does the amortized forward KL find the rotation of MNIST digits where
the IWBO, fitted from several starting angles, stops in local optima?

N digits rotated by one shared angle with pixel noise; the exact posterior over the angle
on a grid; the IWBO fitted from 12 starting angles (batched) and an amortized forward-KL
fit (a von Mises from an MLP), with the angle and the forward and reverse KL to the exact
posterior recorded across steps.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.distributions import VonMises

from ... import checks
from ...distributions import DiagonalNormal
from ...models.amortized import MLP
from ...models.simulators import RotatedDigits
from ...objectives.forward_kl import forward_kl, iwbo_amortized
from ...optimize import descend
from .config import Config


def _wrapped_normal_log_density(grid, loc, scale) -> torch.Tensor:
    """log density on the circle of N(loc, scale^2) wrapped mod 2 pi, at grid (G,) per row."""
    shifts = 2 * math.pi * torch.arange(-3, 4, dtype=torch.float64, device=grid.device)
    pts = grid[None, :, None] + shifts  # (1, G, 7)
    lp = torch.distributions.Normal(loc[:, None, None], scale[:, None, None]).log_prob(pts)
    return torch.logsumexp(lp, -1)


def _kls(log_p: torch.Tensor, log_q: torch.Tensor, step: float) -> tuple:
    """Forward KL(p || q) and reverse KL(q || p) on the grid, for rows of log_q (M, G),
    as CPU numpy arrays."""
    p, q = log_p.exp(), log_q.exp()
    forward = (p * (log_p - log_q)).sum(-1) * step
    # Where the exact density underflows to 0, log p = -inf; q's mass there makes the
    # reverse KL infinite, which is what it is. Clamp to the float64 floor instead so the
    # number stays finite and comparable (an underestimate).
    log_p_safe = log_p.clamp_min(math.log(torch.finfo(torch.float64).tiny))
    reverse = (q * (log_q - log_p_safe)).sum(-1) * step
    return forward.cpu().numpy(), reverse.cpu().numpy()


def _deg(rad) -> np.ndarray:
    return np.mod(np.degrees(np.asarray(rad)), 360.0)


def angle_error(a_deg, b_deg) -> np.ndarray:
    """The shorter way round the circle from angles a_deg to b_deg, in degrees (0..180)."""
    d = np.abs(np.mod(np.asarray(a_deg) - b_deg, 360.0))
    return np.minimum(d, 360.0 - d)


def rotated_digits(cfg: Config, templates: torch.Tensor, rundir) -> dict:
    device = checks.device(cfg.device, "device")  # here, in the unit: on its worker
    model = RotatedDigits(templates.to(device), cfg.rotated_sigma)
    gen = checks.torch_generator(cfg.seed + 3, "seed", device=device)
    truth = math.radians(cfg.rotated_true_deg)
    x_obs = model.observe(gen, torch.tensor([truth], dtype=torch.float64, device=device))[0]
    post = model.posterior_grid(x_obs, cfg.rotated_grid)
    grid, log_p, step = post["theta"], post["log_density"], post["step"]

    # IWBO from 12 starts, batched: q_j = N(mu_j, s_j^2) on the real line, wrapped.
    starts = torch.arange(12, dtype=torch.float64, device=device) * (math.pi / 6)
    mu = starts.clone().requires_grad_(True)
    log_s = torch.full(
        (12,), math.log(math.radians(10.0)), dtype=torch.float64, device=device
    ).requires_grad_(True)
    opt = torch.optim.Adam([mu, log_s], lr=cfg.rotated_iwbo_lr)

    def q_fn(_):
        return DiagonalNormal(mu[:, None], log_s.exp()[:, None])

    def lj(theta, x):  # theta (k, 12, 1) -> (k, 12)
        return model.log_joint(theta.reshape(-1), x).reshape(theta.shape[:2])

    iw_steps, iw_angle, iw_fwd, iw_rev = [], [], [], []

    def eval_iwbo(i):
        with torch.no_grad():
            lq = _wrapped_normal_log_density(grid, mu, log_s.exp())
            f, r = _kls(log_p, lq, step)
        iw_steps.append(i)
        iw_angle.append(_deg(mu.detach().cpu().numpy()))
        iw_fwd.append(f)
        iw_rev.append(r)

    eval_iwbo(0)
    descend(
        lambda _step: iwbo_amortized(q_fn, lj, x_obs, cfg.rotated_iwbo_k, gen)["loss"],
        opt,
        cfg.rotated_iwbo_steps,
        evaluate=eval_iwbo,
        every=cfg.rotated_eval_every,
        desc="rotated IWBO x12",
    )

    # Amortized forward KL: the whole (ordered) set -> von Mises in natural parameters.
    net = MLP(
        templates.numel(),
        2,
        width=cfg.rotated_width,
        depth=1,
        parameterization="standard",
        generator=cfg.seed + 4,
    ).to(device)

    def vm(x):  # x (B, N, H, W)
        eta = net(x.reshape(x.shape[0], -1)).to(torch.float64)
        return VonMises(torch.atan2(eta[:, 1], eta[:, 0]), eta.norm(dim=1).clamp_min(1e-6))

    opt = torch.optim.Adam(net.parameters(), lr=cfg.rotated_fkl_lr)
    fk_steps, fk_angle, fk_fwd, fk_rev = [], [], [], []

    def eval_fkl(i):
        with torch.no_grad():
            q = vm(x_obs[None])
            lq = q.log_prob(grid[None, :])  # von Mises is normalized on any 2 pi window
            f, r = _kls(log_p, lq, step)
        fk_steps.append(i)
        fk_angle.append(float(_deg(q.loc.cpu().numpy())[0]))
        fk_fwd.append(float(f[0]))
        fk_rev.append(float(r[0]))

    eval_fkl(0)
    sim_gen = checks.torch_generator(cfg.seed + 5, "seed", device=device)
    descend(
        lambda _step: forward_kl(vm, model.simulate, cfg.rotated_fkl_batch, sim_gen)["loss"],
        opt,
        cfg.rotated_fkl_steps,
        evaluate=eval_fkl,
        every=cfg.rotated_eval_every,
        desc="rotated forward KL",
    )

    rundir.save_model("rotated_fkl", net)
    mode = float(_deg(grid[int(torch.argmax(log_p))].item()))
    return {
        "grid_deg": _deg(grid.cpu().numpy()),
        "log_posterior": log_p.cpu().numpy(),
        "posterior_mode_deg": mode,
        "log_evidence": post["log_evidence"],
        "iwbo_steps": np.array(iw_steps),
        "iwbo_angle_deg": np.stack(iw_angle),
        "iwbo_forward_kl": np.stack(iw_fwd),
        "iwbo_reverse_kl": np.stack(iw_rev),
        "fkl_steps": np.array(fk_steps),
        "fkl_angle_deg": np.array(fk_angle),
        "fkl_forward_kl": np.array(fk_fwd),
        "fkl_reverse_kl": np.array(fk_rev),
        "device": str(device),
    }
