"""The results of the steps collected into metrics.json and arrays.npz."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import Config


@dataclass(frozen=True)
class StepResults:
    """What the steps of the run computed, as their cached units returned them."""

    fit: dict  # maxima.fit_maxima: the restarts' topics, histories, alpha and eta
    pair: dict  # maxima.choose_pair: the chosen maxima a and b and their alignment
    pairs: list[dict]  # the pairs polished: the chosen one, then maxima.more_pairs
    paths: dict  # "lines", "neb_profile", "autoneb", "bezier", "full" (the paths module)
    polished: dict  # "polish_<path>" and "polish_pair<i>" (maxima_from_paths)
    sweeps: dict  # sweep name -> value -> sweeps.sweep_point or sweeps.topic_point
    planes: dict  # kind -> planes.plane
    reading: dict  # reading.read_path
    coherence: dict  # reading.coherence_along


def coherence_metrics(coherence: dict, neb_p: dict, lines: dict, tokens: int) -> dict:
    """Mean coherence over the topics at every pivot of both paths, with the ELBO per
    token at the same pivots for comparison (the straight line's from its dense values,
    whose every ``per_segment``-th point is a pivot)."""
    out = {key: coherence[key] for key in ("top_n", "umass_epsilon", "npmi_epsilon")}
    dense = lines["aligned"]["dense_values"]
    n = len(neb_p["values"])
    per_segment = (len(dense) - 1) // (n - 1)
    elbo = {"neb": neb_p["values"], "linear": dense[::per_segment]}
    for path in ("neb", "linear"):
        out[path] = {
            f"{measure}_mean": coherence[path][measure].mean(axis=1).tolist()
            for measure in ("umass", "npmi")
        }
        out[path]["elbo_per_token"] = (np.asarray(elbo[path]) / tokens).tolist()
    return out


def polish_metrics(cfg: Config, results: StepResults, timings: dict) -> dict:
    """The polish results, with two yardsticks besides the equal-iteration restarts: the
    best of the fitted restarts, and each path's cost in CAVI iterations of the fits."""
    polished, pairs, fit, pair = results.polished, results.pairs, results.fit, results.pair
    done = results.paths
    neb_p = done["neb_profile"]
    first = polished["polish_pair0"]
    paths = {"neb_profile": first["polished"]}
    for name in ("autoneb", "bezier", "neb_full"):
        paths[name] = polished[f"polish_{name}"]
    peaks = {
        "neb_profile": neb_p["peak_value"],
        "autoneb": done["autoneb"]["peak_value"],
        "bezier": done["bezier"]["peak_value"],
        "neb_full": done["full"]["neb"]["peak_value"],
    }
    for name, value in peaks.items():
        paths[name] = {**paths[name], "peak_value": value}
    best_fit = max(pair["profile_elbo_restarts"])
    # Wall time of one CAVI iteration of the fits (restarts run one after another).
    per_iter = timings["fit_seconds"] / sum(fit["n_iter"])
    rows = []
    for i in range(len(pairs)):
        r = dict(polished[f"polish_pair{i}"])
        seconds = timings["neb_profile_seconds"] if i == 0 else r["path"]["wall_seconds"]
        # Derived from wall times, so under "timings": they differ between any two runs.
        r["path"] = {
            **r["path"],
            "wall_seconds": seconds,
            "timings": {"cavi_iterations_equivalent": seconds / per_iter},
        }
        r["gain_over_best_fitted_restart"] = r["polished"]["elbo"] - best_fit
        rows.append(r)
    return {
        "same_max": cfg.distinct_min,
        "timings": {"cavi_iteration_seconds": per_iter},
        "fitted_restarts_iterations": int(sum(fit["n_iter"])),
        "paths": paths,
        "pairs": rows,
        "n_new_above_both": sum(
            r["polished"]["identity"] == "new" and r["polished"]["gain"] > 0 for r in rows
        ),
        "n_polish_beats_baseline": sum(r["polished"]["elbo"] > r["baseline"]["elbo"] for r in rows),
        "n_above_best_fitted_restart": sum(r["gain_over_best_fitted_restart"] > 0 for r in rows),
        "n_baseline_above_both": sum(
            r["baseline"]["elbo"] > max(r["polished"]["elbo_a"], r["polished"]["elbo_b"])
            for r in rows
        ),
    }


