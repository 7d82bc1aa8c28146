"""The ``linear`` study's report: figures and tables from a finished run's saved files."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ...report import Report


def render(rundir) -> Report:
    """The report of a finished run, from its saved files only."""
    from ...report import Report, plots

    record = rundir.read_json("config.json")
    cfg = record["config"]
    m = rundir.read_json("metrics.json")
    a = rundir.load_arrays()
    n = m["data"]["n_data"]
    report = Report(
        "Linear VAE against probabilistic PCA; posterior collapse against sigma^2",
        f"MNIST: the first {n} training images for parts 1-3, "
        f"{m['data']['deep_n_train']} / {m['data']['deep_n_eval']} for part 4; all values "
        "in nats per datum",
    )
    report.paragraph(
        "Lucas, Tucker, Grosse & Norouzi (2019): a linear VAE with a diagonal encoder "
        "covariance reaches the exact maximum likelihood of probabilistic PCA, and in deep "
        "Gaussian VAEs the observation noise sigma^2 governs posterior collapse. pPCA is fitted "
        "in closed form with the covariance normalised by N, so its log-likelihood is the "
        "maximum for exactly the data the ELBO averages over."
    )

    # Part 1
    report.heading("1. Linear VAE against pPCA")
    fig, ax = plots.new_figure()
    for name, style, optimizer in (("analytic", "-", "L-BFGS"), ("stochastic", "--", "Adam")):
        ax.plot(
            a[f"curve_step_{name}"],
            a[f"curve_elbo_analytic_{name}"],
            style,
            label=f"ELBO, trained on the {name} ELBO ({optimizer})",
        )
    plots.reference_line(ax, m["ppca_log_likelihood"], "pPCA exact log-likelihood")
    ax.set_xscale("symlog", linthresh=10)  # L-BFGS ends in tens of iterations, Adam later
    lo = min(np.percentile(a["curve_elbo_analytic_analytic"], 20), m["ppca_log_likelihood"])
    ax.set_ylim(lo - 0.05 * abs(lo), m["ppca_log_likelihood"] + 0.02 * abs(lo))
    plots.label_axes(ax, "L-BFGS iteration / Adam step", f"nats per datum (N = {n})", legend=True)
    report.figure(
        rundir.save_figure(fig, "linear_vs_ppca"),
        f"ELBO (closed form, nats per datum, N = {n}, q = {cfg['latent']}) of linear VAEs "
        "trained on the analytic and on the stochastic ELBO, against the exact pPCA "
        "maximum log-likelihood (black).",
    )
    report.table(
        ["quantity", "nats per datum"],
        [
            ["pPCA exact log-likelihood (maximum)", f"{m['ppca_log_likelihood']:.3f}"],
            ["linear VAE, analytic ELBO (trained on it)", f"{m['elbo_analytic_final']:.3f}"],
            [
                "linear VAE, stochastic ELBO estimate (trained on it)",
                f"{m['elbo_stochastic_final']:.3f}",
            ],
            ["gap pPCA - analytic", f"{m['gap_analytic']:.4f}"],
            ["gap pPCA - stochastic", f"{m['gap_stochastic']:.4f}"],
        ],
        caption=f"Part 1 on N = {n} images (nats per datum). Analytic ELBO: "
        f"{m['elbo_analytic_optimizer']}, {m['elbo_analytic_iterations']} iterations; "
        f"stochastic ELBO: {m['elbo_stochastic_optimizer']}. A gap is the ELBO's distance "
        "from the exact maximum; it can only be positive.",
    )
    fig, axes = plots.new_figure(width=12, height=4, ncols=3)
    for ax, key, title in zip(
        axes,
        ("gram_ppca", "gram_vae_analytic", "gram_cross_analytic"),
        ("W_pPCA^T W_pPCA", "W_VAE^T W_VAE", "W_pPCA^T W_VAE"),
        strict=True,
    ):
        plots.signed_heatmap(ax, a[key], "latent dimension", "latent dimension", title)
    report.figure(
        rundir.save_figure(fig, "gram"),
        f"Gram matrices of the decoders (q = {cfg['latent']}, N = {n}): pPCA's W has "
        "orthogonal columns (diagonal Gram); the VAE's matches it up to rotation and sign.",
    )

    # Part 2
    report.heading("2. Against latent size, sigma^2 learned and fixed")
    rows = m["latent_sweep"]
    fig, ax = plots.new_figure()
    for mode, color in (("learned", "C0"), ("fixed", "C1")):
        sel = [r for r in rows if r["sigma2"] == mode]
        qs = [r["latent"] for r in sel]
        ax.plot(
            qs,
            [r["ppca_log_likelihood"] for r in sel],
            "o-",
            color=color,
            label=f"pPCA exact, sigma^2 {mode}",
        )
        ax.plot(
            qs,
            [r["elbo_analytic"] for r in sel],
            "x--",
            color=color,
            label=f"linear VAE ELBO, sigma^2 {mode}",
        )
    plots.label_axes(ax, "latent size q", f"nats per datum (N = {n})", legend=True)
    report.figure(
        rundir.save_figure(fig, "latent_sweep"),
        f"Exact pPCA log-likelihood and linear-VAE ELBO (nats per datum, N = {n}) against "
        f"latent size; sigma^2 learned, or fixed at {cfg['fixed_sigma2']}.",
    )
    report.table(
        [
            "q",
            "sigma^2",
            "pPCA exact",
            "VAE ELBO",
            "gap",
            "pPCA zero columns",
            "VAE columns with |w| < 0.01",
        ],
        [
            [
                r["latent"],
                r["sigma2"],
                f"{r['ppca_log_likelihood']:.3f}",
                f"{r['elbo_analytic']:.3f}",
                f"{r['ppca_log_likelihood'] - r['elbo_analytic']:.4f}",
                r["ppca_zero_columns"],
                r["vae_small_columns"],
            ]
            for r in rows
        ],
        caption=f"Part 2 (nats per datum, N = {n}). With sigma^2 fixed, pPCA's columns for "
        "eigenvalues below sigma^2 are zero: those latent dimensions collapse at the optimum.",
    )

    # Part 5
    report.heading("5. Random starts: linear VAE against deep VAE")
    lin, deep = m["inits"]["linear"], m["inits"]["deep"]
    report.table(
        ["model", "starts", "min", "max", "spread (max - min)"],
        [
            [
                f"linear VAE, q = {lin['latent']}, analytic ELBO, L-BFGS (pPCA maximum "
                f"{lin['ppca_log_likelihood']:.4f})",
                len(lin["elbo"]),
                f"{min(lin['elbo']):.4f}",
                f"{max(lin['elbo']):.4f}",
                f"{lin['spread']:.2g}",
            ],
            [
                f"deep Gaussian VAE, latent {cfg['deep_latent']}, {deep['epochs']} epoch(s) "
                "of Adam, held-out ELBO (10 samples)",
                len(deep["elbo_heldout"]),
                f"{min(deep['elbo_heldout']):.2f}",
                f"{max(deep['elbo_heldout']):.2f}",
                f"{deep['spread']:.2f}",
            ],
        ],
        caption=f"Final ELBO (nats per datum) from {m['inits']['n_inits']} random "
        "initialisations. The linear VAE's training images are the first "
        f"{n}; the deep VAE's held-out images are {m['data']['deep_n_eval']}. The deep "
        "VAE's spread mixes different optima with unfinished training and Monte Carlo "
        "error; the linear VAE's is optimisation tolerance only.",
    )

    # Part 6
    report.heading("6. ELBO surgery of pPCA")
    sg = m["surgery_ppca"]
    report.table(
        ["term", "nats per datum", "standard error"],
        [
            ["average KL (analytic)", f"{sg['average_kl']:.3f}", "0"],
            ["index-code MI I(n; z)", f"{sg['mutual_info']:.3f}", f"{sg['se_mutual_info']:.3f}"],
            [
                "marginal KL(q(z) || p(z))",
                f"{sg['marginal_kl']:.3f}",
                f"{sg['se_marginal_kl']:.3f}",
            ],
            ["log N (MI bound)", f"{sg['log_n']:.3f}", ""],
        ],
        caption=f"Hoffman & Johnson's (2016) split of the average KL for the exact pPCA "
        f"posterior (q = {sg['latent']}, maximum likelihood) over the N = {sg['n']} "
        "training images of part 4 (pixels in [0, 1]), with elbolab.diagnostics.surgery. "
        "At the pPCA maximum the aggregate posterior has exactly the prior's mean and "
        "covariance (posterior-mean covariance I - sigma^2 Lambda^{-1} plus posterior "
        "covariance sigma^2 Lambda^{-1}), yet it is a mixture of N narrow components: the "
        "MI cannot exceed log N, so the marginal KL is at least the average KL minus "
        "log N. For comparison, the surgery study's VAE with d = 20 on binarized MNIST "
        "(N = 50,000) typically shows a marginal KL of several nats.",
    )

    # Part 3
    report.heading("3. Linear decoder, three encoders, logit-space MNIST")
    enc = m["encoders"]
    names = list(enc["encoders"])
    fig, ax = plots.new_figure()
    values = [enc["encoders"][k]["elbo"] for k in names]
    ax.bar(names, values, color="C0", label="ELBO")
    plots.reference_line(ax, enc["ppca_log_likelihood"], "pPCA exact maximum")
    span = max(enc["ppca_log_likelihood"] - min(values), 1.0)
    ax.set_ylim(min(values) - span, enc["ppca_log_likelihood"] + 0.3 * span)
    plots.label_axes(ax, "encoder", f"nats per datum (N = {n}, logit space)", legend=True)
    report.figure(
        rundir.save_figure(fig, "encoders"),
        f"ELBO of a linear decoder behind three encoders on dequantized logit-space MNIST "
        f"(N = {n}, q = {cfg['encoder_latent']}; nats per datum in logit space, no Jacobian "
        "to pixel space), against the exact pPCA maximum log-likelihood.",
    )
    report.table(
        ["encoder", "ELBO", "exact log p(x) of its decoder", "pPCA maximum"],
        [
            [
                k,
                f"{v['elbo']:.2f}",
                f"{v['exact_log_likelihood_of_decoder']:.2f}",
                f"{enc['ppca_log_likelihood']:.2f}",
            ]
            for k, v in enc["encoders"].items()
        ],
        caption="Part 3 (nats per datum, logit space).",
    )

    # Part 4
    report.heading("4. Deep Gaussian VAE: collapse against sigma^2")
    col = m["collapse"]
    fig, axes = plots.new_figure(width=12, height=4, ncols=3)
    for learned, marker in ((True, "o-"), (False, "s--")):
        sel = [r for r in col if r["sigma2_learned"] == learned]
        s2 = [r["sigma2_init"] for r in sel]
        label = "sigma^2 learned" if learned else "sigma^2 fixed"
        axes[0].plot(s2, [r["elbo"] for r in sel], marker, label=label)
        axes[1].plot(s2, [r["active_units"] for r in sel], marker, label=label)
        axes[2].plot(s2, [r["collapsed_fraction"] for r in sel], marker, label=label)
    for ax, ylabel in zip(
        axes,
        (
            f"ELBO (nats per datum, N = {m['data']['deep_n_eval']})",
            "active units",
            "collapsed fraction (eps = delta = 0.01)",
        ),
        strict=True,
    ):
        plots.label_axes(ax, "initial sigma^2", ylabel, xscale="log", legend=True)
    report.figure(
        rundir.save_figure(fig, "collapse_summary"),
        f"Deep Gaussian VAEs (latent {cfg['deep_latent']}, hidden {cfg['deep_hidden']}) on "
        f"{m['data']['deep_n_train']} MNIST images: final ELBO on "
        f"{m['data']['deep_n_eval']} held-out images (nats per datum), active units "
        "(Cov_x E_q[z_i] > 0.01) and the (0.01, 0.01)-collapsed fraction, against the initial "
        "(or fixed) observation variance.",
    )
    fig, axes = plots.new_figure(width=10, height=4, ncols=2)
    for ax, learned in zip(axes, (True, False), strict=True):
        for i, r in enumerate(col):
            if r["sigma2_learned"] == learned:
                ax.plot(a["epsilons"], a["collapse_curves"][i], label=f"{r['sigma2_init']:g}")
        plots.label_axes(
            ax,
            "epsilon (nats)",
            "fraction of latent dimensions collapsed",
            "sigma^2 learned" if learned else "sigma^2 fixed",
            xscale="log",
            legend={"title": "initial sigma^2", "fontsize": 7},
        )
    report.figure(
        rundir.save_figure(fig, "collapse_curves"),
        "(epsilon, delta)-collapse (Lucas et al. 2019), delta = 0.01: the fraction of latent "
        "dimensions whose KL(q(z_i|x) || p(z_i)) is below epsilon for at least 99% of the "
        f"{m['data']['deep_n_eval']} held-out images.",
    )
    report.table(
        [
            "sigma^2 init",
            "learned",
            "final sigma^2",
            "ELBO",
            "KL",
            "active units",
            "collapsed (0.01, 0.01)",
        ],
        [
            [
                f"{r['sigma2_init']:g}",
                "yes" if r["sigma2_learned"] else "no",
                f"{r['sigma2_final']:.4g}",
                f"{r['elbo']:.1f}",
                f"{r['kl']:.2f}",
                r["active_units"],
                f"{r['collapsed_fraction']:.2f}",
            ]
            for r in col
        ],
        caption="Part 4 (nats per datum on the held-out images).",
    )
    return report
