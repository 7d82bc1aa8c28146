"""Study ``surgery``: how a VAE's KL term splits, for latent sizes 2, 10 and 20.

Hoffman & Johnson ("ELBO surgery", 2016) write the average KL of the ELBO as

    (1/N) sum_n KL(q(z | x_n) || p(z)) = I_q(n; z) + KL(q(z) || p(z)),

with q(z) = (1/N) sum_n q(z | x_n) the aggregate posterior over the N training points
and I_q(n; z) <= log N the index-code mutual information. For each latent size this
study trains a VAE on the fixed binarized MNIST (50,000 training images) and reports
the three terms over all N points (no minibatch approximation), with Monte Carlo
standard errors, next to the reconstruction, the ELBO, the importance-sampled test
log-likelihood and the active units (nats per datum throughout).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import ConfigError
from .. import vae_runs

NAME = "surgery"
DESCRIPTION = "ELBO surgery of VAEs with latent sizes 2, 10, 20 on binarized MNIST"


@dataclass(frozen=True)
class Config(vae_runs.TrainingConfig):
    """Settings of the ``surgery`` study (training settings: ``vae_runs.TrainingConfig``).

    latents : latent sizes d, one VAE each.
    hidden : encoder hidden widths (the decoder mirrors them).
    """

    latents: tuple[int, ...] = (2, 10, 20)
    hidden: tuple[int, ...] = (200, 200)

    def validate(self) -> None:
        super().validate()
        if not self.latents or min(self.latents) < 1:
            raise ConfigError(f"latents must be integers >= 1, got {self.latents}")


PRESETS = {
    "smoke": Config(latents=(2, 3), hidden=(32,), epochs=1, nll_k=20, nll_n=50, n_train=500),
    # The tour (`elbolab demo`): 10,000 training images, 6 epochs.
    "tour": Config(epochs=6, nll_k=300, nll_n=300, n_train=10000),
    "default": Config(),
    # Hoffman & Johnson (2016) do not give their architecture or training in a source we
    # could read. Hidden layers of 500 units follow Kingma & Welling (2014, section 5:
    # 500 hidden units for MNIST); training runs to convergence with Tomczak & Welling's
    # recipe (github.com/jmtomczak/vae_vampprior, experiment.py: Adam, lr 5e-4, batch
    # 100, at most 2000 epochs, early stopping after 50 without improvement), without
    # KL warm-up, since the study measures the plain ELBO's KL terms; the NLL with
    # k = 5000 on all 10,000 test images.
    "paper": Config(
        hidden=(500, 500),
        epochs=2000,
        patience=50,
        lr=5e-4,
        batch_size=100,
        nll_k=5000,
        nll_n=10000,
    ),
}


def prepare(cfg: Config, data_root=None) -> dict:
    return vae_runs.load(data_root, cfg.n_train, cfg.seed)


def run(cfg: Config, data: dict, rundir):
    specs = {f"d{d}": vae_runs.ModelSpec(latent=d, hidden=cfg.hidden) for d in cfg.latents}
    results, arrays, timings = vae_runs.run_all(specs, data, cfg, rundir)
    metrics = {
        "data": vae_runs.data_summary(data),
        "surgery": {str(d): results[f"d{d}"] for d in cfg.latents},
        "timings": timings,
    }
    return metrics, arrays


def render(rundir):
    from ...report import Report, plots

    m = rundir.read_json("metrics.json")
    arr = rundir.load_arrays()
    cfg = rundir.read_json("config.json")["config"]
    ds = [int(d) for d in m["surgery"]]
    rows = [m["surgery"][str(d)] for d in ds]
    n = m["data"]["n_train"]
    report = Report(
        "ELBO surgery of VAEs on binarized MNIST",
        f"{n:,} training images; nats per datum; hidden layers {cfg['hidden']}",
    )
    report.paragraph(
        "Average KL = index-code mutual information I(n; z) + marginal KL(q(z) || p(z)), "
        f"with q(z) the average of the encoder's posteriors over all {n:,} training images "
        f"(Hoffman & Johnson 2016). I(n; z) is at most log N = {rows[0]['log_n']:.3f} nats. "
        "Errors are Monte Carlo standard errors (one sample per image)."
    )
    fig, ax = plots.new_figure()
    x = np.arange(len(ds))
    width = 0.25
    for i, (key, label) in enumerate(
        (
            ("average_kl", "average KL"),
            ("mutual_information", "mutual information I(n; z)"),
            ("marginal_kl", "marginal KL(q(z) || p(z))"),
        )
    ):
        ax.bar(
            x + (i - 1) * width,
            [r[key] for r in rows],
            width,
            yerr=[2 * r[f"{key}_se"] for r in rows],
            label=label,
        )
    ax.axhline(rows[0]["log_n"], color="k", ls="--", lw=1, label=f"log N = {rows[0]['log_n']:.2f}")
    ax.set_xticks(x, [f"d = {d}" for d in ds])
    ax.set_xlabel("latent size")
    ax.set_ylabel("nats per datum")
    ax.legend(frameon=False)
    report.figure(
        rundir.save_figure(fig, "surgery_terms"),
        f"The surgery terms per latent size ({n:,} training images, nats per datum; error bars "
        "two Monte Carlo standard errors). The average KL is the sum of the other two.",
    )
    report.table(
        [
            "d",
            "reconstruction",
            "average KL",
            "I(n; z)",
            "marginal KL",
            "log N",
            "train ELBO",
            "test ELBO",
            "test NLL",
            "-ELBO, NLL images",
            "active units",
        ],
        [
            [
                d,
                f"{r['reconstruction']:.2f} ± {r['reconstruction_se']:.2f}",
                f"{r['average_kl']:.3f} ± {r['average_kl_se']:.3f}",
                f"{r['mutual_information']:.3f} ± {r['mutual_information_se']:.3f}",
                f"{r['marginal_kl']:.3f} ± {r['marginal_kl_se']:.3f}",
                f"{r['log_n']:.3f}",
                f"{r['train_elbo']:.2f}",
                f"{r['test_elbo']:.2f}",
                f"{r['test_nll']:.2f} ± {r['test_nll_se']:.2f}",
                f"{-r['test_elbo_nll_subset']:.2f}",
                f"{r['active_units']} / {d}",
            ]
            for d, r in zip(ds, rows, strict=True)
        ],
        caption=(
            "Nats per datum. Surgery terms and train ELBO over the training images; test ELBO "
            f"over the {m['data']['n_test']:,} test images; test NLL = -log p(x) by importance "
            f"sampling with k = {rows[0]['nll_k']} on "
            f"{vae_runs.nll_images_text(rows[0], m['data']['n_test'])} (± standard error over "
            "images), and -ELBO on the same images. Active "
            "units: Cov_x(E_q[z_i]) > 0.01."
        ),
    )
    fig, axes = plots.new_figure(width=11, height=4, ncols=2)
    for d in ds:
        v = arr[f"valid_loss_d{d}"]
        axes[0].plot(np.arange(1, len(v) + 1), -v, label=f"d = {d}")
        kl = np.sort(arr[f"kl_per_dimension_d{d}"])[::-1]
        axes[1].plot(np.arange(1, len(kl) + 1), kl, marker="o", label=f"d = {d}")
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("validation ELBO (nats per datum)")
    axes[1].set_xlabel("latent dimension (sorted)")
    axes[1].set_ylabel("average KL of the dimension (nats)")
    for ax in axes:
        ax.legend(frameon=False)
    report.figure(
        rundir.save_figure(fig, "training_and_kl_per_dimension"),
        f"Left: validation ELBO per epoch ({m['data']['n_valid']:,} images). Right: KL per latent "
        "dimension averaged over the training images, largest first; dimensions near 0 are "
        "collapsed.",
    )
    return report


def claims(cfg: Config, metrics: dict) -> list:
    from ..claims import Claim, verdict

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
