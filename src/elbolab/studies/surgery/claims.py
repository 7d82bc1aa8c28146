"""Hoffman & Johnson's claims against a run's metrics."""

from __future__ import annotations

import numpy as np

from ..claims import Claim, verdict
from .config import Config


def claims(cfg: Config, metrics: dict) -> list[Claim]:
    rows = {int(d): r for d, r in metrics["surgery"].items()}
    ds = sorted(rows)
    log_n = rows[ds[0]]["log_n"]
    big = [d for d in ds if d >= 10] or ds[-1:]
    near = [d for d in big if rows[d]["mutual_information"] >= 0.9 * log_n]
    mkl = [rows[d]["marginal_kl"] for d in ds]
    grows = bool(np.all(np.diff(mkl) > 0))
    share = rows[ds[-1]]["marginal_kl"] / max(rows[ds[-1]]["average_kl"], 1e-12)
    return [
        Claim(
            claim="with enough latent dimensions the index-code mutual information nears its "
            "ceiling log N: the encoder tells the training points apart",
            reference="Hoffman & Johnson 2016, section 3",
            measured=", ".join(f"d = {d}: I = {rows[d]['mutual_information']:.2f}" for d in big)
            + f" nats (log N = {log_n:.2f})",
            verdict=verdict(len(near) == len(big), partly=bool(near)),
            reason="holds when I(n; z) >= 0.9 log N at every latent size >= 10",
        ),
        Claim(
            claim="the marginal KL(q(z) || p(z)) is a sizeable part of the KL term and grows "
            "with the latent size: the prior is a poor match to the aggregate posterior",
            reference="Hoffman & Johnson 2016, section 3",
            measured=", ".join(f"d = {d}: {m:.2f}" for d, m in zip(ds, mkl, strict=True))
            + f" nats; {share:.0%} of the average KL at d = {ds[-1]}",
            verdict=verdict(grows and share >= 0.1, partly=grows or share >= 0.1),
            reason="holds when the marginal KL rises with d and is at least 10% of the "
            "average KL at the largest d",
        ),
    ]
