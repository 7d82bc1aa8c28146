"""Paths between the aligned maxima: the straight line, NEB in profile and full mode,
AutoNEB and the Bezier curve, each summarized as a record with its highest point."""

from __future__ import annotations

import torch

from ...landscape import (
    Band,
    Cycles,
    LDAObjective,
    Optimizer,
    apply_permutation,
    autoneb,
    barrier,
    bezier,
    bezier_points,
    dense_points,
    dense_values,
    linear_path,
    neb,
    path_length,
)
from .config import Config


def straight_line(f, xa, xb, n_pivots: int) -> dict:
    """The straight line from xa to xb: f on its dense resampling, its barrier and length."""
    pivots = linear_path(xa, xb, n_pivots)
    with torch.no_grad():
        dense = dense_values(f, pivots, per_segment=4, batch_size=16)
    _, positions = dense_points(pivots, 4)
    return {
        "dense_values": dense.numpy(),
        "dense_positions": positions.numpy(),
        "barrier": barrier(dense, dense[0], dense[-1]),
        "length": path_length(pivots),
    }


def peak_point(result) -> torch.Tensor:
    """The highest point of a path's dense resampling, as a vector.

    Only that one point is rebuilt: in full mode a vector holds every token's phi, so the
    whole dense resampling would not fit in memory.
    """
    i = int(torch.argmax(result.dense_values))
    m = result.dense_values.shape[0]
    if result.method == "bezier":  # dense points at evenly spaced t on the curve
        t = torch.tensor([i / (m - 1)], dtype=result.pivots.dtype)
        return bezier_points(result.info["control_points"], t)[0]
    per_segment, rest = divmod(m - 1, result.pivots.shape[0] - 1)
    if rest:
        raise AssertionError(
            f"{m} dense points do not split into {result.pivots.shape[0] - 1} equal segments"
        )
    seg, j = divmod(i, per_segment)
    if seg == result.pivots.shape[0] - 1:
        return result.pivots[-1]
    p0, p1 = result.pivots[seg], result.pivots[seg + 1]
    return p0 + (j / per_segment) * (p1 - p0)


def path_record(result, keep_pivots: bool, obj) -> dict:
    """Summary and arrays of a path, with the topics at its highest point (for polishing)."""
    record = {
        "summary": result.summary(),
        "peak_lam": obj.components(peak_point(result)).detach().numpy(),
        "peak_value": float(result.dense_values.max()),
        "values": result.values.detach().numpy(),
        "history": result.history.detach().numpy(),
        "dense_values": result.dense_values.detach().numpy(),
        "dense_positions": result.dense_positions.detach().numpy(),
    }
    if keep_pivots:
        record["pivots"] = result.pivots.detach().numpy()
    if "objective" in result.info:  # Bezier: mean of f over the sampled t, per step
        record["objective"] = torch.as_tensor(result.info["objective"]).numpy()
    return record


def neb_profile(obj, xa, xb, cfg: Config, **overrides):
    """NEB in profile mode with the climbing image; ``overrides`` may set ``n_pivots``,
    ``steps``, ``lr`` and ``spring``."""
    settings = {
        "n_pivots": cfg.n_pivots,
        "steps": cfg.neb_steps,
        "lr": cfg.neb_lr,
        "spring": cfg.spring,
        **overrides,
    }
    return neb(
        obj,
        xa,
        xb,
        settings["n_pivots"],
        settings["steps"],
        optimizer=Optimizer(lr=settings["lr"]),
        band=Band(spring=settings["spring"], climbing=True),
        generator=cfg.seed,
        batch_size=16,
    )


def autoneb_profile(prof, xa, xb, cfg: Config):
    """AutoNEB in profile mode with the climbing image."""
    return autoneb(
        prof,
        xa,
        xb,
        steps=cfg.autoneb_steps,
        optimizer=Optimizer(lr=cfg.neb_lr),
        cycles=Cycles(cfg.autoneb_cycles, climbing=True),
        generator=cfg.seed,
        batch_size=16,
    )


def bezier_profile(prof, xa, xb, cfg: Config):
    """The Bezier curve in profile mode."""
    return bezier(
        prof,
        xa,
        xb,
        degree=cfg.bezier_degree,
        steps=cfg.bezier_steps,
        optimizer=Optimizer(lr=cfg.neb_lr),
        n_t=cfg.bezier_n_t,
        generator=cfg.seed,
        batch_size=16,
    )


def full_mode(cfg: Config, train, fit: dict, pair: dict) -> dict:
    """The straight line and NEB in full mode (phi and gamma in the parameters)."""
    lam = fit["lam"]
    full = LDAObjective(train, cfg.n_topics, fit["alpha"], fit["eta"], mode="full")
    fa = full.to_vector(lam[pair["a"]])
    fb = full.to_vector(apply_permutation(lam[pair["b"]], pair["permutation"], 0))
    line = straight_line(full, fa, fb, cfg.n_pivots)
    path = neb(
        full,
        fa,
        fb,
        n_pivots=cfg.full_pivots,
        steps=cfg.full_steps,
        optimizer=Optimizer(lr=cfg.full_lr),
        band=Band(spring=cfg.spring, climbing=True),
        generator=cfg.seed,
        batch_size=4,
    )
    return {"line": line, "neb": path_record(path, False, full)}
