"""The ``zoo`` study's report: a table of every model against the published NLLs, and
the figures ``zoo`` (test NLL and surgery terms per model) and ``training``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..vae_runs import nll_images_text
from .published import PUBLISHED

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ...report import Report

# matplotlib loads with the report package, when a report is drawn (not at import).


def nll_and_surgery_figure(names: list[str], rows: list[dict]) -> Figure:
    """Left: test NLL per model (error bars two standard errors) with the published value
    where there is one; right: the surgery terms over the training images, and log N."""
    from ...report import plots

    fig, axes = plots.new_figure(width=11, height=4, ncols=2)
    nll = [r["test_nll"] for r in rows]
    plots.bar_plot(
        axes[0],
        names,
        nll,
        "model",
        "test NLL (nats per datum; lower is better)",
        errors=[2 * r["test_nll_se"] for r in rows],
    )
    pub = [(i, r["published_test_nll"]) for i, r in enumerate(rows) if "published_test_nll" in r]
    if pub:
        axes[0].scatter(
            *zip(*pub, strict=True), color="k", marker="_", s=400, zorder=3, label="published"
        )
        axes[0].legend(frameon=False)
    lo = min(min(nll), min((p for _, p in pub), default=np.inf))
    axes[0].set_ylim(lo - 5, max(nll) + 5)
    plots.reference_line(axes[1], rows[0]["log_n"], "log N", dashed=True)
    groups = {
        "I(n; z)": ([r["mutual_information"] for r in rows], None),
        "marginal KL": ([r["marginal_kl"] for r in rows], None),
    }
    plots.grouped_error_bar_plot(axes[1], names, groups, "model", "nats per datum")
    for ax in axes:
        ax.tick_params(axis="x", labelrotation=30)
    return fig


def training_figure(names: list[str], arr) -> Figure:
    """Validation loss per epoch of every model (each its own objective's negative)."""
    from ...report import plots

    fig, ax = plots.new_figure()
    curves = {}
    for n in names:
        v = arr[f"valid_loss_{n}"]
        curves[n] = (np.arange(1, len(v) + 1), v)
    plots.curves_plot(
        ax, curves, "epoch", "validation loss (nats per datum)", legend={"fontsize": 8}
    )
    return fig


def render(rundir) -> Report:
    """The report of a finished run: the table of every model against the published
    NLLs, what those were measured on, and the figures ``zoo`` and ``training``."""
    from ...report import Report

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
        f"{nll_images_text(rows[0], m['data']['n_test'])} (± standard error over "
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
    report.figure(
        rundir.save_figure(nll_and_surgery_figure(names, rows), "zoo"),
        "Left: test NLL per model (error bars two standard errors) and the published value "
        "where one exists. Right: the surgery terms of each model over the training images.",
    )
    report.figure(
        rundir.save_figure(training_figure(names, arr), "training"),
        f"Validation loss per epoch ({m['data']['n_valid']:,} images): the negative of each "
        "model's own training objective (beta-ELBO, IWAE bound or ELBO), so the curves differ "
        "in what they measure.",
    )
    return report
