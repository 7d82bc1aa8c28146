"""The ``elbolab`` command: studies from the registry, LDA fits, data, reports, demo.

Bad input (data, settings, run directories) ends with one line on stderr and exit
code 2; nothing is written before the input has been checked.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from . import __version__, data, studies
from .errors import ConfigError, ElbolabError
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
    p.add_argument("--topics", type=int, required=True, help="number of topics K")
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
    p.add_argument("--corpus", type=Path, default=None, help="lda-c corpus file (default: AP)")
    p.add_argument("--vocab", type=Path, default=None, help="vocabulary file for --corpus")
    _add_run_options(p)

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

    p = sub.add_parser("demo", help="a short tour on the real data; prints where the report is")
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
        return _run(study, cfg, args, command)
    if args.command == "report":
        print(studies.render(args.rundir))
        return 0
    if args.command == "lda":
        return _lda_fit(args, command)
    if args.command == "data":
        return _data(args)
    if args.command == "demo":
        return _demo(args)
    raise AssertionError(args.command)


def _run(study, cfg, args, command: str) -> int:
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
    return 0


def _lda_fit(args, command: str) -> int:
    from .studies import lda

    cfg = lda.Config(
        topics=(args.topics,),
        restarts=args.restarts,
        max_iter=args.iters,
        tol=args.tol,
        alpha=args.alpha,
        eta=args.eta,
        test_fraction=0.0,
        seed=args.seed,
        corpus=str(args.corpus or ""),
        vocab=str(args.vocab or ""),
    )
    return _run(lda, cfg, args, command)


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
    """Run the tour: today the ``lda`` study's default preset on AP."""
    from .studies import lda

    try:
        data.find_root("ap", args.data)
    except ElbolabError:
        if args.data is not None:
            raise
        print(
            "elbolab demo: the AP corpus is not on this machine; fetching it ...", file=sys.stderr
        )
        try:
            data.fetch("ap")
        except ElbolabError as err:
            raise type(err)(
                f"{err}. Without internet, set ELBOLAB_DATA to a folder holding ap/ap.dat "
                "and ap/vocab.txt (a mirror of the datasets), e.g. "
                "ELBOLAB_DATA=../shared/data elbolab demo"
            ) from None
    out = args.out / "lda"
    command = f"elbolab run lda --preset default --out {shlex.quote(str(out))} --resume"
    print(f"elbolab demo: {command}", file=sys.stderr)
    metrics = studies.run_study(
        lda,
        lda.PRESETS["default"],
        out,
        data_root=args.data,
        resume=True,
        command=command,
        scheduler="auto",
    )
    for k, r in metrics["per_k"].items():
        print(
            f"K={k:>3}: ELBO/token {r['elbo_per_token_best']:.4f} nats, "
            f"completion perplexity {r['completion']['perplexity']:.1f}, "
            f"{r['fit_seconds']:.1f} s"
        )
    print(f"report: {(out / 'report.html').resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
