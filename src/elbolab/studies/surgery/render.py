"""The ``surgery`` study's report: figures ``surgery_terms`` and
``training_and_kl_per_dimension`` and a table of every model's numbers."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..vae_runs import nll_images_text

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ...report import Report

# matplotlib loads with the report package, when a report is drawn (not at import).

TERMS = {
    "average_kl": "average KL",
    "mutual_information": "mutual information I(n; z)",
    "marginal_kl": "marginal KL(q(z) || p(z))",
}


def terms_figure(ds: list[int], rows: list[dict]) -> Figure:
    """The three surgery terms per latent size, error bars two Monte Carlo standard
    errors, and log N, the ceiling of the mutual information."""
    from ...report import plots

    fig, ax = plots.new_figure()
    log_n = rows[0]["log_n"]
    plots.reference_line(ax, log_n, f"log N = {log_n:.2f}", dashed=True)
    groups = {
        label: ([r[key] for r in rows], [2 * r[f"{key}_se"] for r in rows])
        for key, label in TERMS.items()
    }
    plots.grouped_error_bar_plot(
        ax, [f"d = {d}" for d in ds], groups, "latent size", "nats per datum"
    )
    return fig


def training_figure(ds: list[int], arr) -> Figure:
    """Left: validation ELBO per epoch; right: KL per latent dimension, largest first."""
    from ...report import plots

    fig, axes = plots.new_figure(width=11, height=4, ncols=2)
    elbo_curves, kl_curves = {}, {}
    for d in ds:
        v = arr[f"valid_loss_d{d}"]
        elbo_curves[f"d = {d}"] = (np.arange(1, len(v) + 1), -v)
        kl = np.sort(arr[f"kl_per_dimension_d{d}"])[::-1]
        kl_curves[f"d = {d}"] = (np.arange(1, len(kl) + 1), kl)
    plots.curves_plot(axes[0], elbo_curves, "epoch", "validation ELBO (nats per datum)")
    plots.curves_plot(
        axes[1],
        kl_curves,
        "latent dimension (sorted)",
        "average KL of the dimension (nats)",
        styles=dict.fromkeys(kl_curves, "o-"),
    )
    return fig


def render(rundir) -> Report:
    """The report of a finished run: the surgery terms per latent size, a table of every
    number, and the training curves and KL per latent dimension."""
    from ...report import Report

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
    report.figure(
        rundir.save_figure(terms_figure(ds, rows), "surgery_terms"),
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
            f"{nll_images_text(rows[0], m['data']['n_test'])} (± standard error over "
            "images), and -ELBO on the same images. Active "
            "units: Cov_x(E_q[z_i]) > 0.01."
        ),
    )
    report.figure(
        rundir.save_figure(training_figure(ds, arr), "training_and_kl_per_dimension"),
        f"Left: validation ELBO per epoch ({m['data']['n_valid']:,} images). Right: KL per latent "
        "dimension averaged over the training images, largest first; dimensions near 0 are "
        "collapsed.",
    )
    return report