def collect(cfg: Config, inputs: dict, results: StepResults, timings: dict) -> tuple[dict, dict]:
    """metrics.json (without the fields the run adds: study, version, claims, ...) and
    arrays.npz of a run, from its inputs and the results of its steps."""
    train = inputs["train"]
    fit, pair, planes, read, sweeps = (
        results.fit,
        results.pair,
        results.planes,
        results.reading,
        results.sweeps,
    )
    lines, neb_p, full = results.paths["lines"], results.paths["neb_profile"], results.paths["full"]
    auto, bez = results.paths["autoneb"], results.paths["bezier"]
    tol_slack = cfg.tol * abs(max(neb_p["summary"]["f_a"], neb_p["summary"]["f_b"]))
    best_endpoint = {
        "profile": max(neb_p["summary"]["f_a"], neb_p["summary"]["f_b"]),
        "full": max(full["neb"]["summary"]["f_a"], full["neb"]["summary"]["f_b"]),
    }
    excess = {
        "neb_profile": float(neb_p["dense_values"].max() - best_endpoint["profile"]),
        "autoneb": float(auto["dense_values"].max() - best_endpoint["profile"]),
        "bezier": float(bez["dense_values"].max() - best_endpoint["profile"]),
        "neb_full": float(full["neb"]["dense_values"].max() - best_endpoint["full"]),
    }
    barriers = {
        "linear_unaligned": lines["unaligned"]["barrier"],
        "linear_aligned": lines["aligned"]["barrier"],
        "neb_profile": neb_p["summary"]["barrier"],
        "autoneb": auto["summary"]["barrier"],
        "bezier": bez["summary"]["barrier"],
        "linear_aligned_full": full["line"]["barrier"],
        "neb_full": full["neb"]["summary"]["barrier"],
    }

    def removed(best, line):
        return 1.0 - best / line if line > 0 else 1.0

    best_profile = min(barriers["neb_profile"], barriers["autoneb"], barriers["bezier"])
    metrics = {
        "data": {
            "source": inputs["source"],
            "n_docs": inputs["corpus"].n_docs,
            "n_words": inputs["corpus"].n_words,
            "n_train_docs": train.n_docs,
            "n_train_tokens": train.n_tokens,
            "n_test_docs": inputs["observed"].n_docs,
        },
        "fit": {
            "elbo_restarts": fit["history"][-1].tolist(),
            "n_iter": fit["n_iter"],
            "converged": fit["converged"],
            "alpha": fit["alpha"],
            "eta": fit["eta"],
        },
        "endpoints": {
            "a": pair["a"],
            "b": pair["b"],
            "elbo_a": neb_p["summary"]["f_a"],
            "elbo_b": neb_p["summary"]["f_b"],
            "elbo_full_a": full["neb"]["summary"]["f_a"],
            "elbo_full_b": full["neb"]["summary"]["f_b"],
            "profile_elbo_restarts": pair["profile_elbo_restarts"],
            "distinct": pair["distinct"],
        },
        "alignment": {
            key: pair[key]
            for key in (
                "permutation",
                "distances_aligned",
                "distances_unaligned",
                "mean_distance_aligned",
                "mean_distance_unaligned",
            )
        },
        "barrier": barriers,
        "barrier_per_token": {k: v / train.n_tokens for k, v in barriers.items()},
        "barrier_removed_fraction": {
            "profile": removed(best_profile, barriers["linear_aligned"]),
            "full": removed(barriers["neb_full"], barriers["linear_aligned_full"]),
        },
        "convergence_check": {
            "tolerance_slack": tol_slack,
            "max_excess_over_best_endpoint": excess,
            "violations": sorted(k for k, v in excess.items() if v > tol_slack),
        },
        "paths": {
            "neb_profile": neb_p["summary"],
            "autoneb": auto["summary"],
            "bezier": bez["summary"],
            "neb_full": full["neb"]["summary"],
            "linear_aligned_length": lines["aligned"]["length"],
        },
        "planes": {
            kind: {"max_path_off_plane": float(p["path_off_plane"].max())}
            for kind, p in planes.items()
        },
        "reading": {
            "pivots_shown": read["pivots_shown"],
            "top_words": read["top_words"],
            "heldout_per_token": {
                name: {
                    "neb": s["neb"].tolist(),
                    "linear": s["linear"].tolist(),
                    "n_tokens": s["n_tokens"],
                    "n_docs": s["n_docs"],
                }
                for name, s in read["scores"].items()
            },
        },
        "sweeps": {
            name: {
                value: {k: v for k, v in point.items() if k != "bottleneck_history"}
                for value, point in points.items()
            }
            for name, points in sweeps.items()
        },
    }
    arrays = {"fit_history": fit["history"], "neb_profile_pivots": neb_p["pivots"]}
    for name, rec in (
        ("neb_profile", neb_p),
        ("autoneb", auto),
        ("bezier", bez),
        ("neb_full", full["neb"]),
    ):
        for field in ("values", "history", "dense_values", "dense_positions", "objective"):
            if field in rec:
                arrays[f"{name}_{field}"] = rec[field]
    for name, rec in (
        ("linear_unaligned", lines["unaligned"]),
        ("linear_aligned", lines["aligned"]),
        ("linear_aligned_full", full["line"]),
    ):
        arrays[f"{name}_dense_values"] = rec["dense_values"]
        arrays[f"{name}_dense_positions"] = rec["dense_positions"]
    for kind, p in planes.items():
        for field in ("xs", "ys", "values", "path_xy", "line_xy", "path_off_plane"):
            arrays[f"plane_{kind}_{field}"] = p[field]
    for name in ("lr", "pivots", "spring"):
        for value, point in sweeps[name].items():
            arrays[f"sweep_{name}_{value}_bottleneck"] = point["bottleneck_history"]
    metrics["polish"] = polish_metrics(cfg, results, timings)
    metrics["coherence"] = coherence_metrics(results.coherence, neb_p, lines, train.n_tokens)
    for path in ("neb", "linear"):
        for measure in ("umass", "npmi"):
            arrays[f"coherence_{path}_{measure}"] = results.coherence[path][measure]
    metrics["timings"] = timings
    return metrics, arrays


def best_end(row: dict) -> float:
    """The better endpoint's ELBO of a polish row (nats)."""
    return max(row["polished"]["elbo_a"], row["polished"]["elbo_b"])
