"""Parts 1 and 2: does the linear VAE's ELBO reach the exact maximum likelihood of pPCA?

Part 1 trains linear VAEs at one latent size on the analytic ELBO (L-BFGS) and on the
stochastic ELBO (Adam) and compares their decoders with pPCA's (Gram matrices); part 2
repeats the analytic fit against latent size, with sigma^2 learned and fixed. The fits
here are also those of part 5's random starts (:mod:`.spurious_maxima`).
"""

from __future__ import annotations

import numpy as np
import torch

from ... import checks
from ...models import PPCA, LinearVAE, fit_linear_vae
from ...models.linear_vae import fit_linear_vae_lbfgs
from ...progress import progress
from .config import Config


def adam_fit(
    x: np.ndarray,
    q: int,
    steps: int,
    lr: float,
    seed: int,
    analytic: bool,
    sigma2: float | None = None,
    desc: str = "",
) -> tuple[LinearVAE, dict]:
    """:func:`fit_linear_vae` (Adam, cosine decay) with a progress bar showing the ELBO."""
    bar = progress(total=steps, desc=desc, unit="step")
    last = [0]

    def tick(step, model, record):
        bar.update(step - last[0])
        last[0] = step
        bar.set_postfix(elbo=f"{record['elbo_analytic_per_datum']:.2f}")

    try:
        return fit_linear_vae(
            x,
            q,
            steps,
            lr,
            seed,
            analytic=analytic,
            callback=tick,
            sigma2=sigma2,
            learn_sigma2=sigma2 is None,
            lr_schedule="cosine",
        )
    finally:
        bar.close()


def lbfgs_fit(
    cfg: Config, x: np.ndarray, q: int, seed: int, sigma2: float | None = None
) -> tuple[LinearVAE, dict, float]:
    """L-BFGS on the analytic ELBO; (model, curves, ELBO per datum on x)."""
    model, curves = fit_linear_vae_lbfgs(
        x, q, seed, max_iter=cfg.lbfgs_iter, sigma2=sigma2, learn_sigma2=sigma2 is None
    )
    with torch.no_grad():
        value = float(model.elbo_analytic(torch.as_tensor(x))["elbo"]) / len(x)
    return model, curves, value


def against_ppca(cfg: Config, x: np.ndarray, rundir) -> dict:
    """Part 1: pPCA's exact log-likelihood against linear VAEs trained on the analytic
    and on the stochastic ELBO at q = ``latent``, and the Gram matrices of the decoders."""
    ppca = PPCA(cfg.latent).fit(x)
    result = {"ppca_log_likelihood": ppca.score(x), "ppca_sigma2": ppca.sigma2_}
    gram = {"gram_ppca": ppca.components_.T @ ppca.components_}
    xt = torch.as_tensor(x)
    gen = checks.torch_generator(cfg.seed + 1)
    # The analytic ELBO with L-BFGS (deterministic, full batch).
    model, curves, value = lbfgs_fit(cfg, x, cfg.latent, cfg.seed)
    with torch.no_grad():
        mc = float(model.elbo_stochastic(xt, gen, cfg.eval_samples)["elbo"]) / len(x)
    result["trained_analytic"] = {
        "optimizer": "L-BFGS (strong Wolfe), encoder at its closed-form optimum",
        "elbo_analytic": value,
        "elbo_stochastic_estimate": mc,
        "sigma2": float(model.sigma2.detach()),
        "iterations": int(curves["iteration"][-1]),
        "evaluations": int(curves["evaluations"][-1]),
        "curve_step": curves["iteration"],
        "curve_elbo_analytic": curves["elbo_per_datum"],
    }
    models = {"analytic": model}
    # The stochastic (reparameterised) ELBO with its own optimizer, Adam.
    model, curves = adam_fit(
        x, cfg.latent, cfg.steps, cfg.lr, cfg.seed, False, desc="linear VAE (stochastic)"
    )
    with torch.no_grad():
        value = float(model.elbo_analytic(xt)["elbo"]) / len(x)
        mc = float(model.elbo_stochastic(xt, gen, cfg.eval_samples)["elbo"]) / len(x)
    result["trained_stochastic"] = {
        "optimizer": f"Adam, {cfg.steps} steps, lr {cfg.lr}, cosine decay",
        "elbo_analytic": value,
        "elbo_stochastic_estimate": mc,
        "sigma2": float(model.sigma2.detach()),
        "curve_step": curves["step"],
        "curve_elbo_analytic": curves["elbo_analytic_per_datum"],
    }
    models["stochastic"] = model
    for name, model in models.items():
        rundir.save_model(f"part1_{name}", model)
        W = model.W.detach().numpy()
        gram[f"gram_vae_{name}"] = W.T @ W
        gram[f"gram_cross_{name}"] = ppca.components_.T @ W
    return {"result": result, "gram": gram}


def against_latent_size(cfg: Config, x: np.ndarray, rundir) -> dict:
    """Part 2: pPCA and the linear VAE (L-BFGS) for each of ``latent_sizes``, sigma^2
    learned and fixed at ``fixed_sigma2``; one row each."""
    rows = []
    for q in cfg.latent_sizes:
        for mode, sigma2 in (("learned", None), ("fixed", cfg.fixed_sigma2)):
            ppca = PPCA(q, sigma2=sigma2).fit(x)
            model, curves, value = lbfgs_fit(cfg, x, q, cfg.seed, sigma2)
            rundir.save_model(f"part2_q{q}_{mode}", model)
            W = model.W.detach().numpy()
            rows.append(
                {
                    "latent": q,
                    "sigma2": mode,
                    "ppca_log_likelihood": ppca.score(x),
                    "elbo_analytic": value,
                    "iterations": int(curves["iteration"][-1]),
                    # Columns of W that carry no signal: the collapsed latent dimensions.
                    "ppca_zero_columns": int(
                        (np.linalg.norm(ppca.components_, axis=0) < 1e-8).sum()
                    ),
                    "vae_small_columns": int((np.linalg.norm(W, axis=0) < 1e-2).sum()),
                }
            )
    return {"rows": rows}
