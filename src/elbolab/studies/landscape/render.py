"""The report of a finished run, from metrics.json, arrays.npz and config.json only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .metrics import best_end


@dataclass(frozen=True)
class _Page:
    """What every section of the report reads: the report being written, the run
    directory (figures are saved there), metrics.json, arrays.npz, the config, and the
    ELBO-per-token axis label."""

    report: object
    rundir: object
    metrics: dict
    arrays: object
    config: dict
    tokens: int
    unit: str

    def figure(self, fig, name: str, caption: str) -> None:
        """Save ``fig`` as figures/NAME.png and add it to the report with its caption."""
        self.report.figure(self.rundir.save_figure(fig, name), caption)


def render(rundir):
    """Figures and report from metrics.json and arrays.npz."""
    from ...report import Report

    m = rundir.read_json("metrics.json")
    arr = rundir.load_arrays()
    cfg = rundir.read_json("config.json")["config"]
    data = m["data"]
    tokens = data["n_train_tokens"]
    unit = f"ELBO per token (nats; total / {tokens:,} training tokens)"
    report = Report(
        "The ELBO landscape of LDA between two CAVI maxima",
        f"{data['source']}: {data['n_train_docs']} training documents, {tokens:,} tokens, "
        f"{data['n_words']:,} words; K = {cfg['n_topics']}",
    )
    report.paragraph(
        "ELBO: the full evidence lower bound of LDA in nats with every Dirichlet normalizer, "
        "summed over the training documents. Profile mode: a point is the topics lambda and "
        "every document's gamma and phi are re-optimized by the E-step (the score a user "
        "gives a topic model). Full mode: a point is (lambda, gamma, phi), as in Li & Wei. "
        "Barrier = max(0, min(ELBO(a), ELBO(b)) - lowest ELBO on the path), in nats, on a "
        "dense resampling of the path."
    )
    b = m["barrier"]
    report.table(
        ["path", "mode", "barrier (nats)", "barrier (nats/token)"],
        [
            [
                name.replace("_", " "),
                "full" if name.endswith("full") else "profile",
                f"{b[name]:,.1f}",
                f"{m['barrier_per_token'][name]:.2e}",
            ]
            for name in b
        ],
        caption=(
            "Barriers between the two maxima. Share of the aligned straight line's barrier "
            f"removed by the best path: profile {m['barrier_removed_fraction']['profile']:.1%}, "
            f"full {m['barrier_removed_fraction']['full']:.1%}."
        ),
    )
    check = m["convergence_check"]
    if check["violations"]:
        report.paragraph(
            "Convergence check: on " + ", ".join(check["violations"]) + " a point of the path "
            "is higher than the better endpoint by more than one CAVI step at the stopping "
            f"tolerance ({check['tolerance_slack']:.1f} nats; excess per path in the metrics "
            "below). Either an endpoint is not a converged maximum, or the path climbs over a "
            "barrier to a higher region between the two maxima; the figure of the ELBO along "
            "the paths tells which.",
        )
    else:
        report.paragraph(
            "Convergence check passed: no point of any path is higher than the better endpoint "
            f"by more than the CAVI tolerance implies ({check['tolerance_slack']:.1f} nats)."
        )
    page = _Page(report, rundir, m, arr, cfg, tokens, unit)
    _fits_alignment(page)
    _elbo_along_paths(page)
    _path_optimization(page)
    _planes(page)
    _reading(page)
    _sweeps(page)
    _polish(page)
    report.heading("All metrics")
    report.metrics({k: v for k, v in m.items() if k not in ("reading", "sweeps")})
    return report


def _fits_alignment(page: _Page) -> None:
    """The CAVI restarts and the alignment of maximum b's topics to a's."""
    from ...report import plots

    m, arr, tokens, unit = page.metrics, page.arrays, page.tokens, page.unit
    fig, axes = plots.new_figure(width=11, height=3.8, ncols=2)
    hist = arr["fit_history"] / tokens
    plots.line_plot(
        axes[0],
        np.arange(1, hist.shape[0] + 1),
        {f"restart {r}": hist[:, r] for r in range(hist.shape[1])},
        xlabel="CAVI iteration",
        ylabel=unit,
        title="CAVI restarts",
    )
    al = m["alignment"]
    plots.grouped_error_bar_plot(
        axes[1],
        [str(k) for k in range(len(al["distances_aligned"]))],
        {
            "before alignment": (al["distances_unaligned"], None),
            "after alignment": (al["distances_aligned"], None),
        },
        xlabel="topic of maximum a",
        ylabel="Hellinger distance to b's topic",
    )
    page.figure(
        fig,
        "fits_alignment",
        f"Left: ELBO per token of every restart during CAVI. Right: Hellinger distance between "
        f"the topics of the maxima a (restart {m['endpoints']['a']}) and b (restart "
        f"{m['endpoints']['b']}) before and after Hungarian alignment; permutation "
        f"{al['permutation']}.",
    )


def _elbo_along_paths(page: _Page) -> None:
    """The ELBO along every path, in profile and in full mode."""
    from ...report import plots

    arr, tokens, unit = page.arrays, page.tokens, page.unit
    fig, axes = plots.new_figure(width=11, height=4, ncols=2)

    def along(names: dict) -> dict:
        return {
            label: (arr[f"{name}_dense_positions"], arr[f"{name}_dense_values"] / tokens)
            for name, label in names.items()
        }

    position = "position along the path (arc-length fraction)"
    plots.curves_plot(
        axes[0],
        along(
            {
                "linear_unaligned": "line, unaligned",
                "linear_aligned": "line, aligned",
                "neb_profile": "NEB",
                "autoneb": "AutoNEB",
                "bezier": "Bezier",
            }
        ),
        xlabel=position,
        ylabel=unit,
        title="profile mode",
    )
    axes[0].set_ylim(
        _ylim(
            [
                arr[f"{n}_dense_values"] / tokens
                for n in ("linear_aligned", "neb_profile", "autoneb", "bezier")
            ]
        )
    )
    plots.curves_plot(
        axes[1],
        along({"linear_aligned_full": "line, aligned", "neb_full": "NEB"}),
        xlabel=position,
        ylabel=unit,
        title="full mode",
    )
    page.figure(
        fig,
        "elbo_along_paths",
        "ELBO per token along each path from maximum a (left end) to the aligned maximum b. "
        "The unaligned line (left) falls far below the plot when label switching is not undone.",
    )


def _path_optimization(page: _Page) -> None:
    """NEB's lowest pivot and Bezier's objective during the optimization."""
    from ...report import plots

    arr, cfg, tokens, unit = page.arrays, page.config, page.tokens, page.unit
    fig, axes = plots.new_figure(width=11, height=4, ncols=2)
    lowest = {}
    for name, label in (("neb_profile", "NEB (profile)"), ("neb_full", "NEB (full)")):
        h = arr[f"{name}_history"] / tokens
        lowest[label] = (np.arange(h.shape[0]), h.min(axis=1))
    plots.curves_plot(axes[0], lowest, xlabel="NEB iteration", ylabel="lowest pivot " + unit)
    objective = arr["bezier_objective"] / tokens if "bezier_objective" in arr else None
    plots.curves_plot(
        axes[1],
        {} if objective is None else {"Bezier": (np.arange(objective.shape[0]), objective)},
        xlabel="Bezier step",
        ylabel="mean sampled " + unit,
    )
    page.figure(
        fig,
        "path_optimization",
        "Left: the lowest pivot's ELBO per token after each NEB iteration (the barrier estimate "
        "rises as the band relaxes). Right: the Bezier objective, the ELBO averaged over the "
        f"{cfg['bezier_n_t']} values of t sampled at each step.",
    )


def _planes(page: _Page) -> None:
    """The ELBO on the three planes, with the path and the line projected."""
    from ...report import plots

    m, arr, cfg, tokens, unit = page.metrics, page.arrays, page.config, page.tokens, page.unit
    fig, axes = plots.new_figure(width=15, height=4.4, ncols=3)
    titles = {
        "path": "plane through a, b and the NEB path",
        "gaussian": "random Gaussian plane",
        "sign": "random +-1 plane",
    }
    for ax, kind in zip(axes, ("path", "gaussian", "sign"), strict=True):
        scale = "coordinate (x units)" if kind == "path" else "coordinate (multiples of |b - a|)"
        plots.contour_plot(
            ax,
            arr[f"plane_{kind}_xs"],
            arr[f"plane_{kind}_ys"],
            arr[f"plane_{kind}_values"] / tokens,
            xlabel=scale,
            ylabel=scale,
            colorbar_label=unit,
        )
        ax.set_title(
            titles[kind] + f"\npath off plane <= {m['planes'][kind]['max_path_off_plane']:.3g}",
            fontsize=9,
        )
        # Drawn over the contours in colours that stand out from the colour map.
        p, line = arr[f"plane_{kind}_path_xy"], arr[f"plane_{kind}_line_xy"]
        ax.plot(p[:, 0], p[:, 1], "o-", color="white", ms=3, label="NEB path (projected)")
        ax.plot(line[:, 0], line[:, 1], "--", color="red", label="straight line (projected)")
    axes[0].legend(frameon=False, fontsize=7)
    page.figure(
        fig,
        "planes",
        f"ELBO per token (profile mode) on {cfg['plane_points']} x {cfg['plane_points']} grids. "
        "Left: the plane through both maxima and the NEB pivot farthest from the straight "
        "line (the path lies in it up to the distance in the title). Middle and right: random "
        "planes centered on maximum a, each direction as long as |b - a|; the path and the line "
        "are projected onto them and lie mostly off them.",
    )


def _reading(page: _Page) -> None:
    """Document completion and the topics' top words along the NEB path, and their coherence."""
    from ...report import plots

    m = page.metrics
    read = m["reading"]
    fig, axes = plots.new_figure(width=11, height=4, ncols=2)
    for ax, name in zip(axes, ("test", "train"), strict=True):
        s = read["heldout_per_token"][name]
        _along_pivots(
            ax,
            s["neb"],
            s["linear"],
            ylabel="held-out log-likelihood per token (nats)",
            title=f"{name} documents ({s['n_docs']} docs, {s['n_tokens']:,} held-out tokens)",
        )
    page.figure(
        fig,
        "heldout_along_path",
        "Document completion along the path: theta is inferred from half of each document's "
        "tokens under the pivot's topics and the other half is scored (nats per held-out token, "
        "higher is better). Training documents were seen by the fits; test documents were not.",
    )
    shown = read["pivots_shown"]
    page.report.table(
        ["topic"] + [f"pivot {i}" for i in shown],
        [[k] + row for k, row in enumerate(read["top_words"])],
        caption="Top words of every topic at the endpoints (first and last column) and two "
        "interior pivots of the NEB path, topics aligned across columns.",
    )
    if "coherence" in m:
        _coherence(page)
    else:
        page.report.paragraph("This run predates topic coherence along the path; run it again.")


