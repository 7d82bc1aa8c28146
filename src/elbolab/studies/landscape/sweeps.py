"""The paper's sweeps: NEB (profile mode) for each learning rate, number of pivots and
spring constant, and the barrier at each number of topics K."""

from __future__ import annotations

from functools import partial

import torch

from ...landscape import LDAObjective
from .config import Config
from .maxima import choose_pair, endpoint_vectors, fit_maxima
from .paths import neb_profile, straight_line


def sweep_point(obj, xa, xb, cfg: Config, **overrides) -> dict:
    """One NEB run (profile mode, ``sweep_steps`` steps) with ``overrides`` of its settings:
    its barrier, lowest pivot per iteration, step halvings and pivot spacing."""
    result = neb_profile(obj, xa, xb, cfg, steps=cfg.sweep_steps, **overrides)
    seg = torch.diff(result.pivots, dim=0).norm(dim=1)
    return {
        "barrier": result.barrier,
        "bottleneck_history": result.history.min(dim=1).values.numpy(),
        "halvings": int(result.info["halvings"]),
        "finite": bool(torch.isfinite(result.history).all()),
        "spacing_ratio": float(seg.max() / seg.min()),
    }


def topic_point(cfg: Config, k: int, inputs: dict, rundir) -> dict:
    """At K topics: new CAVI fits, their pair of maxima, the straight line's and NEB's
    barriers, and the completion scores of both maxima."""
    train = inputs["train"]
    fit = fit_maxima(
        cfg, k, cfg.sweep_restarts, cfg.sweep_max_iter, train, rundir, f"sweep_fit_K{k}"
    )
    obj = LDAObjective(train, k, fit["alpha"], fit["eta"], mode="profile")
    pair = choose_pair(obj, fit["lam"], cfg.distinct_min)
    xa, xb, _ = endpoint_vectors(obj, fit["lam"], pair)
    line = straight_line(obj, xa, xb, cfg.n_pivots)
    path = neb_profile(obj, xa, xb, cfg, steps=cfg.sweep_steps)
    endpoints = torch.stack([xa, xb])
    heldout = obj.heldout_scores(endpoints, inputs["observed"], inputs["heldout"])["per_token"]
    return {
        "barrier_linear": line["barrier"],
        "barrier_neb": path.barrier,
        "elbo_a": path.f_a,
        "elbo_b": path.f_b,
        "heldout_per_token_a": float(heldout[0]),
        "heldout_per_token_b": float(heldout[1]),
        "mean_distance_aligned": pair["mean_distance_aligned"],
    }


def sweep_units(cfg: Config, prof, xa, xb, inputs: dict, rundir) -> tuple[dict, dict]:
    """The sweeps as independent units (name -> function), and which unit computes each
    (sweep, value) point."""
    units, keys = {}, {}
    for name, values, key in (
        ("lr", cfg.sweep_lrs, "lr"),
        ("pivots", cfg.sweep_pivots, "n_pivots"),
        ("spring", cfg.sweep_springs, "spring"),
    ):
        for value in values:
            # Keyed by the full setting, so a point two sweeps share (the default learning
            # rate at the default pivots, say) is computed once.
            point = {"lr": cfg.neb_lr, "n_pivots": cfg.n_pivots, "spring": cfg.spring, key: value}
            unit = "sweep_lr{lr}_N{n_pivots}_k{spring}".format(**point)
            units[unit] = partial(sweep_point, prof, xa, xb, cfg, **point)
            keys[(name, str(value))] = unit
    for k in cfg.sweep_topics:
        units[f"sweep_topics_{k}"] = partial(topic_point, cfg, k, inputs, rundir)
        keys[("topics", str(k))] = f"sweep_topics_{k}"
    return units, keys


def sweeps_by_name(swept: dict, keys: dict) -> dict:
    """The computed units regrouped as sweep name -> value -> point."""
    sweeps = {name: {} for name in ("lr", "pivots", "spring", "topics")}
    for (name, value), unit in keys.items():
        sweeps[name][value] = swept[unit]
    return sweeps
