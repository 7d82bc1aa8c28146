"""Study ``zoo``: VAE, beta-VAE, IWAE and VampPrior on one footing on binarized MNIST.

Every model has the same encoder and decoder (MLPs, Bernoulli likelihood, diagonal
Gaussian posterior) and is trained on the same 50,000 images with the same seeds; only
the objective or the prior differs. One table gives the test negative log-likelihood
(importance sampling, k = 5000 by default), the test ELBO and KL, the surgery terms and
the active units next to the published test NLLs (``PUBLISHED``: VAE 89.9, IWAE k = 50
87.1, VampPrior 85.57 nats), which were measured with other architectures, training
lengths, binarizations and estimators (each entry says which).

In ``default`` the IWAE starts from the trained VAE's parameters and continues with the
IWAE-50 objective (DReG gradient for the encoder), because training it from scratch costs
about 25 times a VAE per epoch on 2 cores; ``paper`` trains every model from scratch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import ConfigError
from ...objectives import ELBOObjective, IWAEObjective
from .. import vae_runs

NAME = "zoo"
DESCRIPTION = "VAE, beta-VAE, IWAE and VampPrior on binarized MNIST against published NLLs"

# Published test NLLs on MNIST (nats), each with what it was measured on: the
# binarization (the fixed one of Larochelle & Murray 2011, which this study uses, or a
# dynamic one, redrawn every epoch, whose NLLs run about 2 nats lower: Burda et al.
# 2016, README of github.com/yburda/iwae) and the estimator.
PUBLISHED = {
    "vae": {
        "nll": 89.9,
        "source": "Rezende & Mohamed 2015, Table 2: VAE with a diagonal Gaussian posterior",
        "binarization": "not stated in a source we could read",
        "estimator": "a variational bound (-ELBO), not importance sampling",
    },
    "iwae_k50": {
        "nll": 87.1,
        "source": "Burda et al. 2016, appendix D: IWAE k = 50, one stochastic layer of 50 "
        "latents behind two tanh layers of 200, 3280 epochs (their Table 1 gives 84.78 "
        "for the same model on dynamically binarized MNIST)",
        "binarization": "fixed (Larochelle & Murray), as here",
        "estimator": "importance sampling, k = 5000",
    },
    "vamp": {
        "nll": 85.57,
        "source": "Tomczak & Welling 2018: VampPrior K = 500, one stochastic layer of 40 "
        "latents, gated MLPs of 300 units, KL warm-up over 100 epochs",
        "binarization": "not determined (the authors' code supports both)",
        "estimator": "importance sampling, k = 5000",
    },
}


@dataclass(frozen=True)
class Config(vae_runs.TrainingConfig):
    """Settings of the ``zoo`` study (training settings: ``vae_runs.TrainingConfig``).

    latent, hidden : latent size d and encoder hidden widths (decoder mirrors them).
    betas : beta-VAE weights besides beta = 1 (the VAE).
    iwae_k : importance samples of the IWAE objective.
    iwae_epochs : IWAE epochs; with ``iwae_from_vae`` they continue from the trained VAE.
    n_pseudo : VampPrior pseudo-inputs K.
    """

    latent: int = 20
    hidden: tuple[int, ...] = (200, 200)
    betas: tuple[float, ...] = (0.5, 2.0, 4.0)
    iwae_k: int = 50
    iwae_epochs: int = 5
    iwae_from_vae: bool = True
    n_pseudo: int = 500

    def validate(self) -> None:
        super().validate()
        for name in ("latent", "iwae_k", "iwae_epochs", "n_pseudo"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if any(not b > 0 for b in self.betas):
            raise ConfigError(f"betas must be > 0, got {self.betas}")


PRESETS = {
    "smoke": Config(
        latent=3,
        hidden=(32,),
        betas=(2.0,),
        iwae_k=4,
        iwae_epochs=1,
        n_pseudo=10,
        epochs=1,
        nll_k=20,
        nll_n=50,
        n_train=500,
    ),
    # The tour (`elbolab demo`): 10,000 training images, 5 epochs, one beta.
    "tour": Config(
        latent=10,
        betas=(2.0,),
        iwae_k=10,
        iwae_epochs=1,
        n_pseudo=100,
        epochs=5,
        nll_k=300,
        nll_n=300,
        n_train=10000,
    ),
    "default": Config(),
    # Tomczak & Welling's (2018) recipe for every model, from their code
    # (github.com/jmtomczak/vae_vampprior, experiment.py and utils/training.py): 40
    # latents, two hidden layers of 300 units (theirs are gated; ours tanh), Adam with
    # lr 5e-4 (theirs normalizes each gradient first), batch 100, at most 2000 epochs,
    # early stopping after 50 epochs without improvement, KL warm-up over 100 epochs,
    # K = 500 pseudo-inputs, test NLL with 5000 importance samples on all 10,000 test
    # images. The IWAE (k = 50) trains from scratch on the same recipe (Burda et al.
    # used 3280 epochs with a decaying lr, batch 20, and no warm-up).
    "paper": Config(
        latent=40,
        hidden=(300, 300),
        lr=5e-4,
        batch_size=100,
        epochs=2000,
        patience=50,
        kl_warmup=100,
        n_pseudo=500,
        iwae_k=50,
        iwae_epochs=2000,
        iwae_from_vae=False,
        nll_k=5000,
        nll_n=10000,
    ),
}


def specs(cfg: Config) -> dict[str, vae_runs.ModelSpec]:
    """Model name -> spec for :mod:`elbolab.studies.vae_runs`, in training order."""
    nets = {"latent": cfg.latent, "hidden": cfg.hidden}
    out = {"vae": vae_runs.ModelSpec(**nets, label="VAE")}
    for beta in cfg.betas:
        out[f"beta_{beta:g}"] = vae_runs.ModelSpec(
            **nets, objective=ELBOObjective(beta=beta), label=f"beta-VAE (beta = {beta:g})"
        )
    out[f"iwae_k{cfg.iwae_k}"] = vae_runs.ModelSpec(
        **nets,
        objective=IWAEObjective(k=cfg.iwae_k, dreg=True),
        epochs=cfg.iwae_epochs,
        label=f"IWAE (k = {cfg.iwae_k})" + (", from the VAE" if cfg.iwae_from_vae else ""),
    )
    out["vamp"] = vae_runs.ModelSpec(
        **nets, prior="vamp", n_pseudo=cfg.n_pseudo, label=f"VampPrior (K = {cfg.n_pseudo})"
    )
    return out


def prepare(cfg: Config, data_root=None) -> dict:
    return vae_runs.load(data_root, cfg.n_train, cfg.seed)


def run(cfg: Config, data: dict, rundir):
    models = specs(cfg)
    iwae = f"iwae_k{cfg.iwae_k}"
    warm = {iwae: "vae"} if cfg.iwae_from_vae else {}
    zoo, arrays, timings = vae_runs.run_all(models, data, cfg, rundir, warm_start=warm)
    for name, r in zoo.items():
        r["kl"] = r["test_kl"]
        r["label"] = models[name].label
        if name in PUBLISHED:
            ref = PUBLISHED[name]
            r["published_test_nll"] = ref["nll"]
            r["published_setting"] = (
                f"{ref['source']}; binarization: {ref['binarization']}; "
                f"estimator: {ref['estimator']}"
            )
    metrics = {"data": vae_runs.data_summary(data), "zoo": zoo, "timings": timings}
    return metrics, arrays


def render(rundir):
    from ...report import Report, plots

    m = rundir.read_json("metrics.json")
    arr = rundir.load_arrays()
    cfg = rundir.read_json("config.json")["config"]
    names = list(m["zoo"])
    rows = [m["zoo"][n] for n in names]
    report = Report(
        "VAE zoo on binarized MNIST",
        f"{m['data']['n_train']:,} training images; d = {cfg['latent']}, hidden layers "
        f"{cfg['hidden']}; nats per datum",
    )
    report.paragraph(
        "All models share encoder and decoder architecture, data, seeds and optimizer; only "
        "the objective or the prior differs. Test NLL = -log p(x) estimated by importance "
        f"sampling with k = {rows[0]['nll_k']} samples on "
        f"{vae_runs.nll_images_text(rows[0], m['data']['n_test'])} (± standard error over "
        "those images). Published values come from other architectures and training "
        "lengths, and not all from this fixed binarization or from importance sampling "
        "(the table below says which); they are a reference, not a target these settings "
        "can reach."
    )
    report.table(
        [
            "model",
            "test NLL",
            "published NLL",
            "-ELBO, NLL images",
            "test ELBO",
            "KL",
            "I(n; z)",
            "marginal KL",
            "active units",
            "epochs",
            "train s",
        ],
        [
            [
                r["label"],
                f"{r['test_nll']:.2f} ± {r['test_nll_se']:.2f}",
                f"{r['published_test_nll']:.2f}" if "published_test_nll" in r else "",
                f"{-r['test_elbo_nll_subset']:.2f}",
                f"{r['test_elbo']:.2f}",
                f"{r['kl']:.2f}",
                f"{r['mutual_information']:.2f}",
                f"{r['marginal_kl']:.2f}",
                f"{r['active_units']} / {cfg['latent']}",
                r["epochs_run"],
                f"{r['train_seconds']:.0f}",
            ]
            for r in rows
        ],
        caption="Nats per datum. KL: the test average KL(q(z|x) || p(z)); I(n; z) and marginal "
        "KL over the training images.",
    )
    report.table(
        ["model", "published NLL", "source", "binarization", "estimator"],
        [
            [name, f"{ref['nll']:.2f}", ref["source"], ref["binarization"], ref["estimator"]]
            for name, ref in PUBLISHED.items()
        ],
        caption="What each published number was measured on.",
    )
    fig, axes = plots.new_figure(width=11, height=4, ncols=2)
    x = np.arange(len(names))
    axes[0].bar(x, [r["test_nll"] for r in rows], yerr=[2 * r["test_nll_se"] for r in rows])
    pub = [(i, r["published_test_nll"]) for i, r in enumerate(rows) if "published_test_nll" in r]
    if pub:
        axes[0].scatter(
            *zip(*pub, strict=True), color="k", marker="_", s=400, zorder=3, label="published"
        )
        axes[0].legend(frameon=False)
    lo = min(min(r["test_nll"] for r in rows), min((p for _, p in pub), default=np.inf))
    axes[0].set_ylim(lo - 5, max(r["test_nll"] for r in rows) + 5)
    axes[0].set_xticks(x, names, rotation=30)
    axes[0].set_ylabel("test NLL (nats per datum; lower is better)")
    axes[0].set_xlabel("model")
    w = 0.4
    axes[1].bar(x - w / 2, [r["mutual_information"] for r in rows], w, label="I(n; z)")
    axes[1].bar(x + w / 2, [r["marginal_kl"] for r in rows], w, label="marginal KL")
    axes[1].axhline(rows[0]["log_n"], color="k", ls="--", lw=1, label="log N")
    axes[1].set_xticks(x, names, rotation=30)
    axes[1].set_ylabel("nats per datum")
    axes[1].set_xlabel("model")
    axes[1].legend(frameon=False)
    report.figure(
        rundir.save_figure(fig, "zoo"),
        "Left: test NLL per model (error bars two standard errors) and the published value "
        "where one exists. Right: the surgery terms of each model over the training images.",
    )
    fig, ax = plots.new_figure()
    for n in names:
        v = arr[f"valid_loss_{n}"]
        ax.plot(np.arange(1, len(v) + 1), v, label=n)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation loss (nats per datum)")
    ax.legend(frameon=False, fontsize=8)
    report.figure(
        rundir.save_figure(fig, "training"),
        f"Validation loss per epoch ({m['data']['n_valid']:,} images): the negative of each "
        "model's own training objective (beta-ELBO, IWAE bound or ELBO), so the curves differ "
        "in what they measure.",
    )
    return report


def _nll_text(r: dict) -> str:
    return f"{r['test_nll']:.2f} ± {r['test_nll_se']:.2f}"


def _better(a: dict, b: dict) -> tuple[float, float]:
    """How much lower a's test NLL is than b's, and the standard error of the difference
    (the two are estimated on the same images, so treating them as independent
    overstates the error: the verdict errs on the side of "not shown")."""
    return b["test_nll"] - a["test_nll"], float(np.hypot(a["test_nll_se"], b["test_nll_se"]))


def claims(cfg: Config, metrics: dict) -> list:
    from ..claims import Claim, verdict

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