def _coherence(page: _Page) -> None:
    """Mean topic coherence against position along the NEB path and the straight line,
    beside the ELBO at the same pivots."""
    from ...report import plots

    coh, unit = page.metrics["coherence"], page.unit
    fig, axes = plots.new_figure(width=15, height=4, ncols=3)
    for ax, key, label in (
        (axes[0], "elbo_per_token", unit),
        (axes[1], "umass_mean", "mean UMass over the topics"),
        (axes[2], "npmi_mean", "mean NPMI over the topics"),
    ):
        _along_pivots(ax, coh["neb"][key], coh["linear"][key], ylabel=label)
    page.figure(
        fig,
        "coherence_along_path",
        f"Topic coherence along the path, beside the ELBO (left): at every pivot, the mean "
        f"over the topics of the coherence of their {coh['top_n']} top words in the training "
        "documents, UMass (Mimno et al. 2011, +1 co-document smoothing; about 0 at best) and NPMI "
        "(Bouma 2009; Roeder et al. 2015; -1 never together, 0 independent, 1 always "
        "together). Higher is more coherent for both.",
    )
    rows = [
        [i]
        + [
            f"{coh[path][key][i]:.3f}"
            for path in ("neb", "linear")
            for key in ("umass_mean", "npmi_mean")
        ]
        + [f"{coh['neb']['elbo_per_token'][i]:.4f}"]
        for i in range(len(coh["neb"]["elbo_per_token"]))
    ]
    page.report.table(
        ["pivot", "NEB: UMass", "NEB: NPMI", "line: UMass", "line: NPMI", "NEB: ELBO / token"],
        rows,
        caption="Mean coherence of the topics at every pivot of the NEB path and of the "
        "straight line, and the NEB pivot's ELBO per token (nats).",
    )


