"""The papers' claims against a run's metrics: each model's test NLL against the
published one, and the orderings the papers report."""

from __future__ import annotations

import numpy as np

from ..claims import Claim, verdict
from .config import Config
from .published import PUBLISHED


def _nll_text(r: dict) -> str:
    return f"{r['test_nll']:.2f} ± {r['test_nll_se']:.2f}"


def _better(a: dict, b: dict) -> tuple[float, float]:
    """How much lower a's test NLL is than b's, and the standard error of the difference
    (the two are estimated on the same images, so treating them as independent
    overstates the error: the verdict errs on the side of "not shown")."""
    return b["test_nll"] - a["test_nll"], float(np.hypot(a["test_nll_se"], b["test_nll_se"]))


def claims(cfg: Config, metrics: dict) -> list[Claim]:
    zoo = metrics["zoo"]
    vae, iwae, vamp = zoo["vae"], zoo[f"iwae_k{cfg.iwae_k}"], zoo["vamp"]
    budget = (
        f"{vae['epochs_run']} VAE epochs; NLL with k = {vae['nll_k']} on {vae['nll_n']:,} "
        "test images"
    )
    rows = []
    for name, ref, label in (
        ("iwae", "Burda et al. 2016, Table 1", f"IWAE (k = {cfg.iwae_k})"),
        ("vamp", "Tomczak & Welling 2018, Table 2", f"VampPrior (K = {cfg.n_pseudo})"),
    ):
        r = iwae if name == "iwae" else vamp
        gain, se = _better(r, vae)
        rows.append(
            Claim(
                claim=f"{label} reaches a lower test NLL than the VAE with the same networks",
                reference=ref,
                measured=f"VAE {_nll_text(vae)}, {label} {_nll_text(r)} nats; "
                f"difference {gain:.2f} ± {se:.2f}",
                verdict=verdict(gain > 2 * se, partly=gain > 0),
                reason=f"holds when the difference exceeds two standard errors; {budget}",
            )
        )
    betas = sorted((1.0, *cfg.betas))
    kls = [zoo["vae" if b == 1.0 else f"beta_{b:g}"]["test_kl"] for b in betas]
    falling = bool(np.all(np.diff(kls) < 0))
    rows.append(
        Claim(
            claim="a larger KL weight beta buys a smaller KL term (less information in z) "
            "at the cost of reconstruction",
            reference="Higgins et al. 2017; Alemi et al. 2018 (rate-distortion)",
            measured=", ".join(f"beta {b:g}: KL {k:.2f}" for b, k in zip(betas, kls, strict=True))
            + " nats",
            verdict=verdict(falling, partly=kls[-1] < kls[0]),
            reason="holds when the test KL falls at every step of beta",
        )
    )
    for name, r in zoo.items():
        if name not in PUBLISHED:
            continue
        ref = PUBLISHED[name]
        gap = r["test_nll"] - ref["nll"]
        rows.append(
            Claim(
                claim=f"{r['label']}: the published test NLL of {ref['nll']} nats",
                reference=ref["source"],
                measured=f"{_nll_text(r)} nats ({gap:+.2f} against the paper)",
                verdict=verdict(abs(gap) <= 1.0, partly=abs(gap) <= 3.0),
                reason=f"holds within 1 nat, partly within 3; {budget}; the paper's "
                f"binarization: {ref['binarization']}; its estimator: {ref['estimator']}",
            )
        )
    return rows
