"""Study ``fkl``: the expected forward KL against the ELBO and the IWBO.

After McNamara, Loper & Regier ("Globally Convergent Variational Inference", NeurIPS
2024), three experiments, each fitted with objectives from
:mod:`elbolab.objectives.forward_kl` on the same variational families:

1. **Width.** A conjugate Gaussian model (:class:`~elbolab.models.simulators.ConjugateGaussian`)
   whose posterior is known: the negative log-likelihood of the true latent under q,
   E_{p(z,x)}[-log q(z; f(x))], against the exact posterior's value (the floor; the gap
   is E_x KL(p(z|x) || q)), for MLPs of several widths (NTK parameterization) and their
   linearizations, several seeds each. The networks are centred (their output at
   initialization subtracted, :class:`~elbolab.models.amortized.Centered`), so every run
   starts at q = N(0, I) and the widths differ only in how they train: with the random
   initial function, one width could start hundreds of nats worse than another and its
   gap after a fixed number of steps said more about that start than about the width.
   A network and its linearization train side by side on one data stream, and stop
   together when both have converged by one rule for every width (:func:`converged` on
   the gap measured on validation pairs), or at ``width_steps``. Reported: the final
   test gaps, E_x KL(q_network || q_linearized) (how far the network left the kernel
   regime, in nats) and the NTK drift, as mean and spread over seeds.
2. **Amortized clustering.** The shifted mixture
   (:class:`~elbolab.models.simulators.ShiftedMixture`, offsets -20..20, true shift
   100, 1000 observations). R replicates, each its own observed data set and network
   seed, all trained together as one ensemble, fitted by the forward KL (on simulated
   data sets) and by the ELBO (on the replicate's data set), in the mean-only and
   natural parameterizations: how often the posterior mode of the centres is in
   increasing order, and the mode of the shift across replicates. The natural
   parameters are measured about the data's mean with a reference precision of 1 unit
   (:func:`~elbolab.models.amortized.natural_about`): plain natural parameters had to
   reach eta_1 = mean * precision of order 1e4 and more, and training left q about 25
   units wide, the shift's mode beyond the 5-unit tolerance in most replicates.
3. **Rotated MNIST.** N known MNIST digits rotated by one shared angle (true 260
   degrees) with Gaussian pixel noise; the exact posterior over the angle on a grid;
   the IWBO fitted from 12 starting angles (batched) against the amortized forward-KL
   fit: the angle estimate across steps from every start, and forward and reverse KL to
   the exact posterior.

The encoders of experiments 2 and 3 read permutation-invariant summaries (order
statistics of the observations) or, for the digits whose order is part of the model,
the whole set; these are simpler than the paper's set transformer and CNN.

Every unit trains on ``device`` (``"auto"``: CUDA when available), resolved inside the
unit (on a cluster, each worker finds its own GPU). Networks are initialised on the CPU
from their seeds and moved there; the data sets shared by several units (the test pairs
of experiment 1, the observed replicates of experiment 2) are drawn on the CPU and moved
once; every other draw comes from a generator on the device. On the CPU the numbers are
those of earlier versions; a GPU draws other random numbers, so its results differ by
Monte Carlo noise. Units return CPU numpy arrays and floats, so a run's checkpoints load
on any machine.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
from torch.distributions import VonMises

from ... import checks
from ...data import load_mnist
from ...distributions import DiagonalNormal
from ...errors import ConfigError
from ...models.amortized import (
    MLP,
    Amortized,
    Centered,
    EnsembleMLP,
    Linearized,
    empirical_ntk,
    mean_only,
    natural_about,
    ntk_drift,
)
from ...models.simulators import ConjugateGaussian, RotatedDigits, ShiftedMixture
from ...objectives.forward_kl import elbo_amortized, forward_kl, iwbo_amortized
from ...progress import progress

NAME = "fkl"
DESCRIPTION = "Expected forward KL vs ELBO/IWBO: width, amortized clustering, rotated MNIST"


@dataclass(frozen=True)
class Config:
    """Settings of the ``fkl`` study (see the module docstring for the experiments).

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
            values = value if isinstance(value, tuple) else (value,)
            if not values or any(not v > 0 for v in values):
                raise ConfigError(f"{name} must be > 0, got {value}")
        if self.cluster_replicates < 2:
            raise ConfigError("cluster_replicates must be >= 2")
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


