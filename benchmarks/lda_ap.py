"""Time batch variational LDA on the AP corpus: elbolab against scikit-learn and gensim.

Usage::

    python benchmarks/lda_ap.py [--data ROOT] [--repeats 3] [--iters 50] [--topics 10]
                                [--json OUT]

All three tools run batch variational Bayes (Blei et al. 2003; Hoffman et al. 2010)
with alpha = eta = 0.1, for the same number of outer iterations, from the SAME initial
topics lambda0 = numpy.random.RandomState(0).gamma(100, 0.01, (K, V)) (scikit-learn and
gensim draw exactly this with random_state=0; the script checks it). Their final topics
are then scored by one evaluator, elbolab's ``LDA.score`` with the topics held fixed
(E-step to convergence, then the full ELBO with every Dirichlet normalizer), divided by
the number of tokens.

Every repeat runs the three fits one after another in this process; the table gives
the median wall time and all values. elbolab's numba kernels are compiled (or loaded
from numba's on-disk cache) by one untimed warm-up fit of 1 iteration; the time of that
first call is reported separately. What a fresh install pays is measured apart, in
``--cold`` subprocesses that each start with an empty numba cache (``NUMBA_CACHE_DIR``
a new temporary folder): the first 1-iteration fit (compilation included) against a
second one in the same process. Timings on a shared machine are noisy: medians are
reported, with the load average. Nothing is written to disk except ``--json OUT`` (and
the temporary caches, removed).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ALPHA = ETA = 0.1
# gensim is optional (the "bench" extra): without it its column is left out, and said so.
HAVE_GENSIM = importlib.util.find_spec("gensim") is not None


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="data root holding ap/ (default: $ELBOLAB_DATA)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per tool")
    parser.add_argument("--iters", type=int, default=50, help="outer iterations / passes")
    parser.add_argument("--topics", type=int, default=10, help="number of topics K")
    parser.add_argument(
        "--starts",
        type=int,
        default=5,
        help="shared initial topics RandomState(s), s < STARTS, for the ELBO comparison "
        "of elbolab and scikit-learn (0 skips it)",
    )
    parser.add_argument(
        "--cold",
        type=int,
        default=3,
        help="fresh processes with an empty numba cache timing the first fit (0 skips)",
    )
    parser.add_argument("--json", metavar="OUT", help="also write the numbers to OUT")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.iters < 1 or args.topics < 1:
        parser.error("--repeats, --iters and --topics must be >= 1")
    return args


def initial_topics(n_topics: int, n_words: int, seed: int = 0) -> np.ndarray:
    """lambda0 (K, V): what scikit-learn and gensim draw first from RandomState(seed)."""
    return np.random.RandomState(seed).gamma(100.0, 0.01, (n_topics, n_words))


# ------------------------------------------------------------------------ the three fits
def fit_elbolab(counts, init, iters):
    """elbolab LDA started from ``init``; returns its final lambda (K, V)."""
    from elbolab.models.lda import LDA

    model = LDA(n_topics=init.shape[0], alpha=ALPHA, eta=ETA, max_iter=iters, tol=0)
    model.fit(counts, state=model.initial_state(counts, lam=init[None]))
    return model.components_, model


def sklearn_model(n_topics, iters, seed=0):
    from sklearn.decomposition import LatentDirichletAllocation

    return LatentDirichletAllocation(
        n_components=n_topics,
        doc_topic_prior=ALPHA,
        topic_word_prior=ETA,
        learning_method="batch",
        max_iter=iters,
        n_jobs=2,
        evaluate_every=-1,
        random_state=seed,
    )


def fit_sklearn(x_float, n_topics, iters, seed=0):
    return sklearn_model(n_topics, iters, seed).fit(x_float).components_


def gensim_model(x_float, id2word, n_topics, iters, train=True):
    from gensim.matutils import Sparse2Corpus
    from gensim.models import LdaModel

    return LdaModel(
        corpus=Sparse2Corpus(x_float, documents_columns=False) if train else None,
        id2word=id2word,
        num_topics=n_topics,
        alpha=ALPHA,
        eta=ETA,
        passes=iters,
        iterations=100,
        gamma_threshold=1e-3,
        update_every=0,  # batch: one M-step per pass over the whole corpus
        chunksize=x_float.shape[0],
        random_state=0,
        eval_every=None,
        dtype=np.float64,  # gensim's default is float32; the other two run in float64
    )


def fit_gensim(x_float, id2word, n_topics, iters):
    return gensim_model(x_float, id2word, n_topics, iters).state.get_lambda()


def check_same_start(x_float, id2word, init):
    """Whether scikit-learn's and gensim's initial lambda equal ``init`` (from their code)."""
    sk = sklearn_model(init.shape[0], 1)
    sk._init_latent_vars(init.shape[1], dtype=np.float64)
    # gensim keeps the draw in sstats and takes exp(E[log beta]) of it for the first
    # E-step; get_lambda() = eta + sstats only matters from the first M-step on.
    same = {"sklearn": bool(np.array_equal(sk.components_, init))}
    if HAVE_GENSIM:
        gs = gensim_model(x_float, id2word, init.shape[0], 1, train=False)
        same["gensim"] = bool(np.array_equal(gs.state.sstats, init))
    return same


def elbo_per_token(counts, lam, n_tokens):
    """The one evaluator: elbolab's full ELBO with topics ``lam`` fixed, per token (nats)."""
    from elbolab.models.lda import LDA

    model = LDA(n_topics=lam.shape[0], alpha=ALPHA, eta=ETA)
    model.components_ = np.asarray(lam, dtype=np.float64)
    model.alpha_, model.eta_ = ALPHA, ETA
    return model.score(counts) / n_tokens


