"""The report of a finished run, from config.json, metrics.json and arrays.npz only."""

from __future__ import annotations

import numpy as np

from .metrics import NATS


def _render_surgery(report, metrics: dict, ks: list[int]) -> None:
    """The ELBO-surgery table and the comparison with a VAE's numbers."""
    rows, margs, best_margs = [], [], []
    for k in ks:
        r = metrics["per_k"][str(k)]["surgery"]
        b = metrics["per_k"][str(k)]["surgery_best_prior"]
        margs.append(r["marginal_kl"])
        best_margs.append(b["marginal_kl"])
        rows.append(
            [
                k,
                f"{metrics['per_k'][str(k)]['alpha']:.3g}",
                f"{r['average_kl']:.3f}",
                f"{r['mutual_info']:.3f} ± {r['se_mutual_info']:.3f}",
                f"{r['marginal_kl']:.3f} ± {r['se_marginal_kl']:.3f}",
                f"{r['marginal_kl'] / r['average_kl']:.0%}",
                f"{min(b['alpha']):.3g} to {max(b['alpha']):.3g}",
                f"{b['marginal_kl']:.3f} ± {b['se_marginal_kl']:.3f}",
            ]
        )
    first = metrics["per_k"][str(ks[0])]["surgery"]
    report.paragraph(
        "ELBO surgery (Hoffman & Johnson 2016) of the best restart's document-topic "
        "posteriors q(theta_d) = Dirichlet(gamma_d) over the training documents: the "
        "average KL(q(theta_d) || Dirichlet(alpha)) of the ELBO equals the mutual "
        f"information between the document index and theta (at most log D = "
        f"{first['log_n']:.3f} nats) plus the marginal KL from the aggregate posterior "
        "(1/D) sum_d q(theta_d) to the prior, which a prior equal to the aggregate "
        "posterior would remove from the bound. The marginal KL is estimated by Monte "
        f"Carlo ({first['n_samples']} draws per document, the mixture of all D posteriors "
        "evaluated exactly); ± is one standard error. The model's alpha is held fixed "
        "during the fit (not estimated as in Blei et al.'s 2003 variational EM), so the "
        "last two columns replace it by the Dirichlet closest to the posteriors (the "
        "minimizer of the average KL, hence of the marginal KL over all Dirichlet priors, "
        "the mutual information being the same for every prior): what is left there no "
        "Dirichlet prior removes."
    )
    report.table(
        [
            "K",
            "alpha",
            "average KL (nats/doc)",
            "I(d; theta) (nats/doc)",
            "marginal KL (nats/doc)",
            "marginal / average KL",
            "closest Dirichlet: alpha_k",
            "its marginal KL (nats/doc)",
        ],
        rows,
        caption="ELBO surgery of LDA's document-topic posteriors, nats per training document.",
    )
    below = [k for k, m in zip(ks, best_margs, strict=True) if m < NATS]
    above = [k for k in ks if k not in below]
    parts = []
    if below:
        parts.append(
            f"better than a VAE's matches N(0, I) at K = {', '.join(map(str, below))} (under "
            f"{NATS:g} nat per document)"
        )
    if above:
        parts.append(
            f"no better at K = {', '.join(map(str, above))} (at least {NATS:g} nat, the "
            "order of a VAE's)"
        )
    trend = ""
    if len(ks) > 1 and np.all(np.diff(best_margs) > 0):
        trend = "; the mismatch grows with the number of topics"
    report.paragraph(
        "Marginal KL with the closest Dirichlet prior: "
        + ", ".join(f"K = {k}: {m:.2f}" for k, m in zip(ks, best_margs, strict=True))
        + " nats per document. The surgery study measures a VAE's marginal KL on binarized "
        "MNIST of the order of nats for latent sizes 10 and 20. So LDA's aggregate posterior "
        f"matches a Dirichlet prior {' and '.join(parts)}{trend}."
    )


def _start_sentence(init: str | None) -> str:
    """Where the fits started: the saved model of ``init`` or random topics."""
    if init:
        return f"The fit starts from the topics of the saved model {init} (init)."
    return (
        "Every restart starts from its own random topics (restart r from seed "
        "[seed, r]), so its result does not depend on where it ran."
    )