def prepare(cfg: Config, data_root=None) -> dict:
    images, _ = load_mnist(data_root, "test")
    return {
        "templates": torch.as_tensor(images[: cfg.rotated_n_images] / 255.0, dtype=torch.float32)
    }


# --------------------------------------------------------------------------- 1. width


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


def _width_pair(
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

    def evaluate(step):
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

    evaluate(0)
    label = f"width {width} seed {rep}"
    for step in progress(range(1, cfg.width_steps + 1), desc=label, unit="step", leave=False):
        z, x = model.simulate(gen, cfg.width_batch)
        for k, q in qs.items():
            opts[k].zero_grad()
            forward_kl(q, lambda _g, _n, z=z, x=x: (z, x), cfg.width_batch, gen)["loss"].backward()
            opts[k].step()
        if step % cfg.width_eval_every == 0 or step == cfg.width_steps:
            evaluate(step)
            if all(v is not None for v in stopped_at.values()):
                break
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


# --------------------------------------------------------------------------- 2. clustering


def _cluster_features(model: ShiftedMixture, x: torch.Tensor, n_q: int) -> torch.Tensor:
    """Permutation-invariant summary of data sets x (..., n_obs): mean and order statistics."""
    xs = x / model.scale
    mean = xs.mean(-1, keepdim=True)
    ranks = torch.linspace(0, x.shape[-1] - 1, n_q, device=x.device).round().long()
    quantiles = torch.sort(xs, -1).values[..., ranks]
    return torch.cat([mean, 10.0 * (quantiles - mean)], -1)


def _cluster_family(kind: str, model: ShiftedMixture):
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


def _cluster_fit(
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
    family = _cluster_family(kind, model)
    log_scale = d * math.log(model.scale)  # density of z = scale * u

    def q_fn(x):  # x (R, B, n_obs) -> q over u, batch (R, B)
        return family(ens(_cluster_features(model, x, cfg.cluster_quantiles)), x)

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

    desc = f"clustering {objective} ({kind})"
    for _ in progress(range(cfg.cluster_steps), desc=desc, unit="step", leave=False):
        opt.zero_grad()
        if objective == "fkl":
            # Each replicate trains on its own cluster_batch fresh data sets per step.
            loss = forward_kl(q_flat, simulate, r * cfg.cluster_batch, gen)["loss"]
        else:
            loss = elbo_amortized(q_observed, lj, x_obs, gen, cfg.cluster_samples)["loss"]
        loss.backward()
        opt.step()
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


# --------------------------------------------------------------------------- 3. rotated


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


def _angle_error(a_deg, b_deg) -> np.ndarray:
    d = np.abs(np.mod(np.asarray(a_deg) - b_deg, 360.0))
    return np.minimum(d, 360.0 - d)


def _rotated(cfg: Config, templates: torch.Tensor, rundir) -> dict:
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
    for i in progress(
        range(1, cfg.rotated_iwbo_steps + 1), desc="rotated IWBO x12", unit="step", leave=False
    ):
        opt.zero_grad()
        iwbo_amortized(q_fn, lj, x_obs, cfg.rotated_iwbo_k, gen)["loss"].backward()
        opt.step()
        if i % cfg.rotated_eval_every == 0 or i == cfg.rotated_iwbo_steps:
            eval_iwbo(i)

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
    for i in progress(
        range(1, cfg.rotated_fkl_steps + 1), desc="rotated forward KL", unit="step", leave=False
    ):
        opt.zero_grad()
        forward_kl(vm, model.simulate, cfg.rotated_fkl_batch, sim_gen)["loss"].backward()
        opt.step()
        if i % cfg.rotated_eval_every == 0 or i == cfg.rotated_fkl_steps:
            eval_fkl(i)

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


# --------------------------------------------------------------------------- run


def run(cfg: Config, inputs: dict, rundir):
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
                _width_pair, cfg, gauss, w, rep, test, val, rundir
            )

    # 2. Clustering.
    mix = ShiftedMixture()
    gen = checks.torch_generator(cfg.seed + 20, "seed")
    shifts = torch.full((cfg.cluster_replicates,), cfg.cluster_true_shift, dtype=torch.float64)
    _, x_obs = mix.simulate_given_shift(gen, shifts)
    for kind in ("mean", "natural"):
        for objective in ("fkl", "elbo"):
            units[f"cluster_{objective}_{kind}"] = partial(
                _cluster_fit, cfg, mix, objective, kind, x_obs, rundir
            )

    # 3. Rotated MNIST.
    units["rotated"] = partial(_rotated, cfg, inputs["templates"], rundir)

    done = rundir.cached_map(units, timings, desc="fkl units")
    width = {k: v for k, v in done.items() if k.startswith("width_")}
    cluster = {k: v for k, v in done.items() if k.startswith("cluster_")}
    rot = done["rotated"]

    metrics, arrays = _collect(cfg, width, cluster, rot, gauss)
    # Where the units ran (resolved on their workers; checkpoints of earlier versions,
    # which ran on the CPU, carry no device).
    devices = sorted({r.get("device", "cpu") for r in done.values()})
    metrics["device"] = devices[0] if len(devices) == 1 else devices
    metrics["timings"] = timings
    metrics["torch_threads"] = torch_threads
    return metrics, arrays


def _spread(values) -> dict:
    """Mean, sample standard deviation (0 for one value), min and max of a list of floats."""
    v = np.asarray(values, dtype=np.float64)
    sd = float(v.std(ddof=1)) if v.size > 1 else 0.0
    return {"mean": float(v.mean()), "sd": sd, "min": float(v.min()), "max": float(v.max())}


# The share of the starting gap that "steps to converge" is measured at (5%).
_FAST_SHARE = 0.05


def _first_step_below(run: dict, share: float):
    gaps = run["nll_gap_network"]
    below = np.flatnonzero(gaps <= share * gaps[0])
    return int(run["steps"][below[0]]) if below.size else None


def _width_metrics(cfg, width) -> dict:
    """Experiment 1 by width: final test gaps, network-linearization KL, NTK drift and
    stopping steps, each over the seeds (mean, sd, min, max) and per seed."""
    out = {}
    for w in cfg.width_widths:
        runs = [width[f"width_{w}_seed{rep}"] for rep in range(cfg.width_seeds)]
        per_seed = {
            "gap_network": [float(r["nll_gap_network"][-1]) for r in runs],
            "gap_linearized": [float(r["nll_gap_linearized"][-1]) for r in runs],
            "kl_network_linearized": [float(r["kl_network_linearized"][-1]) for r in runs],
            "ntk_drift": [float(r["ntk_drift"]) for r in runs],
            "steps": [int(r["steps"][-1]) for r in runs],
            # How fast: the first evaluation at which the network's test gap is within
            # _FAST_SHARE of its start (None if never).
            "steps_to_fast_share": [_first_step_below(r, _FAST_SHARE) for r in runs],
        }
        out[str(w)] = {
            **{k: _spread(v) for k, v in per_seed.items() if k.startswith(("gap", "kl", "ntk"))},
            "steps": per_seed["steps"],
            "steps_to_fast_share": per_seed["steps_to_fast_share"],
            "converged": [
                r["stopped_at_network"] is not None and r["stopped_at_linearized"] is not None
                for r in runs
            ],
            "per_seed": per_seed,
            "start_gap": float(runs[0]["nll_gap_network"][0]),
        }
    return out


def _collect(cfg, width, cluster, rot, gauss):
    rates = {
        kind: {
            obj: float(np.mean(cluster[f"cluster_{obj}_{kind}"]["ordered"]))
            for obj in ("fkl", "elbo")
        }
        for kind in ("mean", "natural")
    }
    recovered = {
        kind: {
            obj: float(np.mean(cluster[f"cluster_{obj}_{kind}"]["recovered"]))
            for obj in ("fkl", "elbo")
        }
        for kind in ("mean", "natural")
    }
    # Why a parameterization misses: how far the shift's mode is from the truth, and how
    # wide q is there (the mean-only family's sd is fixed at 1; the exact posterior's sd is
    # about centre_sd / sqrt(K) = 0.22 for the shift).
    diagnostics = {
        kind: {
            obj: {
                "median_shift_error": float(
                    np.median(
                        np.abs(
                            cluster[f"cluster_{obj}_{kind}"]["shift_mode"] - cfg.cluster_true_shift
                        )
                    )
                ),
                "median_shift_sd": float(np.median(cluster[f"cluster_{obj}_{kind}"]["shift_sd"])),
                "median_centre_sd": float(np.median(cluster[f"cluster_{obj}_{kind}"]["centre_sd"])),
            }
            for obj in ("fkl", "elbo")
        }
        for kind in ("mean", "natural")
    }
    truth = cfg.rotated_true_deg
    iw_final = rot["iwbo_angle_deg"][-1]
    metrics = {
        "width": {
            "by_width": _width_metrics(cfg, width),
            "seeds": cfg.width_seeds,
            "max_steps": cfg.width_steps,
            "posterior_entropy": gauss.posterior_entropy(),
            "units": "nats per pair; gap = E[-log q(z|x)] - E[-log p(z|x)] on test pairs; "
            "kl_network_linearized = E_x KL(q_network(x) || q_linearized(x)) on test x",
        },
        "clustering": {
            # Headline: the natural parameterization (the exponential family's own).
            "ordered_rate": rates["natural"],
            "recovered_rate": recovered["natural"],
            "ordered_rate_by_parameterization": rates,
            "recovered_rate_by_parameterization": recovered,
            "replicates": cfg.cluster_replicates,
            "shift_tolerance": cfg.cluster_shift_tol,
            "diagnostics": diagnostics,
        },
        "rotated": {
            "true_angle_deg": truth,
            "posterior_mode_deg": rot["posterior_mode_deg"],
            "final_angle_deg": {
                "fkl": float(rot["fkl_angle_deg"][-1]),
                "iwbo": [float(a) for a in iw_final],
            },
            "final_angle_error_deg": {
                "fkl": float(_angle_error(rot["fkl_angle_deg"][-1], truth)),
                "iwbo": [float(e) for e in _angle_error(iw_final, truth)],
            },
            "start_angle_deg": [30.0 * i for i in range(12)],
            "final_forward_kl": {
                "fkl": float(rot["fkl_forward_kl"][-1]),
                "iwbo": rot["iwbo_forward_kl"][-1].tolist(),
            },
            "final_reverse_kl": {
                "fkl": float(rot["fkl_reverse_kl"][-1]),
                "iwbo": rot["iwbo_reverse_kl"][-1].tolist(),
            },
            "log_evidence": rot["log_evidence"],
            "n_images": cfg.rotated_n_images,
        },
    }
    arrays = {}
    for key, r in width.items():
        for field in ("steps", "nll_gap_network", "nll_gap_linearized", "kl_network_linearized"):
            arrays[f"{key}_{field}"] = r[field]
    for key, r in cluster.items():
        for field in ("shift_mode", "centre_mode", "ordered", "shift_sd", "centre_sd"):
            arrays[f"{key}_{field}"] = r[field]
    for field, value in rot.items():
        if isinstance(value, np.ndarray):
            arrays[f"rotated_{field}"] = value
    return metrics, arrays


# --------------------------------------------------------------------------- report


def render(rundir):
    from ...report import Report, plots

    m = rundir.read_json("metrics.json")
    arr = rundir.load_arrays()
    cfg = rundir.read_json("config.json")["config"]
    report = Report(
        "Expected forward KL against the ELBO and the IWBO",
        "McNamara, Loper & Regier (2024), three experiments; nats unless stated",
    )

    # 1. Width.
    report.heading("1. Width and the kernel regime")
    widths = cfg["width_widths"]
    bw = m["width"]["by_width"]
    fig, axes = plots.new_figure(width=15, height=4, ncols=3)
    for i, w in enumerate(widths):
        for rep in range(cfg["width_seeds"]):
            key = f"width_{w}_seed{rep}"
            for kind, style in (("network", "-"), ("linearized", "--")):
                axes[0].plot(
                    arr[f"{key}_steps"],
                    arr[f"{key}_nll_gap_{kind}"],
                    style,
                    color=f"C{i}",
                    lw=0.8,
                    label=f"{w} {kind}" if rep == 0 else None,
                )
    axes[0].set_yscale("log")
    axes[0].set_xlabel("gradient step")
    axes[0].set_ylabel("gap to the exact posterior (nats per pair)")
    axes[0].legend(frameon=False, fontsize=7)
    for ax, field, label in (
        (axes[1], "kl_network_linearized", "E_x KL(q_network || q_linearized) (nats)"),
        (axes[2], "ntk_drift", "relative NTK change ||K_T - K_0||_F / ||K_0||_F"),
    ):
        for rep in range(cfg["width_seeds"]):
            ax.plot(widths, [bw[str(w)]["per_seed"][field][rep] for w in widths], "o", color="C0")
        ax.plot(widths, [bw[str(w)][field]["mean"] for w in widths], "-", color="C0")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("width (hidden units)")
        ax.set_ylabel(label)
    report.figure(
        rundir.save_figure(fig, "width"),
        "Left: E[-log q(z|x)] minus the exact posterior's E[-log p(z|x)] = "
        f"{m['width']['posterior_entropy']:.4f} nats (the floor, so the gap is the expected "
        f"forward KL itself) on {cfg['width_test_pairs']} test pairs, for centred networks "
        f"(solid) and their linearizations (dashed), {cfg['width_seeds']} seeds per width; "
        "every run starts at q = N(0, I) and stops when the moving average (over "
        f"{cfg['width_window']} evaluations, every {cfg['width_eval_every']} steps) of the "
        f"gap on separate validation pairs improves by less than {cfg['width_rtol']:.0%}, or "
        f"at {cfg['width_steps']} steps. Middle: how far the trained network's q is from its "
        "linearization's at the end (each seed a dot, the line the mean). Right: how far "
        f"the empirical NTK moved during training, on {cfg['width_probe']} probe inputs.",
    )
    report.table(
        [
            "width",
            "gap, network (nats)",
            "gap, linearized (nats)",
            "KL network-linearized (nats)",
            "NTK drift",
            "steps",
            f"steps to {_FAST_SHARE:.0%} of the start",
        ],
        [
            [
                w,
                _mean_sd(bw[str(w)]["gap_network"]),
                _mean_sd(bw[str(w)]["gap_linearized"]),
                _mean_sd(bw[str(w)]["kl_network_linearized"]),
                _mean_sd(bw[str(w)]["ntk_drift"]),
                ", ".join(str(t) for t in bw[str(w)]["steps"]),
                ", ".join(str(t) for t in bw[str(w)].get("steps_to_fast_share", [])) or "-",
            ]
            for w in widths
        ],
        caption=f"Final values by width: mean +- sd over {cfg['width_seeds']} seeds (nats "
        "per pair), the step at which each seed stopped, and the first evaluation at which "
        f"each seed's network gap was within {_FAST_SHARE:.0%} of its starting value.",
    )

    # 2. Clustering.
    report.heading("2. Amortized clustering and label switching")
    c = m["clustering"]
    report.table(
        [
            "parameterization",
            "forward KL: ordered",
            "ELBO: ordered",
            "forward KL: recovered",
            "ELBO: recovered",
        ],
        [
            [
                kind,
                f"{c['ordered_rate_by_parameterization'][kind]['fkl']:.2f}",
                f"{c['ordered_rate_by_parameterization'][kind]['elbo']:.2f}",
                f"{c['recovered_rate_by_parameterization'][kind]['fkl']:.2f}",
                f"{c['recovered_rate_by_parameterization'][kind]['elbo']:.2f}",
            ]
            for kind in ("mean", "natural")
        ],
        caption=f"Share of {c['replicates']} replicates whose posterior mode of the centres is "
        "in increasing order (the paper's Table 1), and whose mode is ordered with the shift "
        f"within {c['shift_tolerance']} of the truth ({cfg['cluster_true_shift']}).",
    )
    if "diagnostics" in c:  # runs made before it was recorded have none
        diag = c["diagnostics"]
        report.table(
            [
                "parameterization",
                "objective",
                "median |shift - truth|",
                "median sd of q: shift",
                "median sd of q: centres",
            ],
            [
                [
                    kind,
                    obj,
                    f"{d['median_shift_error']:.2f}",
                    f"{d['median_shift_sd']:.3g}",
                    f"{d['median_centre_sd']:.3g}",
                ]
                for kind in ("mean", "natural")
                for obj, d in diag[kind].items()
            ],
            caption="Why a replicate is missed: the distance of the shift's mode from the truth "
            "and the width of q at the observed data set, medians over replicates, in the "
            "model's units (the mean-only family's sd is fixed at 1; the exact posterior's is "
            "about 0.22 for the shift and 0.007 for a centre).",
        )
    fig, axes = plots.new_figure(width=11, height=4, ncols=2)
    for ax, kind in zip(axes, ("mean", "natural"), strict=True):
        for obj, label in (("fkl", "forward KL"), ("elbo", "ELBO")):
            s = arr[f"cluster_{obj}_{kind}_shift_mode"]
            _kde(ax, s, label)
        ax.axvline(cfg["cluster_true_shift"], color="k", lw=1, ls="--", label="true shift")
        ax.set_xlabel("posterior mode of the shift S")
        ax.set_ylabel("density across replicates")
        ax.set_title(f"{kind} parameterization")
        ax.legend(frameon=False)
    report.figure(
        rundir.save_figure(fig, "clustering_shift"),
        "Kernel-smoothed distribution across replicates of the posterior mode of the shift "
        "(the paper's Figure 2), for the forward KL and the ELBO.",
    )

    # 3. Rotated MNIST.
    report.heading("3. Rotated MNIST")
    r = m["rotated"]
    fig, axes = plots.new_figure(width=15, height=4, ncols=3)
    angles = arr["rotated_iwbo_angle_deg"]
    for j in range(angles.shape[1]):
        axes[0].plot(arr["rotated_iwbo_steps"], angles[:, j], lw=1)
    axes[0].axhline(r["true_angle_deg"], color="k", ls="--", lw=1)
    axes[0].set_xlabel("IWBO step")
    axes[0].set_ylabel("angle estimate (degrees)")
    axes[0].set_title("IWBO from 12 starts", fontsize=9)
    axes[1].plot(arr["rotated_fkl_steps"], arr["rotated_fkl_angle_deg"])
    axes[1].axhline(r["true_angle_deg"], color="k", ls="--", lw=1)
    axes[1].set_xlabel("forward-KL step")
    axes[1].set_ylabel("angle estimate (degrees)")
    axes[1].set_title("amortized forward KL", fontsize=9)
    axes[2].plot(arr["rotated_grid_deg"], np.exp(arr["rotated_log_posterior"]))
    axes[2].set_xlabel("angle (degrees)")
    axes[2].set_ylabel("exact posterior density (per radian)")
    axes[2].set_yscale("log")
    axes[2].set_ylim(1e-12, 10 * float(np.exp(arr["rotated_log_posterior"]).max()))
    report.figure(
        rundir.save_figure(fig, "rotated_angles"),
        f"{r['n_images']} MNIST digits rotated by {r['true_angle_deg']} degrees with noise sd "
        f"{cfg['rotated_sigma']}: the angle estimate (mode of q) across steps from every IWBO "
        "start (left) and for the amortized forward-KL fit (middle); right, the exact "
        f"posterior on a grid of {cfg['rotated_grid']} angles "
        f"(mode {r['posterior_mode_deg']:.2f}).",
    )
    fig, axes = plots.new_figure(width=11, height=4, ncols=2)
    for ax, name in zip(axes, ("forward", "reverse"), strict=True):
        iw = arr[f"rotated_iwbo_{name}_kl"]
        for j in range(iw.shape[1]):
            ax.plot(
                arr["rotated_iwbo_steps"],
                iw[:, j],
                color="C0",
                lw=0.8,
                label="IWBO (each start)" if j == 0 else None,
            )
        ax.plot(
            arr["rotated_fkl_steps"],
            arr[f"rotated_fkl_{name}_kl"],
            color="C1",
            label="forward KL (amortized)",
        )
        ax.set_yscale("symlog")
        ax.set_xlabel("step")
        ax.set_ylabel(f"{name} KL to the exact posterior (nats)")
        ax.legend(frameon=False)
    report.figure(
        rundir.save_figure(fig, "rotated_kl"),
        "KL(p || q) (left) and KL(q || p) (right) between the exact posterior over the angle and "
        "each fit, on the grid, across fitting (symmetric-log axis).",
    )
    report.table(
        ["start (deg)", "IWBO final angle (deg)", "error (deg)"],
        [
            [f"{s:.0f}", f"{a:.1f}", f"{e:.1f}"]
            for s, a, e in zip(
                r["start_angle_deg"],
                r["final_angle_deg"]["iwbo"],
                r["final_angle_error_deg"]["iwbo"],
                strict=True,
            )
        ],
        caption=f"Where each IWBO start ends. The amortized forward-KL fit ends at "
        f"{r['final_angle_deg']['fkl']:.1f} degrees, {r['final_angle_error_deg']['fkl']:.1f} from "
        "the truth.",
    )
    report.heading("All metrics")
    report.metrics({k: v for k, v in m.items() if k != "timings"})
    return report


def _mean_sd(stats: dict) -> str:
    return f"{stats['mean']:.4g} +- {stats['sd']:.2g}"


def _kde(ax, values, label) -> None:
    """Gaussian kernel density of values (Silverman bandwidth), or a rug when they coincide."""
    values = np.asarray(values, dtype=np.float64)
    spread = values.std()
    if values.size < 2 or spread == 0:
        ax.plot(values, np.zeros_like(values), "|", ms=20, label=label)
        return
    h = 1.06 * spread * values.size ** (-1 / 5)
    lo, hi = values.min() - 3 * h, values.max() + 3 * h
    grid = np.linspace(lo, hi, 400)
    dens = np.exp(-0.5 * ((grid[:, None] - values) / h) ** 2).sum(1) / (
        values.size * h * math.sqrt(2 * math.pi)
    )
    ax.plot(grid, dens, label=label)


# --------------------------------------------------------------------------- claims

_REF = "McNamara, Loper & Regier (2024), NeurIPS"
# A fit "finds" the rotation when its angle is within this many degrees of the truth: a
# tenth of the 100-degree spacing at which rotated digits start to resemble each other,
# far wider than the exact posterior of 20 digits, far narrower than a wrong mode.
_ANGLE_TOL_DEG = 10.0
# The forward KL has converged "globally" when the widest network's final gap is below
# this share of the gap at the start (q = N(0, I)); "partly" below 5 times that.
_CONVERGED_SHARE = 0.02


def claims(cfg: Config, metrics: dict) -> list:
    from ..claims import Claim, verdict

    rows = []
    bw = metrics["width"]["by_width"]
    widths = list(cfg.width_widths)
    n_seeds = cfg.width_seeds
    widest = bw[str(widths[-1])]
    start = widest["start_gap"]
    gap = widest["gap_network"]
    rule = (
        f"stopping rule: moving average of the validation gap over {cfg.width_window} "
        f"evaluations improves by less than {cfg.width_rtol:.0%}, at most {cfg.width_steps} "
        f"steps; {n_seeds} seeds per width"
    )
    rows.append(
        Claim(
            claim="trained by the expected forward KL, a wide network's amortized posterior "
            "converges to the exact posterior (the global optimum)",
            reference=f"{_REF}, main theorem and the width ablation",
            measured=f"width {widths[-1]}: gap {gap['mean']:.4f} ± {gap['sd']:.4f} nats per "
            f"pair (max {gap['max']:.4f}) after {widest['steps']} steps, from {start:.4f} at "
            f"the start; {sum(widest['converged'])} of {n_seeds} seeds met the stopping rule",
            verdict=verdict(
                gap["max"] < _CONVERGED_SHARE * start,
                partly=gap["max"] < 5 * _CONVERGED_SHARE * start,
            ),
            reason=f"holds when every seed's final test gap E_x KL(p(z|x) || q) is below "
            f"{_CONVERGED_SHARE:.0%} of the starting gap, partly below "
            f"{5 * _CONVERGED_SHARE:.0%}; every run starts at q = N(0, I); at a fixed Adam "
            "step size the gap levels off above 0, a floor we attribute to gradient noise "
            f"(not tested with a decaying step); {rule}",
        )
    )
    for field, what in (
        ("kl_network_linearized", "E_x KL(q_network || q_linearized)"),
        ("ntk_drift", "relative change of the empirical NTK"),
    ):
        means = [bw[str(w)][field]["mean"] for w in widths]
        falling = bool(np.all(np.diff(means) < 0))
        rows.append(
            Claim(
                claim="the wider the network, the closer its training stays to the kernel "
                f"regime (its linearization): {what} shrinks with width",
                reference=f"{_REF}, NTK analysis; Jacot et al. 2018; Lee et al. 2019",
                measured=", ".join(
                    f"width {w}: {bw[str(w)][field]['mean']:.3g} ± {bw[str(w)][field]['sd']:.2g}"
                    for w in widths
                )
                + (" nats" if field.startswith("kl") else ""),
                verdict=verdict(falling, partly=means[-1] < means[0]),
                reason="holds when the mean over seeds falls at every step of width, partly "
                f"when the widest is below the narrowest; {rule}",
            )
        )
    means = [bw[str(w)]["gap_network"]["mean"] for w in widths]
    sds = [bw[str(w)]["gap_network"]["sd"] for w in widths]
    # A fall counts only where it is larger than the seeds' spread on both sides.
    clear = all(means[i] - means[i + 1] > sds[i] + sds[i + 1] for i in range(len(widths) - 1))
    rows.append(
        Claim(
            claim="wider networks end closer to the exact posterior (the gap falls with width)",
            reference=f"{_REF}, width ablation",
            measured=", ".join(
                f"width {w}: {m:.4f} ± {s:.4f}" for w, m, s in zip(widths, means, sds, strict=True)
            )
            + " nats per pair",
            verdict=verdict(clear, partly=means[-1] < means[0]),
            reason="holds when the mean final gap falls at every step of width by more than "
            "the two widths' seed standard deviations together, partly when the widest "
            f"is below the narrowest; {rule}",
        )
    )

    c = metrics["clustering"]
    ordered, recovered = (
        c["ordered_rate_by_parameterization"],
        c["recovered_rate_by_parameterization"],
    )
    where = (
        f"{c['replicates']} replicates, {cfg.cluster_steps} Adam steps; recovered = ordered "
        f"centres and shift within {c['shift_tolerance']} of {cfg.cluster_true_shift}"
    )
    for kind in ("mean", "natural"):
        rows.append(
            Claim(
                claim="amortized clustering: the forward KL finds the posterior mode (centres "
                f"in prior order, shift near the truth) in nearly every replicate ({kind} "
                "parameterization)",
                reference=f"{_REF}, label-switching experiment (Table 1, Figure 2)",
                measured=f"forward KL: ordered {ordered[kind]['fkl']:.0%}, recovered "
                f"{recovered[kind]['fkl']:.0%}",
                verdict=verdict(
                    recovered[kind]["fkl"] >= 0.95, partly=ordered[kind]["fkl"] >= 0.95
                ),
                reason=f"holds when at least 95% are recovered, partly when at least 95% are "
                f"ordered; {where}",
            )
        )
        rows.append(
            Claim(
                claim="amortized clustering: the ELBO ends in label-switched local optima more "
                f"often than the forward KL ({kind} parameterization)",
                reference=f"{_REF}, label-switching experiment (Table 1)",
                measured=f"ordered: ELBO {ordered[kind]['elbo']:.0%}, forward KL "
                f"{ordered[kind]['fkl']:.0%}",
                verdict=verdict(
                    ordered[kind]["elbo"] + 0.1 <= ordered[kind]["fkl"],
                    partly=ordered[kind]["elbo"] < ordered[kind]["fkl"],
                ),
                reason="holds when the ELBO's ordered share is at least 10 points below the "
                f"forward KL's, partly when it is below at all; {where}",
            )
        )

    r = metrics["rotated"]
    iw_err = np.asarray(r["final_angle_error_deg"]["iwbo"])
    stuck = int((iw_err > _ANGLE_TOL_DEG).sum())
    fkl_err = r["final_angle_error_deg"]["fkl"]
    found = iw_err.size - stuck
    rows.append(
        Claim(
            claim="rotated MNIST: fitted from different starting angles, the IWBO ends in "
            "local optima far from the true rotation",
            reference=f"{_REF}, rotated-MNIST experiment",
            measured=f"{stuck} of {iw_err.size} starts end more than {_ANGLE_TOL_DEG:.0f} "
            f"degrees from {r['true_angle_deg']:.0f} (errors {np.round(iw_err, 1).tolist()})",
            # Starts that stop short could just be slow; a start that does reach the truth
            # shows the budget suffices, so the others are held by local optima.
            verdict=verdict(stuck > 0 and found > 0, partly=stuck > 0),
            reason=f"holds when some starts end more than {_ANGLE_TOL_DEG:.0f} degrees away "
            "while at least one reaches the truth with the same budget (partly when none "
            f"does); k = {cfg.rotated_iwbo_k}, {cfg.rotated_iwbo_steps} steps, "
            f"{r['n_images']} digits",
        )
    )
    rows.append(
        Claim(
            claim="rotated MNIST: the amortized forward KL finds the true rotation",
            reference=f"{_REF}, rotated-MNIST experiment",
            measured=f"angle {r['final_angle_deg']['fkl']:.1f} degrees, {fkl_err:.1f} from "
            f"the truth; forward KL to the exact posterior {r['final_forward_kl']['fkl']:.3g} "
            "nats",
            verdict=verdict(fkl_err <= _ANGLE_TOL_DEG, partly=fkl_err <= 3 * _ANGLE_TOL_DEG),
            reason=f"holds within {_ANGLE_TOL_DEG:.0f} degrees, partly within "
            f"{3 * _ANGLE_TOL_DEG:.0f}; {cfg.rotated_fkl_steps} steps of batch "
            f"{cfg.rotated_fkl_batch}",
        )
    )
    return rows