# ----------------------------------------------------------------------------- report
def versions():
    import numba
    import scipy
    import sklearn

    import elbolab

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "numba": numba.__version__,
        "scikit-learn": sklearn.__version__,
        "gensim": __import__("gensim").__version__ if HAVE_GENSIM else "not installed",
        "elbolab": elbolab.__version__,
    }


def machine():
    import numba

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count()
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "usable_cores": usable,
        "numba_threads": numba.get_num_threads(),
        "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
    }


def numba_cache_present() -> bool:
    """Whether numba's on-disk cache of the LDA kernels exists (first call = cache load)."""
    import elbolab.models._lda_kernels as kernels

    return any((Path(kernels.__file__).parent / "__pycache__").glob("_lda_kernels.*.nbi"))


_COLD_FIT = """
import sys, time
from pathlib import Path
from elbolab.data import load_ap
from elbolab.models.lda import LDA
ap = load_ap(Path(sys.argv[1]))
times = []
for _ in range(2):
    start = time.perf_counter()
    LDA(n_topics=int(sys.argv[2]), alpha=0.1, eta=0.1, max_iter=1, tol=0).fit(ap)
    times.append(time.perf_counter() - start)
print(*times)
"""


def cold_first_fit(root: str, n_topics: int) -> tuple[float, float]:
    """(first, second) seconds of a 1-iteration fit in a new process, empty numba cache."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory(prefix="numba-cold-") as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        done = subprocess.run(
            [sys.executable, "-c", _COLD_FIT, root, str(n_topics)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        sys.exit(f"lda_ap.py: the cold-cache fit failed:\n{done.stderr}")
    first, second = (float(t) for t in done.stdout.split())
    return first, second


def main(argv=None):
    args = parse_args(argv)
    logging.getLogger("gensim").setLevel(logging.WARNING)

    from elbolab.data import load_ap
    from elbolab.errors import ElbolabError

    root = args.data or os.environ.get("ELBOLAB_DATA")
    if not root:
        sys.exit("lda_ap.py: give --data ROOT or set ELBOLAB_DATA to a folder holding ap/")
    try:
        ap = load_ap(Path(root))
    except ElbolabError as err:
        sys.exit(f"lda_ap.py: {err}")
    counts = ap.counts
    x_float = counts.astype(np.float64)
    n_tokens = ap.n_tokens
    n_topics, iters = args.topics, args.iters
    id2word = dict(enumerate(ap.vocab))
    init = initial_topics(n_topics, ap.n_words)
    same_start = check_same_start(x_float, id2word, init)

    info, libs = machine(), versions()
    print(f"AP corpus: {ap.n_docs} documents, {ap.n_words} words, {n_tokens} tokens")
    print(
        f"machine: {info['cpu_count']} cores ({info['usable_cores']} usable), "
        f"numba threads {info['numba_threads']}, load average at start "
        f"{info['load_average_at_start']}; {info['platform']}"
    )
    print("versions: " + ", ".join(f"{k} {v}" for k, v in libs.items()))
    print(
        f"setting: K={n_topics}, alpha=eta={ALPHA}, {iters} batch iterations, "
        f"{args.repeats} repeats, same initial lambda for all three"
    )
    for tool, same in same_start.items():
        print(
            f"  {tool} initial lambda == RandomState(0).gamma(100, 0.01, (K, V)): "
            + ("yes (checked)" if same else "NO, it differs: starts are not identical")
        )

    cached = numba_cache_present()
    # Warm-up: compile (or load from numba's cache) the kernels; timed, but not counted.
    t0 = time.perf_counter()
    fit_elbolab(counts, init, 1)
    first_call = time.perf_counter() - t0
    t0 = time.perf_counter()
    fit_elbolab(counts, init, 1)
    second_call = time.perf_counter() - t0

    times = {"elbolab": [], "scikit-learn": []}
    if HAVE_GENSIM:
        times["gensim"] = []
    else:
        print("gensim is not installed (pip install 'elbolab[bench]'): its column is left out")
    lams = {}
    own_elbo = None
    for rep in range(args.repeats):
        t0 = time.perf_counter()
        lams["elbolab"], model = fit_elbolab(counts, init, iters)
        times["elbolab"].append(time.perf_counter() - t0)
        own_elbo = model.elbo_ / n_tokens
        t0 = time.perf_counter()
        lams["scikit-learn"] = fit_sklearn(x_float, n_topics, iters)
        times["scikit-learn"].append(time.perf_counter() - t0)
        if HAVE_GENSIM:
            t0 = time.perf_counter()
            lams["gensim"] = fit_gensim(x_float, id2word, n_topics, iters)
            times["gensim"].append(time.perf_counter() - t0)
        print(
            f"  repeat {rep + 1}/{args.repeats}: "
            + ", ".join(f"{tool} {t[-1]:.2f} s" for tool, t in times.items()),
            flush=True,
        )

    scores = {tool: elbo_per_token(counts, lam, n_tokens) for tool, lam in lams.items()}
    medians = {tool: statistics.median(t) for tool, t in times.items()}

    print()
    print(f"{'tool':<14}{'median s':>10}  {'all runs (s)':<28}{'ELBO/token (nats)':>18}")
    for tool in times:
        runs = ", ".join(f"{t:.2f}" for t in times[tool])
        print(f"{tool:<14}{medians[tool]:>10.2f}  {runs:<28}{scores[tool]:>18.5f}")
    print()
    print(
        f"elbolab first call incl. JIT compile / cache load (1 iteration): {first_call:.2f} s "
        f"(a second 1-iteration fit: {second_call:.2f} s); not in the table; "
        + (
            "numba's on-disk cache was present, so this is mostly a cache load"
            if cached
            else "no numba cache on disk, so this includes compilation"
        )
    )
    cold = [cold_first_fit(str(root), n_topics) for _ in range(args.cold)]
    if cold:
        firsts, seconds = [c[0] for c in cold], [c[1] for c in cold]
        print(
            f"fresh install (empty numba cache, new process), median of {len(cold)}: first "
            f"1-iteration fit {statistics.median(firsts):.2f} s, second "
            f"{statistics.median(seconds):.2f} s; compilation about "
            f"{statistics.median(firsts) - statistics.median(seconds):.2f} s "
            f"(firsts {', '.join(f'{t:.2f}' for t in firsts)}); load average now "
            f"{[round(v, 2) for v in os.getloadavg()]}"
        )
    ratio_sk = medians["scikit-learn"] / medians["elbolab"]
    ratio_gs = medians["gensim"] / medians["elbolab"] if HAVE_GENSIM else None
    diff_sk = scores["elbolab"] - scores["scikit-learn"]
    diff_gs = scores["elbolab"] - scores["gensim"] if HAVE_GENSIM else None
    print(f"time ratio scikit-learn / elbolab: {ratio_sk:.2f}")
    if HAVE_GENSIM:
        print(f"time ratio gensim / elbolab:       {ratio_gs:.2f}")
    print(f"ELBO/token elbolab - scikit-learn: {diff_sk:+.5f} nats")
    if HAVE_GENSIM:
        print(f"ELBO/token elbolab - gensim:       {diff_gs:+.5f} nats")
    print(
        f"(elbolab's own training bound elbo_/token: {own_elbo:.5f}; the evaluator "
        "re-infers gamma from scratch with the topics fixed)"
    )
    print()
    print("notes:")
    print(
        "- scikit-learn 'batch' sets lambda = eta + expected counts every iteration and "
        "restarts each document's E-step from a random gamma; n_jobs=2 (joblib processes)."
    )
    print(
        "- gensim update_every=0 makes one M-step per pass, but blends it into the old "
        "lambda with weight rho = (offset + pass + num_updates/chunksize)^-decay = "
        "(2 + pass)^-0.5 after the first pass (offset=1, decay=0.5 defaults), so it is a "
        "damped batch update, not plain CAVI; single process, float64 here."
    )
    print(
        "- elbolab restarts each document's E-step from gamma = alpha + N_d/K (an iteration "
        "that would lower the ELBO is redone keeping each document's better gamma); numba "
        "threads as listed above."
    )

    # One start is one draw from a landscape with many optima: compare over several.
    starts = []
    for seed in range(args.starts):
        start = initial_topics(n_topics, ap.n_words, seed)
        ours = elbo_per_token(counts, fit_elbolab(counts, start, iters)[0], n_tokens)
        theirs = elbo_per_token(counts, fit_sklearn(x_float, n_topics, iters, seed), n_tokens)
        starts.append({"seed": seed, "elbolab": ours, "scikit-learn": theirs})
    if starts:
        print()
        print(f"ELBO/token from {len(starts)} shared starts RandomState(s) (same evaluator):")
        print(f"{'s':>3}{'elbolab':>12}{'scikit-learn':>14}{'difference':>12}")
        for row in starts:
            diff = row["elbolab"] - row["scikit-learn"]
            print(
                f"{row['seed']:>3}{row['elbolab']:>12.5f}{row['scikit-learn']:>14.5f}{diff:>+12.5f}"
            )
        diffs = [row["elbolab"] - row["scikit-learn"] for row in starts]
        wins = sum(d > 0 for d in diffs)
        print(
            "median difference elbolab - scikit-learn: "
            f"{statistics.median(diffs):+.5f} nats/token; elbolab higher in {wins} of {len(diffs)}"
        )

    if args.json:
        result = {
            "starts": starts,
            "corpus": {"docs": ap.n_docs, "words": ap.n_words, "tokens": n_tokens},
            "setting": {"topics": n_topics, "alpha": ALPHA, "eta": ETA, "iters": iters},
            "repeats": args.repeats,
            "same_start": same_start,
            "machine": info,
            "versions": libs,
            "seconds": times,
            "median_seconds": medians,
            "elbo_per_token": scores,
            "elbolab_own_elbo_per_token": own_elbo,
            "elbolab_first_call_seconds": first_call,
            "elbolab_second_call_seconds": second_call,
            "numba_cache_present": cached,
            "cold_cache_fits_seconds": [{"first": a, "second": b} for a, b in cold],
            "ratio_sklearn_over_elbolab": ratio_sk,
            "ratio_gensim_over_elbolab": ratio_gs,
            "elbo_per_token_elbolab_minus_sklearn": diff_sk,
            "elbo_per_token_elbolab_minus_gensim": diff_gs,
        }
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
