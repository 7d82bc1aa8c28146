"""The ``elbolab`` command: studies from the registry, LDA fits, data, reports, demo.

Bad input (data, settings, run directories) ends with one line on stderr and exit
code 2; nothing is written before the input has been checked.
"""

from __future__ import annotations

import argparse
import csv
import shlex
import sys
from pathlib import Path

import numpy as np

from . import __version__, data, studies
from .errors import ConfigError, DataError, ElbolabError
from .progress import close_all


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, type=Path, help="run directory to write")
    p.add_argument(
        "--data",
        type=Path,
        default=None,
        help="data root (default: $ELBOLAB_DATA, then the user cache)",
    )
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run in --out")
    p.add_argument(
        "--scheduler",
        default="auto",
        help="where independent units (restarts, sweep points, models) run: auto (the "
        "default: this process on fewer than 4 cores or for short work, else a local "
        "Dask cluster), local (a Dask cluster sized to this machine), local:N (N workers), "
        "serial (this process), or tcp://HOST:PORT (an existing Dask scheduler)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="elbolab", description="See inside the ELBO: studies, LDA fits, data and reports."
    )
    parser.add_argument("--version", action="version", version=f"elbolab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("list", help="list the studies and their presets")

    p = sub.add_parser("run", help="run a study into a run directory")
    p.add_argument("study", help="study name (see `elbolab list`)")
    p.add_argument("--preset", default="default", help="smoke | default | paper")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting of the preset (repeatable)",
    )
    p.add_argument(
        "--device",
        default=None,
        help="where neural networks train and are evaluated (surgery, zoo, linear part 4, "
        "fkl): auto (CUDA when available; the presets' default), cpu, cuda or cuda:N. "
        "The LDA studies (lda, landscape) compute on the CPU and accept only auto or cpu",
    )
    _add_run_options(p)

    p = sub.add_parser("report", help="re-render report.html of a finished run")
    p.add_argument("rundir", type=Path)

    lda = sub.add_parser("lda", help="LDA tools").add_subparsers(dest="lda_command", required=True)
    p = lda.add_parser("fit", help="fit LDA by batch CAVI with restarts")
    p.add_argument(
        "--topics",
        type=int,
        default=None,
        help="number of topics K (required unless --init gives it; with --init it must be "
        "the model's K)",
    )
    p.add_argument("--restarts", type=int, default=1, help="random initializations (batched)")
    p.add_argument("--iters", type=int, default=100, help="maximum CAVI iterations")
    p.add_argument("--tol", type=float, default=1e-6, help="relative ELBO gain to stop at")
    p.add_argument(
        "--alpha", type=float, default=None, help="Dirichlet prior on theta (default 1/K)"
    )
    p.add_argument(
        "--eta", type=float, default=None, help="Dirichlet prior on topics (default 1/K)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--corpus",
        type=Path,
        default=None,
        help="corpus file: UCI bag-of-words if named docword.* (plain or .gz), else lda-c "
        "(default: AP)",
    )
    p.add_argument(
        "--vocab",
        type=Path,
        default=None,
        help="vocabulary file for --corpus, one word per line (for docword.NAME.txt the "
        "default is vocab.NAME.txt beside it)",
    )
    p.add_argument(
        "--init",
        type=Path,
        default=None,
        metavar="MODEL",
        help="a saved model (.npz, e.g. RUNDIR/models/lda-k10.npz) to start from: its "
        "topics replace the random ones, its K is the default of --topics, its alpha and "
        "eta the defaults of --alpha and --eta; the corpus must have its vocabulary; "
        "--restarts must be 1 (the start is deterministic)",
    )
    _add_run_options(p)

    p = lda.add_parser(
        "transform",
        help="topic proportions of new documents under a saved LDA model",
        description="Topic proportions of every document of --corpus: gamma / sum(gamma), "
        "the mean of q(theta_d) = Dir(gamma_d) with the model's topics fixed (rows sum to "
        "1). When both the model and the corpus have a vocabulary, words are matched by "
        "name and words the model does not know are dropped (their token count is "
        "printed); otherwise word ids are taken as the model's.",
    )
    p.add_argument("model", type=Path, help="saved model (.npz), e.g. RUNDIR/models/lda-k10.npz")
    p.add_argument(
        "--corpus",
        type=Path,
        required=True,
        help="corpus file: UCI bag-of-words if named docword.* (plain or .gz), else lda-c",
    )
    p.add_argument(
        "--vocab",
        type=Path,
        default=None,
        help="vocabulary file for --corpus (for docword.NAME.txt the default is "
        "vocab.NAME.txt beside it)",
    )
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        help="file to write: .csv (header doc,topic_0,...) or .npy (a D x K array)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")

    d = sub.add_parser("data", help="fetch or check datasets").add_subparsers(
        dest="data_command", required=True
    )
    for name, text in (("fetch", "download datasets into the cache"), ("check", "verify datasets")):
        p = d.add_parser(name, help=text)
        p.add_argument(
            "names",
            nargs="*",
            metavar="NAME",
            help=f"datasets ({', '.join(data.DATASETS)}); default all",
        )
        p.add_argument("--root", type=Path, default=None, help="data root (default: see README)")

    p = sub.add_parser(
        "demo", help="the tour: every study at a small size on the real data, and an index page"
    )
    p.add_argument("--out", type=Path, default=Path("elbolab-demo"), help="where to write the runs")
    p.add_argument("--data", type=Path, default=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    command = "elbolab " + shlex.join(argv)
    try:
        return _dispatch(args, command)
    except ElbolabError as err:
        close_all()
        print(f"elbolab: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        close_all()
        print("elbolab: interrupted; continue with --resume", file=sys.stderr)
        return 130


def _dispatch(args, command: str) -> int:
    if args.command == "list":
        for name, module in studies.STUDIES.items():
            print(f"{name:10s} {module.DESCRIPTION}  [presets: {', '.join(module.PRESETS)}]")
        return 0
    if args.command == "run":
        study = studies.get(args.study)
        cfg = studies.apply_overrides(studies.preset(study, args.preset), args.overrides)
        if args.device is not None:
            cfg = studies.with_device(study, cfg, args.device)
        _run(study, cfg, args, command)
        return 0
    if args.command == "report":
        print(studies.render(args.rundir))
        return 0
    if args.command == "lda" and args.lda_command == "transform":
        return _lda_transform(args)
    if args.command == "lda":
        return _lda_fit(args, command)
    if args.command == "data":
        return _data(args)
    if args.command == "demo":
        return _demo(args)
    raise AssertionError(args.command)


def _run(study, cfg, args, command: str) -> dict:
    metrics = studies.run_study(
        study,
        cfg,
        args.out,
        data_root=args.data,
        resume=args.resume,
        overwrite=args.overwrite,
        command=command,
        scheduler=args.scheduler,
    )
    print(
        f"finished in {metrics['timings']['total_seconds']:.1f} s; "
        f"report: {(args.out / 'report.html').resolve()}"
    )
    return metrics


def _lda_fit(args, command: str) -> int:
    from .models import LDA
    from .studies import lda

    topics = args.topics
    if topics is None and args.init is not None:
        topics = LDA.load(args.init).components_.shape[0]
    if topics is None:
        raise ConfigError("--topics is required (or --init MODEL, whose K is then used)")
    cfg = lda.Config(
        topics=(topics,),
        restarts=args.restarts,
        max_iter=args.iters,
        tol=args.tol,
        alpha=args.alpha,
        eta=args.eta,
        test_fraction=0.0,
        seed=args.seed,
        corpus=str(args.corpus or ""),
        vocab=str(args.vocab or ""),
        init=str(args.init or ""),
    )
    metrics = _run(lda, cfg, args, command)
    for result in metrics["per_k"].values():
        if "model" in result:  # absent in runs made before models were saved
            print(f"model: {(args.out / result['model']).resolve()}")
    return 0


def _lda_transform(args) -> int:
    """Topic proportions (gamma normalized per document) of a corpus under a saved model."""
    from .files import atomic_write
    from .models import LDA
    from .studies.lda import corpus_has_vocab

    out = args.out
    if out.suffix.lower() not in (".csv", ".npy"):
        raise ConfigError(f"--out must end in .csv or .npy, got {out}")
    if out.is_dir():
        raise ConfigError(f"--out {out} is a directory")
    if out.exists() and not args.overwrite:
        raise ConfigError(f"--out {out} exists; pass --overwrite to replace it")
    model = LDA.load(args.model)
    corpus = data.read_corpus(args.corpus, args.vocab)
    has_vocab = corpus_has_vocab(args.corpus, args.vocab)
    try:
        counts, dropped, unknown = model.counts_for(corpus, by_word=has_vocab)
    except DataError as err:
        raise DataError(f"{err} (model {args.model})", args.corpus) from None
    if has_vocab and model.vocab_ is not None:
        print(
            f"dropped {dropped} of {corpus.n_tokens} tokens ({unknown} distinct words "
            "unknown to the model)"
        )
    gamma = model.transform(counts)
    theta = gamma / gamma.sum(1, keepdims=True)
    names = corpus.doc_ids if corpus.doc_ids is not None else range(corpus.n_docs)

    def write_csv(fh):
        rows = csv.writer(fh, lineterminator="\n")
        rows.writerow(["doc", *(f"topic_{k}" for k in range(theta.shape[1]))])
        for name, row in zip(names, theta.tolist(), strict=True):
            rows.writerow([name, *map(repr, row)])

    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".npy":
        atomic_write(out, lambda fh: np.save(fh, theta, allow_pickle=False))
    else:
        atomic_write(out, write_csv, text=True)
    print(f"topic proportions of {theta.shape[0]} documents x {theta.shape[1]} topics: {out}")
    return 0


def _data(args) -> int:
    names = args.names or list(data.DATASETS)
    unknown = [n for n in names if n not in data.DATASETS]
    if unknown:
        raise ConfigError(f"unknown dataset {unknown[0]!r}; datasets: {', '.join(data.DATASETS)}")
    if args.data_command == "fetch":
        for name in names:
            root = data.fetch(name, root=args.root)
            print(f"{name}: ready in {root}")
        return 0
    bad = 0
    for name in names:
        try:
            rows = data.check(name, root=args.root)
        except ElbolabError as err:
            print(f"{name}: {err}")
            bad += 1
            continue
        for path, ok, detail in rows:
            print(f"{'ok     ' if ok else 'FAILED '} {path}  {detail}")
            bad += not ok
    return 0 if bad == 0 else 1


def _demo(args) -> int:
    """Run the tour (every study's ``tour`` preset) and print where its index is."""
    from .studies import tour

    for name in sorted(set(tour.DATASET.values())):
        _ensure_dataset(name, args.data)
    print(
        f"elbolab demo: every study at its tour preset into {args.out} "
        "(a few minutes on 2 cores; run again to resume)",
        file=sys.stderr,
    )
    index = tour.run_tour(args.out, data_root=args.data, say=lambda line: print(line))
    print(f"index: {index.resolve()}")
    return 0


def _ensure_dataset(name: str, root) -> None:
    """Fetch dataset ``name`` into the cache when it is nowhere (and no root was named)."""
    try:
        data.find_root(name, root)
        return
    except ElbolabError:
        if root is not None:
            raise
    print(f"elbolab demo: {name} is not on this machine; fetching it ...", file=sys.stderr)
    try:
        data.fetch(name)
    except ElbolabError as err:
        raise type(err)(
            f"{err}. Without internet, set ELBOLAB_DATA to a folder holding ap/, mnist/ "
            "and binarized_mnist/ (a mirror of the datasets), e.g. "
            "ELBOLAB_DATA=../shared/data elbolab demo"
        ) from None


if __name__ == "__main__":
    sys.exit(main())