def _sweeps(page: _Page) -> None:
    """The sweeps of NEB's settings and of the number of topics."""
    from ...report import plots

    m, arr, cfg, tokens, unit = page.metrics, page.arrays, page.config, page.tokens, page.unit
    sw = m["sweeps"]
    fig, axes = plots.new_figure(width=15, height=4, ncols=3)
    for ax, (name, label) in zip(
        axes,
        (("lr", "learning rate"), ("pivots", "pivots N"), ("spring", "spring constant k")),
        strict=True,
    ):
        curves = {}
        for value in sw[name]:
            h = arr[f"sweep_{name}_{value}_bottleneck"] / tokens
            curves[f"{label} {value}"] = (np.arange(h.shape[0]), h)
        plots.curves_plot(
            ax,
            curves,
            xlabel="NEB iteration",
            ylabel="lowest pivot " + unit,
            legend={"fontsize": 8},
        )
    page.figure(
        fig,
        "sweeps",
        f"NEB (profile mode, {cfg['sweep_steps']} iterations each) for the paper's learning "
        "rates, numbers of pivots and spring constants: the lowest pivot's ELBO per token by "
        "iteration. Steps are capped and halved when a trial point is not finite, so no "
        "learning rate produced NaN.",
    )
    page.report.table(
        ["sweep", "value", "NEB barrier (nats)", "step halvings", "segment length max/min"],
        [
            [name, value, f"{p['barrier']:,.1f}", p["halvings"], f"{p['spacing_ratio']:.2f}"]
            for name in ("lr", "pivots", "spring")
            for value, p in sw[name].items()
        ],
        caption="Sweep results: final barrier of each NEB run and how evenly its pivots "
        "are spaced.",
    )
    ks = [int(k) for k in sw["topics"]]
    pts = [sw["topics"][str(k)] for k in ks]
    fig, axes = plots.new_figure(width=11, height=4, ncols=2)
    plots.line_plot(
        axes[0],
        ks,
        {
            "straight line (aligned)": [p["barrier_linear"] / tokens for p in pts],
            "NEB": [p["barrier_neb"] / tokens for p in pts],
        },
        xlabel="number of topics K",
        ylabel="barrier (nats per token)",
        marker="o",
    )
    plots.line_plot(
        axes[1],
        ks,
        {
            "maximum a": [p["heldout_per_token_a"] for p in pts],
            "maximum b": [p["heldout_per_token_b"] for p in pts],
        },
        xlabel="number of topics K",
        ylabel="held-out log-likelihood per token (nats)",
        marker="o",
    )
    page.figure(
        fig,
        "sweep_topics",
        f"Against K ({cfg['sweep_restarts']} restarts per K, NEB {cfg['sweep_steps']} "
        "iterations): the aligned straight line's and NEB's barrier per training token (left), "
        "and the test documents' completion log-likelihood per held-out token at both maxima "
        "(right).",
    )


