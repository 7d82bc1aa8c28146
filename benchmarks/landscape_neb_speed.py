"""Time one NEB iteration on LDA's ELBO over AP: LDAObjective against plain torch autograd.

Usage::

    python benchmarks/landscape_neb_speed.py [--data ROOT] [--topics 10] [--iters 30]
                                             [--pivots 10] [--repeats 5] [--json OUT]

Setup (untimed): the AP corpus (2246 documents, 10473 words), two LDA restarts fitted
together by elbolab's batch CAVI (``LDA(n_restarts=2, max_iter=ITERS, tol=0)``,
alpha = eta = 1/K), the second restart's topics aligned to the first with
``elbolab.landscape.align`` (Hungarian matching on Hellinger distances). Their flat
vectors are the two NEB endpoints.

What is timed, each the median of ``--repeats``:

* **NEB iteration**: ``elbolab.landscape.neb`` with PIVOTS pivots (endpoints included)
  on the straight start; the time between consecutive ``callback`` calls, i.e. one NEB
  force + Adam step + one batched value-and-gradient evaluation of the trial path.
  NEB re-evaluates its fixed endpoints every iteration; the profile mode serves them
  from its memo of the previous call (same function, bit for bit), so it runs
  PIVOTS - 2 E-steps per iteration.
* **value + gradient at PIVOTS new pivots**: one batched ``f(x)`` and backward at
  PIVOTS distinct points that ``f`` has not seen (memo cleared), so all PIVOTS E-steps.

for three functions f of the pivots:

* ``profile``: ``LDAObjective(mode="profile")`` -- x = log lambda; gamma re-optimized
  by the compiled E-step for every pivot (fresh start); closed-form envelope gradient.
* ``profile, warm_start=True``: the same with the opt-in warm-started E-step (NEB
  iterations only; history-dependent, see ``elbolab.landscape.lda_objective``).
* ``full``: ``LDAObjective(mode="full")`` -- x = (log lambda, log gamma, phi logits),
  the ELBO with explicit phi and its closed-form gradient, both from compiled kernels
  (endpoints carry the fits' gamma).
* ``full, autograd``: ``LDAObjective(mode="full", full_gradient="autograd")`` -- the same
  function in pure torch differentiated by autograd (what full mode did before); the
  script prints the ratio of the two and checks that values and gradients agree.
* ``torch autograd (reference)``: what a user would otherwise write for the profile
  ELBO -- gamma re-optimized for every pivot by the same E-step kernel (fresh start, no
  gradient), then plain torch autograd through ``elbolab.models.lda.elbo`` (the
  differentiable reference bound) with that gamma held fixed. Same value and, by the
  envelope theorem, the same gradient as ``profile``; the script checks both.

Threads: torch's and numba's defaults (all cores the process may use). The machine's
load average is printed: on shared cores timings vary with what else runs. Progress
bars are off. Nothing is written to disk except ``--json OUT``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="data root holding ap/ (default: $ELBOLAB_DATA)")
    parser.add_argument("--topics", type=int, default=10, help="number of topics K")
    parser.add_argument("--iters", type=int, default=30, help="CAVI iterations of the fits")
    parser.add_argument("--pivots", type=int, default=10, help="NEB pivots, endpoints included")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats (median)")
    parser.add_argument("--json", metavar="OUT", help="also write the numbers to OUT")
    args = parser.parse_args(argv)
    if args.topics < 1 or args.iters < 1 or args.pivots < 3 or args.repeats < 1:
        parser.error("need --topics >= 1, --iters >= 1, --pivots >= 3, --repeats >= 1")
    return args


def reference_function(corpus, n_topics, alpha, eta, e_step_tol=1e-3, max_e_step_iter=100):
    """f(x (P, K V) log lambda) -> (P,): E-step for gamma, then autograd through ``elbo()``."""
    from elbolab.models import _lda_kernels as kernels
    from elbolab.models.lda import _as_csr, _topics, elbo

    X = _as_csr(corpus)
    lengths = np.asarray(X.sum(1)).ravel()

    def f(x):
        lam = x.reshape(x.shape[0], n_topics, -1).exp()
        beta, _ = _topics(lam.detach().numpy(), eta)
        gamma = np.ascontiguousarray(
            np.broadcast_to(
                alpha + lengths[None, :, None] / n_topics, (x.shape[0], X.shape[0], n_topics)
            )
        )
        kernels.e_step(X.indptr, X.indices, X.data, beta, gamma, alpha, e_step_tol, max_e_step_iter)
        return elbo(X, lam, torch.from_numpy(gamma), alpha, eta)

    return f


def value_and_grad(f, x):
    x = x.detach().clone().requires_grad_(True)
    values = f(x)
    (grad,) = torch.autograd.grad(values.sum(), x)
    return values.detach(), grad


def time_eval(f, path, repeats, before=None):
    """Median seconds of one batched value + gradient at ``path``; also the last result."""
    runs = []
    for _ in range(repeats):
        if before is not None:
            before()
        start = time.perf_counter()
        out = value_and_grad(f, path)
        runs.append(time.perf_counter() - start)
    return runs, out


def time_neb(f, a, b, pivots, repeats):
    """Seconds of ``repeats`` NEB iterations (between consecutive callbacks)."""
    from elbolab.landscape import Optimizer, neb

    stamps = []

    def callback(iteration, path, values):
        stamps.append(time.perf_counter())
        return False

    result = neb(
        f,
        a,
        b,
        n_pivots=pivots,
        steps=repeats + 1,
        optimizer=Optimizer(lr=0.01),
        per_segment=1,
        callback=callback,
        show_progress=False,
    )
    return list(np.diff(stamps)), result


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("ELBOLAB_NO_PROGRESS", "1")
    import numba

    import elbolab
    from elbolab.data import load_ap
    from elbolab.errors import ElbolabError
    from elbolab.landscape import align, apply_permutation, linear_path
    from elbolab.landscape.lda_objective import LDAObjective
    from elbolab.models.lda import LDA

    root = args.data or os.environ.get("ELBOLAB_DATA")
    if not root:
        sys.exit("landscape_neb_speed.py: give --data ROOT or set ELBOLAB_DATA")
    try:
        ap = load_ap(Path(root))
    except ElbolabError as err:
        sys.exit(f"landscape_neb_speed.py: {err}")
    k = args.topics
    alpha = eta = 1.0 / k
    print(f"AP corpus: {ap.n_docs} documents, {ap.n_words} words, {ap.nnz} non-zeros")
    print(
        f"machine: {platform.platform()}; usable cores {len(os.sched_getaffinity(0))}, "
        f"torch threads {torch.get_num_threads()}, numba threads {numba.get_num_threads()}; "
        f"load average {[round(v, 2) for v in os.getloadavg()]}"
    )
    print(
        f"versions: elbolab {elbolab.__version__}, torch {torch.__version__}, numba "
        f"{numba.__version__}, numpy {np.__version__}"
    )

    start = time.perf_counter()
    model = LDA(n_topics=k, alpha=alpha, eta=eta, max_iter=args.iters, tol=0, n_restarts=2)
    model.fit(ap)
    ra, rb = model.restarts_
    perm, dist = align(ra.components, rb.components)
    lam_b = apply_permutation(rb.components, perm, axis=0)
    gamma_b = apply_permutation(rb.gamma, perm, axis=1)
    print(
        f"fit: 2 restarts x {args.iters} iterations in {time.perf_counter() - start:.1f} s; "
        f"ELBO/token {ra.elbo / ap.n_tokens:.4f}, {rb.elbo / ap.n_tokens:.4f}; aligned "
        f"Hellinger distances min {dist.min():.3f} median {np.median(dist):.3f} "
        f"max {dist.max():.3f}"
    )

    results = {}
    # ------------------------------------------------------------------ profile
    prof = LDAObjective(ap, k, alpha, eta, mode="profile")
    xa, xb = prof.to_vector(ra.components), prof.to_vector(lam_b)
    path = linear_path(xa, xb, args.pivots)
    value_and_grad(prof, path[:2])  # compile / load numba's cache, untimed
    neb_runs, _ = time_neb(prof, xa, xb, args.pivots, args.repeats)
    eval_runs, (v_prof, g_prof) = time_eval(prof, path, args.repeats, prof.clear_cache)
    results["profile"] = {"neb": neb_runs, "eval": eval_runs}

    # Opt-in warm starts: NEB iterations only (a first call has nothing to start from).
    warm = LDAObjective(ap, k, alpha, eta, mode="profile", warm_start=True)
    neb_runs, warm_result = time_neb(warm, xa, xb, args.pivots, args.repeats)
    with torch.no_grad():
        prof.clear_cache()
        fresh_values = prof(warm_result.pivots)
    warm_diff = (warm_result.values - fresh_values).abs().max().item() / ap.n_tokens
    results["profile, warm_start=True"] = {"neb": neb_runs}

    # ------------------------------------------------------------------ reference
    ref = reference_function(ap, k, alpha, eta)
    neb_runs, _ = time_neb(ref, xa, xb, args.pivots, args.repeats)
    eval_runs, (v_ref, g_ref) = time_eval(ref, path, args.repeats)
    results["torch autograd (reference)"] = {"neb": neb_runs, "eval": eval_runs}
    value_diff = float((v_prof - v_ref).abs().max() / v_ref.abs().max())
    grad_diff = float((g_prof - g_ref).abs().max() / g_ref.abs().max())

    # ------------------------------------------------------------------ full
    full = LDAObjective(ap, k, alpha, eta, mode="full")
    fa, fb = full.to_vector(ra.components, ra.gamma), full.to_vector(lam_b, gamma_b)
    full_path = linear_path(fa, fb, args.pivots)
    value_and_grad(full, full_path[:2])  # compile / load numba's cache, untimed
    neb_runs, _ = time_neb(full, fa, fb, args.pivots, args.repeats)
    eval_runs, (v_full, g_full) = time_eval(full, full_path, args.repeats)
    results["full"] = {"neb": neb_runs, "eval": eval_runs}
    auto = LDAObjective(ap, k, alpha, eta, mode="full", full_gradient="autograd")
    neb_runs, _ = time_neb(auto, fa, fb, args.pivots, args.repeats)
    eval_runs, (v_auto, g_auto) = time_eval(auto, full_path, args.repeats)
    results["full, autograd"] = {"neb": neb_runs, "eval": eval_runs}
    full_value_diff = float((v_full - v_auto).abs().max() / v_auto.abs().max())
    full_grad_diff = float((g_full - g_auto).abs().max() / g_auto.abs().max())
    del full_path, g_full, g_auto

    med = {name: {kind: statistics.median(r[kind]) for kind in r} for name, r in results.items()}
    print()
    print(f"{args.pivots} pivots, K = {k}; median of {args.repeats} (seconds)")
    print(f"{'function':<28}{'NEB iteration':>15}{'value+grad':>13}  all NEB iterations")
    for name, r in results.items():
        runs = " ".join(f"{t:.3f}" for t in r["neb"])
        value_grad = f"{med[name]['eval']:.3f}" if "eval" in r else "-"
        print(f"{name:<28}{med[name]['neb']:>15.3f}{value_grad:>13}  {runs}")
    base = med["torch autograd (reference)"]
    print()
    for name in ("profile", "profile, warm_start=True", "full"):
        line = f"ratio reference / {name}: NEB iteration {base['neb'] / med[name]['neb']:.2f}x"
        if "eval" in med[name]:
            line += f", value+grad {base['eval'] / med[name]['eval']:.2f}x"
        print(line)
    old, new = med["full, autograd"], med["full"]
    print(
        f"ratio full autograd / full closed form: NEB iteration {old['neb'] / new['neb']:.2f}x, "
        f"value+grad {old['eval'] / new['eval']:.2f}x"
    )
    print(
        f"full closed form vs autograd at the {args.pivots} straight-line pivots: max relative "
        f"difference of values {full_value_diff:.1e}, of gradients {full_grad_diff:.1e}"
    )
    print(
        f"warm_start=True vs fresh E-steps at the warm run's last pivots: max |difference| "
        f"{warm_diff:.1e} nats/token"
    )
    print(
        f"profile vs reference at the {args.pivots} straight-line pivots: max relative "
        f"difference of values {value_diff:.1e}, of gradients {grad_diff:.1e}"
    )
    print(
        "profile ELBO/token along the straight line: "
        + " ".join(f"{v:.4f}" for v in (v_prof / ap.n_tokens).tolist())
    )
    print(
        "full ELBO/token along the straight line (gamma, phi interpolated too): "
        + " ".join(f"{v:.4f}" for v in (v_full / ap.n_tokens).tolist())
    )
    if args.json:
        out = {
            "pivots": args.pivots,
            "topics": k,
            "repeats": args.repeats,
            "median_seconds": med,
            "runs": results,
            "profile_vs_reference": {"value": value_diff, "gradient": grad_diff},
            "full_closed_form_vs_autograd": {"value": full_value_diff, "gradient": full_grad_diff},
            "warm_vs_fresh_nats_per_token": warm_diff,
            "load_average_at_end": list(os.getloadavg()),
        }
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