def render(rundir):
    """Figures and report from config.json, metrics.json and arrays.npz."""
    from ...report import Report, plots

    metrics = rundir.read_json("metrics.json")
    arrays = rundir.load_arrays()
    data = metrics["data"]
    ks = [int(k) for k in metrics["per_k"]]
    tokens = data["n_train_tokens"]

    report = Report(
        "LDA by batch CAVI",
        f"{data['source']}: {data['n_train_docs']} training documents, "
        f"{tokens:,} tokens, {data['n_words']:,} words",
    )
    report.paragraph(
        "The ELBO is the full evidence lower bound in nats with every Dirichlet normalizer, "
        "summed over the training documents; here it is divided by the number of training "
        "tokens. " + _start_sentence(rundir.read_json("config.json")["config"].get("init"))
    )
    fig, axes = plots.new_figure(width=6.4 * min(len(ks), 3) / 1.5, height=4.0, ncols=len(ks))
    for ax, k in zip(np.atleast_1d(axes), ks, strict=True):
        history = arrays[f"history_K{k}"] / tokens
        its = np.arange(1, history.shape[0] + 1)
        plots.line_plot(
            ax,
            its,
            {f"restart {r}": history[:, r] for r in range(history.shape[1])},
            xlabel="CAVI iteration",
            ylabel="ELBO per token (nats)",
            title=f"K = {k}",
        )
    figure = rundir.save_figure(fig, "elbo_curves")
    report.figure(
        figure,
        f"ELBO per training token (nats) after each CAVI iteration, one line per restart "
        f"({tokens:,} tokens). The curves never decrease.",
    )

    fig, ax = plots.new_figure()
    for k in ks:
        finals = np.array(metrics["per_k"][str(k)]["elbo_restarts"]) / tokens
        plots.scatter_plot(
            ax,
            np.full(finals.shape, k),
            finals,
            xlabel="number of topics K",
            ylabel="final ELBO per token (nats)",
            s=36,
        )
    ax.set_xticks(ks)
    report.figure(
        rundir.save_figure(fig, "optima_spread"),
        "Final ELBO per training token (nats) of every restart: the spread of the local "
        "optima CAVI ends in from different random initializations.",
    )

    rows = []
    for k in ks:
        r = metrics["per_k"][str(k)]
        completion = r.get("completion")
        rows.append(
            [
                k,
                f"{r['elbo_per_token_best']:.4f}",
                f"{r['elbo_spread'] / tokens:.4f}",
                r["n_iter"],
                "" if completion is None else f"{completion['perplexity']:.1f}",
                _coherence_cell(r, "umass_mean"),
                _coherence_cell(r, "npmi_mean"),
                f"{r['fit_seconds']:.1f}",
            ]
        )
    report.table(
        [
            "K",
            "best ELBO / token (nats)",
            "spread across restarts (nats/token)",
            "iterations",
            "completion perplexity",
            "mean UMass",
            "mean NPMI",
            "fit seconds",
        ],
        rows,
        caption="Summary per K. Perplexity is exp(-held-out log-likelihood per token, base e) "
        f"on {data['n_heldout_tokens']:,} held-out tokens of {data['n_test_docs']} test "
        "documents; lower is better. " + _COHERENCE_NOTE,
    )
    if all("surgery_best_prior" in metrics["per_k"][str(k)] for k in ks):
        _render_surgery(report, metrics, ks)
    else:
        report.paragraph("This run predates the ELBO surgery of LDA; run it again for it.")
    if any("completion" in metrics["per_k"][str(k)] for k in ks):
        fig, ax = plots.new_figure()
        ppl = [metrics["per_k"][str(k)]["completion"]["perplexity"] for k in ks]
        plots.line_plot(
            ax,
            ks,
            {"perplexity": ppl},
            xlabel="number of topics K",
            ylabel="document-completion perplexity",
            marker="o",
        )
        ax.set_xticks(ks)
        report.figure(
            rundir.save_figure(fig, "perplexity"),
            "Held-out document-completion perplexity against K "
            f"({data['n_heldout_tokens']:,} held-out tokens; lower is better).",
        )
    for k in ks:
        r = metrics["per_k"][str(k)]
        coh = r.get("coherence")  # absent from runs that predate it
        report.table(
            ["topic", "top words"] + (["UMass", "NPMI"] if coh else []),
            [
                [i, " ".join(w)]
                + ([f"{coh['umass'][i]:.3f}", f"{coh['npmi'][i]:.3f}"] if coh else [])
                for i, w in enumerate(r["top_words"])
            ],
            caption=f"K = {k}: the most probable words of each topic (best restart)"
            + (f", with their coherence. {_COHERENCE_NOTE}" if coh else "."),
        )
    return report


_COHERENCE_NOTE = (
    "Coherence of each topic's top words in the training documents, as the mean over "
    "word pairs: UMass (Mimno et al. 2011; log of the share of the documents of the more "
    "probable word that also hold the other, +1 co-document smoothing; about 0 at best, more "
    "negative is worse) and NPMI (Bouma 2009; Roeder et al. 2015; from -1, never together, "
    "through 0, independent, to 1, always together)."
)


def _coherence_cell(result: dict, key: str) -> str:
    coh = result.get("coherence")
    return "" if coh is None else f"{coh[key]:.3f}"