def _polish(page: _Page) -> None:
    """Maxima found from paths: a table per path, a table per pair and a figure."""
    from ...report import plots

    pol, tokens = page.metrics["polish"], page.tokens
    page.report.heading("Maxima found from paths")
    page.report.paragraph(
        "From the highest point of each optimized path, CAVI ran to convergence (same "
        "tolerance as the fits). The maximum it reached is scored with the profile ELBO, as "
        "the endpoints are, and compared with both endpoints after Hungarian alignment: it "
        f"is called an endpoint when its mean matched Hellinger distance to it is at most "
        f"{pol['same_max']:g}, else new. Held-out: document completion on the test "
        "documents (nats per held-out token, higher is better)."
    )
    paths = pol["paths"]
    page.report.table(
        [
            "path",
            "peak - better end (nats)",
            "polished - better end (nats)",
            "CAVI iter.",
            "is",
            "H to a",
            "H to b",
            "held-out a / b / polished",
        ],
        [
            [
                _PATH_LABELS[name],
                f"{r['peak_value'] - max(r['elbo_a'], r['elbo_b']):,.1f}",
                f"{r['gain']:,.1f}",
                r["n_iter"],
                r["identity"],
                f"{r['distance_a']:.3f}",
                f"{r['distance_b']:.3f}",
                " / ".join(f"{r['heldout_per_token'][k]:.4f}" for k in ("a", "b", "polished")),
            ]
            for name, r in paths.items()
        ],
        caption="The chosen pair: each path's highest point (in its own mode's ELBO) and the "
        "maximum CAVI reached from there, both relative to the better endpoint; H = mean "
        "matched Hellinger distance of the topics.",
    )
    rows = pol["pairs"]
    page.report.table(
        [
            "pair (a, b)",
            "path steps",
            "polished - better end (nats)",
            "polished - best fitted restart (nats)",
            "is",
            "best restart - better end (nats)",
            "restarts (iterations)",
            "held-out polished / best restart",
            "seconds: path, polish, restarts",
            "path cost (CAVI iterations)",
        ],
        [
            [
                f"{r['a']}, {r['b']}",
                r["path"]["steps"],
                f"{r['polished']['gain']:,.1f}",
                f"{r['gain_over_best_fitted_restart']:,.1f}",
                r["polished"]["identity"],
                f"{r['baseline']['elbo'] - best_end(r):,.1f}",
                f"{len(r['baseline']['elbos'])} ({sum(r['baseline']['n_iters'])})",
                f"{r['polished']['heldout_per_token']['polished']:.4f} / "
                f"{r['baseline']['heldout_per_token']:.4f}",
                f"{r['path']['wall_seconds']:.0f}, {r['polished']['wall_seconds']:.0f}, "
                f"{r['baseline']['wall_seconds']:.0f}",
                f"{r['path']['timings']['cavi_iterations_equivalent']:.0f}",
            ]
            for r in rows
        ],
        caption="Polish from the NEB path (profile mode) against random restarts given the "
        "same number of CAVI iterations, per pair of restarts. The path's own cost (first "
        "pair: the NEB above) is not charged to the polish, which favours it; the last "
        "column gives that cost as CAVI iterations of the fits (wall time / "
        f"{pol['timings']['cavi_iteration_seconds']:.2f} s), and the fitted restarts "
        f"({pol['fitted_restarts_iterations']} iterations in all) are a second yardstick.",
    )
    fig, ax = plots.new_figure(width=7, height=4)
    for i, r in enumerate(rows):
        best = best_end(r)
        worse = min(r["polished"]["elbo_a"], r["polished"]["elbo_b"])
        ax.plot([i, i], [0, (worse - best) / tokens], "k_", ms=14)
        ax.plot(i - 0.1, r["path"]["peak_value"] / tokens - best / tokens, "^", color="C0")
        ax.plot(i, r["polished"]["gain"] / tokens, "o", color="C1")
        restarts = (np.asarray(r["baseline"]["elbos"]) - best) / tokens
        ax.plot(np.full(restarts.shape, i + 0.1), restarts, "x", color="C2")
    ax.plot([], [], "k_", label="endpoints a, b")
    ax.plot([], [], "^", color="C0", label="path's highest point")
    ax.plot([], [], "o", color="C1", label="CAVI from there")
    ax.plot([], [], "x", color="C2", label="random restarts (same iterations)")
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_xticks(range(len(rows)), [f"{r['a']}, {r['b']}" for r in rows])
    plots.label_axes(
        ax,
        "pair of restarts (a, b)",
        "ELBO per token - better endpoint's (nats)",
        legend={"frameon": False, "fontsize": 8},
    )
    page.figure(
        fig,
        "polish",
        "Per pair of restarts, relative to the better endpoint's ELBO per training token: "
        "both endpoints, the highest point of the NEB path, the maximum CAVI reached from it, "
        "and every random restart of the equal-iteration baseline.",
    )


_PATH_LABELS = {
    "neb_profile": "NEB (profile)",
    "autoneb": "AutoNEB (profile)",
    "bezier": "Bezier (profile)",
    "neb_full": "NEB (full)",
}


def _ylim(curves) -> tuple[float, float]:
    """Y range that shows the given curves (the unaligned line may fall far below them)."""
    lo = min(float(np.min(c)) for c in curves)
    hi = max(float(np.max(c)) for c in curves)
    pad = 0.1 * (hi - lo) or 1e-3
    return lo - pad, hi + pad


def _along_pivots(ax, neb, linear, ylabel: str, title: str | None = None) -> None:
    """A quantity at every pivot of the NEB path and of the straight line, against the
    pivot's position."""
    from ...report import plots

    pos = np.linspace(0, 1, len(neb))
    plots.curves_plot(
        ax,
        {"NEB path (pivots)": (pos, neb), "straight line": (pos, linear)},
        xlabel="pivot position (fraction of the pivot index)",
        ylabel=ylabel,
        title=title,
        styles={"NEB path (pivots)": "o-", "straight line": "s--"},
    )
