"""The ``fkl`` study's report: figures and tables from a finished run's saved files."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .metrics import FAST_SHARE

if TYPE_CHECKING:
    from ...report import Report


def render(rundir) -> Report:
    """The report of a finished run, from its saved files only."""
    from ...report import Report, plots

    m = rundir.read_json("metrics.json")
    arr = rundir.load_arrays()
    cfg = rundir.read_json("config.json")["config"]
    report = Report(
        "Expected forward KL against the ELBO and the IWBO",
        "McNamara, Loper & Regier (2024), three experiments; nats unless stated",
    )

    # 1. Width.
    report.heading("1. Width and the kernel regime")
    widths = cfg["width_widths"]
    bw = m["width"]["by_width"]
    fig, axes = plots.new_figure(width=15, height=4, ncols=3)
    for i, w in enumerate(widths):
        for rep in range(cfg["width_seeds"]):
            key = f"width_{w}_seed{rep}"
            for kind, style in (("network", "-"), ("linearized", "--")):
                axes[0].plot(
                    arr[f"{key}_steps"],
                    arr[f"{key}_nll_gap_{kind}"],
                    style,
                    color=f"C{i}",
                    lw=0.8,
                    label=f"{w} {kind}" if rep == 0 else None,
                )
    plots.label_axes(
        axes[0],
        "gradient step",
        "gap to the exact posterior (nats per pair)",
        yscale="log",
        legend={"frameon": False, "fontsize": 7},
    )
    for ax, field, label in (
        (axes[1], "kl_network_linearized", "E_x KL(q_network || q_linearized) (nats)"),
        (axes[2], "ntk_drift", "relative NTK change ||K_T - K_0||_F / ||K_0||_F"),
    ):
        for rep in range(cfg["width_seeds"]):
            ax.plot(widths, [bw[str(w)]["per_seed"][field][rep] for w in widths], "o", color="C0")
        ax.plot(widths, [bw[str(w)][field]["mean"] for w in widths], "-", color="C0")
        plots.label_axes(ax, "width (hidden units)", label, xscale="log", yscale="log")
    report.figure(
        rundir.save_figure(fig, "width"),
        "Left: E[-log q(z|x)] minus the exact posterior's E[-log p(z|x)] = "
        f"{m['width']['posterior_entropy']:.4f} nats (the floor, so the gap is the expected "
        f"forward KL itself) on {cfg['width_test_pairs']} test pairs, for centred networks "
        f"(solid) and their linearizations (dashed), {cfg['width_seeds']} seeds per width; "
        "every run starts at q = N(0, I) and stops when the moving average (over "
        f"{cfg['width_window']} evaluations, every {cfg['width_eval_every']} steps) of the "
        f"gap on separate validation pairs improves by less than {cfg['width_rtol']:.0%}, or "
        f"at {cfg['width_steps']} steps. Middle: how far the trained network's q is from its "
        "linearization's at the end (each seed a dot, the line the mean). Right: how far "
        f"the empirical NTK moved during training, on {cfg['width_probe']} probe inputs.",
    )
    report.table(
        [
            "width",
            "gap, network (nats)",
            "gap, linearized (nats)",
            "KL network-linearized (nats)",
            "NTK drift",
            "steps",
            f"steps to {FAST_SHARE:.0%} of the start",
        ],
        [
            [
                w,
                _mean_sd(bw[str(w)]["gap_network"]),
                _mean_sd(bw[str(w)]["gap_linearized"]),
                _mean_sd(bw[str(w)]["kl_network_linearized"]),
                _mean_sd(bw[str(w)]["ntk_drift"]),
                ", ".join(str(t) for t in bw[str(w)]["steps"]),
                ", ".join(str(t) for t in bw[str(w)].get("steps_to_fast_share", [])) or "-",
            ]
            for w in widths
        ],
        caption=f"Final values by width: mean +- sd over {cfg['width_seeds']} seeds (nats "
        "per pair), the step at which each seed stopped, and the first evaluation at which "
        f"each seed's network gap was within {FAST_SHARE:.0%} of its starting value.",
    )

    # 2. Clustering.
    report.heading("2. Amortized clustering and label switching")
    c = m["clustering"]
    report.table(
        [
            "parameterization",
            "forward KL: ordered",
            "ELBO: ordered",
            "forward KL: recovered",
            "ELBO: recovered",
        ],
        [
            [
                kind,
                f"{c['ordered_rate_by_parameterization'][kind]['fkl']:.2f}",
                f"{c['ordered_rate_by_parameterization'][kind]['elbo']:.2f}",
                f"{c['recovered_rate_by_parameterization'][kind]['fkl']:.2f}",
                f"{c['recovered_rate_by_parameterization'][kind]['elbo']:.2f}",
            ]
            for kind in ("mean", "natural")
        ],
        caption=f"Share of {c['replicates']} replicates whose posterior mode of the centres is "
        "in increasing order (the paper's Table 1), and whose mode is ordered with the shift "
        f"within {c['shift_tolerance']} of the truth ({cfg['cluster_true_shift']}).",
    )
    if "diagnostics" in c:  # runs made before it was recorded have none
        diag = c["diagnostics"]
        report.table(
            [
                "parameterization",
                "objective",
                "median |shift - truth|",
                "median sd of q: shift",
                "median sd of q: centres",
            ],
            [
                [
                    kind,
                    obj,
                    f"{d['median_shift_error']:.2f}",
                    f"{d['median_shift_sd']:.3g}",
                    f"{d['median_centre_sd']:.3g}",
                ]
                for kind in ("mean", "natural")
                for obj, d in diag[kind].items()
            ],
            caption="Why a replicate is missed: the distance of the shift's mode from the truth "
            "and the width of q at the observed data set, medians over replicates, in the "
            "model's units (the mean-only family's sd is fixed at 1; the exact posterior's is "
            "about 0.22 for the shift and 0.007 for a centre).",
        )
    fig, axes = plots.new_figure(width=11, height=4, ncols=2)
    for ax, kind in zip(axes, ("mean", "natural"), strict=True):
        for obj, label in (("fkl", "forward KL"), ("elbo", "ELBO")):
            s = arr[f"cluster_{obj}_{kind}_shift_mode"]
            plots.density_plot(ax, s, label)
        plots.reference_line(
            ax, cfg["cluster_true_shift"], "true shift", vertical=True, dashed=True
        )
        plots.label_axes(
            ax,
            "posterior mode of the shift S",
            "density across replicates",
            f"{kind} parameterization",
            legend={"frameon": False},
        )
    report.figure(
        rundir.save_figure(fig, "clustering_shift"),
        "Kernel-smoothed distribution across replicates of the posterior mode of the shift "
        "(the paper's Figure 2), for the forward KL and the ELBO.",
    )

    # 3. Rotated MNIST.
    report.heading("3. Rotated MNIST")
    r = m["rotated"]
    fig, axes = plots.new_figure(width=15, height=4, ncols=3)
    angles = arr["rotated_iwbo_angle_deg"]
    for j in range(angles.shape[1]):
        axes[0].plot(arr["rotated_iwbo_steps"], angles[:, j], lw=1)
    axes[1].plot(arr["rotated_fkl_steps"], arr["rotated_fkl_angle_deg"])
    for ax, fit, title in (
        (axes[0], "IWBO", "IWBO from 12 starts"),
        (axes[1], "forward-KL", "amortized forward KL"),
    ):
        plots.reference_line(ax, r["true_angle_deg"], dashed=True)
        plots.label_axes(ax, f"{fit} step", "angle estimate (degrees)", title)
    axes[2].plot(arr["rotated_grid_deg"], np.exp(arr["rotated_log_posterior"]))
    plots.label_axes(
        axes[2], "angle (degrees)", "exact posterior density (per radian)", yscale="log"
    )
    axes[2].set_ylim(1e-12, 10 * float(np.exp(arr["rotated_log_posterior"]).max()))
    report.figure(
        rundir.save_figure(fig, "rotated_angles"),
        f"{r['n_images']} MNIST digits rotated by {r['true_angle_deg']} degrees with noise sd "
        f"{cfg['rotated_sigma']}: the angle estimate (mode of q) across steps from every IWBO "
        "start (left) and for the amortized forward-KL fit (middle); right, the exact "
        f"posterior on a grid of {cfg['rotated_grid']} angles "
        f"(mode {r['posterior_mode_deg']:.2f}).",
    )
    fig, axes = plots.new_figure(width=11, height=4, ncols=2)
    for ax, name in zip(axes, ("forward", "reverse"), strict=True):
        iw = arr[f"rotated_iwbo_{name}_kl"]
        for j in range(iw.shape[1]):
            ax.plot(
                arr["rotated_iwbo_steps"],
                iw[:, j],
                color="C0",
                lw=0.8,
                label="IWBO (each start)" if j == 0 else None,
            )
        ax.plot(
            arr["rotated_fkl_steps"],
            arr[f"rotated_fkl_{name}_kl"],
            color="C1",
            label="forward KL (amortized)",
        )
        plots.label_axes(
            ax,
            "step",
            f"{name} KL to the exact posterior (nats)",
            yscale="symlog",
            legend={"frameon": False},
        )
    report.figure(
        rundir.save_figure(fig, "rotated_kl"),
        "KL(p || q) (left) and KL(q || p) (right) between the exact posterior over the angle and "
        "each fit, on the grid, across fitting (symmetric-log axis).",
    )
    report.table(
        ["start (deg)", "IWBO final angle (deg)", "error (deg)"],
        [
            [f"{s:.0f}", f"{a:.1f}", f"{e:.1f}"]
            for s, a, e in zip(
                r["start_angle_deg"],
                r["final_angle_deg"]["iwbo"],
                r["final_angle_error_deg"]["iwbo"],
                strict=True,
            )
        ],
        caption=f"Where each IWBO start ends. The amortized forward-KL fit ends at "
        f"{r['final_angle_deg']['fkl']:.1f} degrees, {r['final_angle_error_deg']['fkl']:.1f} from "
        "the truth.",
    )
    report.heading("All metrics")
    report.metrics({k: v for k, v in m.items() if k != "timings"})
    return report


def _mean_sd(stats: dict) -> str:
    return f"{stats['mean']:.4g} +- {stats['sd']:.2g}"
