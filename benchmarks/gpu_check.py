"""One script for a session with a GPU: does elbolab's VAE half run there, and how fast?

Usage (from the repository root; needs only PyTorch, numpy, scipy, numba, scikit-learn,
matplotlib and tqdm: no dask, no network)::

    PYTHONPATH=src python benchmarks/gpu_check.py [--device cuda] [--data ROOT]
        [--budget-seconds 300] [--threads N] [--out DIR] [--json OUT] [--quick]

``--data`` defaults to ``$ELBOLAB_DATA`` (binarized MNIST must be under it). Sections,
in order, each printed with its wall time and result, each in its own try/except so
that one failure does not hide the others:

(a) versions: Python, torch, CUDA, cuDNN, the GPU's name and memory, the other
    packages; a small matrix product on the device.
(b) epoch time of the 784-200-200-20 VAE: elbolab's trainer against the plain PyTorch
    loop of ``benchmarks/vae_epoch.py`` (50,000 images, 1 warm-up epoch, 3 interleaved
    rounds of 2 epochs). Target on one H200: at most 0.25 s per epoch.
(c) ``elbolab.diagnostics.surgery`` on 50,000 x 20 random posteriors on the device
    (mu ~ N(0, I), std ~ U(0.1, 1), float64); the analytic average KL is checked
    against a direct computation and the MI against log N.
(d) ``elbolab.diagnostics.log_likelihood`` with k = 5000 on all 10,000 test images for
    a VAE and a VampPrior VAE (K = 500), each first trained BRIEFLY (``--ll-epochs``,
    default 1 epoch on the training images, elbolab's trainer on the device), with the
    test ELBO of the same images next to it. A pilot on 100 images comes first; should
    the whole set not fit the time budget, fewer images are scored and the script says so.
(e) the ``zoo`` study (VAE, three beta-VAEs, IWAE k = 50, VampPrior) through
    ``studies.run_study(zoo, cfg, out, scheduler="serial")`` with ``cfg`` the
    ``default`` preset with as many epochs as fit the rest of ``--budget-seconds``
    (the time since the script started counts); the per-epoch costs come from (b) and
    from one calibration epoch of each objective on a subset, the evaluation costs from
    a small surgery and log-likelihood run. Prints each model's test NLL from
    ``metrics.json`` and the estimated against the actual time. When ``zoo.Config`` has
    a ``device`` field it is set to ``--device``; otherwise the study runs wherever the
    library puts it, and the script says so.

``--quick`` shrinks everything (1,000 training images, k = 50, 200 test images, one zoo
epoch with IWAE k = 10, surgery on 2,000 x 20, one round of one epoch in (b)) so that
``--quick --device cpu`` runs in under a minute on 2 CPU cores: the test suite runs it
that way. ``--out DIR`` keeps the zoo run directory (overwritten if it exists); by
default it is temporary.

The exit code is 0 when every section ran, 1 when any failed. ``--json OUT`` writes
every section's status, seconds and numbers. Progress bars are off. Thread count:
torch's default unless ``--threads N``.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import math
import os
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path

STARTED = time.perf_counter()

import torch  # noqa: E402

SECTIONS = {
    "a": "versions and device",
    "b": "VAE epoch: elbolab vs plain PyTorch",
    "c": "ELBO surgery on random posteriors",
    "d": "log-likelihood (importance sampling) of a VAE and a VampPrior",
    "e": "zoo study",
}


def _load_vae_epoch():
    """``benchmarks/vae_epoch.py`` as a module (benchmarks/ is not a package)."""
    path = Path(__file__).resolve().with_name("vae_epoch.py")
    spec = importlib.util.spec_from_file_location("elbolab_bench_vae_epoch", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


vae_epoch = _load_vae_epoch()


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    parser.add_argument(
        "--data",
        default=os.environ.get("ELBOLAB_DATA"),
        help="data root (default: $ELBOLAB_DATA)",
    )
    parser.add_argument(
        "--budget-seconds",
        type=float,
        default=300.0,
        help="wall time of the whole script; the zoo study gets what is left",
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes (CPU smoke run)")
    parser.add_argument("--ll-epochs", type=int, default=1, help="training epochs before (d)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    parser.add_argument("--out", help="keep the zoo run directory here (default: temporary)")
    parser.add_argument("--json", metavar="OUT", help="also write the results to OUT")
    args = parser.parse_args(argv)
    if args.budget_seconds <= 0 or args.ll_epochs < 0 or args.threads < 0:
        parser.error("need --budget-seconds > 0, --ll-epochs >= 0, --threads >= 0")
    return args


@dataclasses.dataclass(frozen=True)
class Sizes:
    n_train: int = 50_000  # training images of (b), (d) and the zoo
    epochs: int = 2  # (b): timed epochs per round
    repeats: int = 3  # (b): rounds
    surgery_n: int = 50_000  # (c)
    k: int = 5000  # (d)
    n_test: int = 10_000  # (d)
    zoo_epochs: int | None = None  # (e): None = as many as fit the budget


QUICK = Sizes(n_train=1000, epochs=1, repeats=1, surgery_n=2000, k=50, n_test=200, zoo_epochs=1)


def elapsed() -> float:
    return time.perf_counter() - STARTED


def say(text: str = "") -> None:
    print(text, flush=True)


class Check:
    """Runs the sections, prints each with its wall time, keeps the results."""

    def __init__(self, args, sizes: Sizes):
        self.args = args
        self.sizes = sizes
        self.device = torch.device(args.device)
        self.results: dict[str, dict] = {}
        self._data: dict | None = None

    # -- plumbing ----------------------------------------------------------------
    def section(self, key: str, fn) -> None:
        say()
        say(f"== ({key}) {SECTIONS[key]}  [t = {elapsed():.1f} s] ==")
        t0 = time.perf_counter()
        entry = {"title": SECTIONS[key]}
        try:
            entry["result"] = fn()
            entry["ok"] = True
        except Exception as exc:  # noqa: BLE001 - a check reports every failure and goes on
            entry["ok"] = False
            entry["error"] = f"{type(exc).__name__}: {exc}"
            say(f"ERROR {type(exc).__name__}: {exc}")
            frames = traceback.extract_tb(exc.__traceback__)[-4:]
            for fr in frames:
                say(f"    at {fr.filename}:{fr.lineno} in {fr.name}: {fr.line}")
            if self.device.type == "cuda" and torch.cuda.is_available():
                torch.cuda.empty_cache()
        entry["seconds"] = time.perf_counter() - t0
        self.results[key] = entry
        status = "ok" if entry["ok"] else "FAILED"
        say(f"-- ({key}) {status} in {entry['seconds']:.1f} s")

    def sync(self) -> None:
        vae_epoch.sync(self.device)

    def data(self) -> dict:
        """Binarized MNIST as float32 CPU tensors: the training subset, valid, the test
        images of (d) (a seeded random subset when fewer than 10,000: the file is sorted
        by class)."""
        if self._data is None:
            from elbolab.data import load_binarized_mnist

            t0 = time.perf_counter()
            train = vae_epoch.load_train(self.args.data, self.sizes.n_train, seed=0)
            valid, test = (
                torch.as_tensor(load_binarized_mnist(self.args.data, s), dtype=torch.float32)
                for s in ("valid", "test")
            )
            test_all = test
            # Seeded order, so that any prefix (a pilot, a cut for the budget) is a
            # random subset.
            order = torch.randperm(len(test), generator=torch.Generator().manual_seed(1))
            test = test[order[: self.sizes.n_test]]
            self._data = {"train": train, "valid": valid, "test": test, "test_all": test_all}
            say(
                f"  (binarized MNIST loaded in {time.perf_counter() - t0:.1f} s: "
                f"{len(train):,} train, {len(valid):,} valid, {len(test):,} test images)"
            )
        return self._data

    # -- (a) ---------------------------------------------------------------------
    def versions(self) -> dict:
        from torch.backends import cudnn

        import elbolab

        out = {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "elbolab": getattr(elbolab, "__version__", "?"),
            "torch": torch.__version__,
            "torch_cuda": torch.version.cuda,
            "cudnn": cudnn.version() if cudnn.is_available() else None,
            "cuda_available": torch.cuda.is_available(),
            "cuda_devices": torch.cuda.device_count() if torch.cuda.is_available() else 0,
            "threads": torch.get_num_threads(),
            "device": str(self.device),
        }
        for name in ("numpy", "scipy", "numba", "sklearn", "matplotlib", "tqdm"):
            try:
                out[name] = __import__(name).__version__
            except Exception as exc:  # noqa: BLE001
                out[name] = f"not importable ({type(exc).__name__})"
        try:
            import dask  # noqa: F401

            out["dask"] = "importable (not needed)"
        except ImportError:
            out["dask"] = "not importable (not needed)"
        for key, value in out.items():
            say(f"  {key:<16} {value}")
        if self.device.type == "cuda":
            if not torch.cuda.is_available():
                raise RuntimeError(
                    f"--device {self.device} but torch {torch.__version__} sees no GPU"
                )
            props = torch.cuda.get_device_properties(self.device)
            out["gpu_name"] = props.name
            out["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)
            out["gpu_capability"] = f"{props.major}.{props.minor}"
            out["tf32_matmul"] = torch.backends.cuda.matmul.allow_tf32
            say(
                f"  GPU              {props.name}, {out['gpu_memory_gib']} GiB, "
                f"capability {out['gpu_capability']}, TF32 matmul {out['tf32_matmul']}"
            )
        else:
            out["cpu"] = platform.processor() or platform.machine()
            say(f"  CPU              {out['cpu']}, {os.cpu_count()} cores")
        t0 = time.perf_counter()
        a = torch.randn(2048, 2048, device=self.device)
        b = float((a @ a).abs().sum())
        self.sync()
        out["matmul_seconds"] = time.perf_counter() - t0
        if not math.isfinite(b):
            raise RuntimeError("a 2048 x 2048 matrix product on the device is not finite")
        say(f"  first 2048^2 matmul on {self.device}: {out['matmul_seconds']:.3f} s")
        return out

    # -- (b) ---------------------------------------------------------------------
    def epoch(self) -> dict:
        x = self.data()["train"]
        s = self.sizes
        say(
            f"  784-200-200-20 tanh VAE, {len(x):,} images, batch 100, Adam 1e-3; "
            f"1 warm-up epoch, {s.repeats} round(s) x {s.epochs} epoch(s), interleaved"
        )
        limit = None if self.args.quick else 0.25 * self.args.budget_seconds
        res = vae_epoch.benchmark(
            x, self.device, epochs=s.epochs, repeats=s.repeats, seed=0, log=say, time_limit=limit
        )
        vae_epoch.report(res, log=lambda t: say("  " + t))
        if self.device.type == "cuda":
            met = res["elbolab_median"] <= vae_epoch.H200_TARGET_SECONDS
            scale = "" if len(x) == 50_000 else f" (at {len(x):,} images, not 50,000)"
            say(
                f"  H200 target <= {vae_epoch.H200_TARGET_SECONDS} s/epoch: "
                f"{'met' if met else 'MISSED'}{scale}"
            )
        else:
            met = res["ratio"] <= vae_epoch.CPU_TARGET_RATIO
            say(f"  CPU target ratio <= {vae_epoch.CPU_TARGET_RATIO}: {'met' if met else 'MISSED'}")
        res["target_met"] = bool(met)
        return res

    # -- (c) ---------------------------------------------------------------------
    def surgery(self) -> dict:
        from elbolab.diagnostics import surgery

        n, d = self.sizes.surgery_n, 20
        g = torch.Generator().manual_seed(12345)
        mu = torch.randn(n, d, generator=g, dtype=torch.float64)
        std = 0.1 + 0.9 * torch.rand(n, d, generator=g, dtype=torch.float64)
        # The exact average KL(N(mu, std^2) || N(0, I)), computed here on the CPU.
        kl_direct = float((0.5 * (mu**2 + std**2 - 1.0) - torch.log(std)).sum(1).mean())
        mu_dev, std_dev = mu.to(self.device), std.to(self.device)
        self.sync()
        say(f"  N = {n:,}, d = {d}, float64, 1 sample per point, mu and std on {self.device}")
        t0 = time.perf_counter()
        r = surgery(mu_dev, std_dev, generator=0, progress=False)
        self.sync()
        seconds = time.perf_counter() - t0
        out = {
            key: float(r[key])
            for key in ("average_kl", "mutual_info", "marginal_kl", "average_kl_mc", "log_n")
        }
        out.update(
            n=n,
            d=d,
            seconds=seconds,
            average_kl_direct=kl_direct,
            se_mutual_info=float(r["se_mutual_info"]),
            se_marginal_kl=float(r["se_marginal_kl"]),
            per_datum_device=str(getattr(r.get("kl_per_datum"), "device", "?")),
        )
        say(
            f"  {seconds:.2f} s: average KL {out['average_kl']:.4f} (direct {kl_direct:.4f}), "
            f"MI {out['mutual_info']:.4f} +- {out['se_mutual_info']:.4f} "
            f"(log N {out['log_n']:.4f}), marginal KL {out['marginal_kl']:.4f} "
            f"+- {out['se_marginal_kl']:.4f}; per-datum outputs on {out['per_datum_device']}"
        )
        gap = out["mutual_info"] + out["marginal_kl"] - out["average_kl_mc"]
        problems = []
        if abs(out["average_kl"] - kl_direct) > 1e-6 * max(1.0, abs(kl_direct)):
            problems.append(f"average KL {out['average_kl']} != direct {kl_direct}")
        if not out["mutual_info"] <= out["log_n"]:
            problems.append(f"MI {out['mutual_info']} > log N {out['log_n']}")
        if abs(gap) > 1e-6:
            problems.append(f"MI + marginal KL - MC average KL = {gap:.3e}")
        if not all(math.isfinite(v) for v in out.values() if isinstance(v, float)):
            problems.append("non-finite terms")
        if problems:
            raise AssertionError("; ".join(problems))
        say("  checks: average KL = direct, MI <= log N, MI + marginal KL = MC average KL")
        return out

    # -- (d) ---------------------------------------------------------------------
    def likelihood(self) -> dict:
        from elbolab.diagnostics import log_likelihood
        from elbolab.models import VAE, train
        from elbolab.objectives import elbo, elbo_loss

        data = self.data()
        train_x, test = data["train"], data["test"]
        k, epochs = self.sizes.k, self.args.ll_epochs
        dev_x = train_x.to(self.device)
        state = "untrained" if epochs == 0 else f"trained {epochs} epoch(s) on {len(train_x):,}"
        say(
            f"  models {state} images (elbolab trainer on {self.device}, CPU data in); "
            f"log p(x) with k = {k} on {len(test):,} test images"
        )
        out = {"k": k, "train_epochs": epochs, "n_train": len(train_x), "models": {}}
        for name, extra in (("vae", {}), ("vamp", {"prior": "vamp", "n_pseudo": 500})):
            model = VAE(784, 20, hidden=(200, 200), activation="tanh", generator=0, **extra)
            model = model.to(self.device)
            if name == "vamp":
                model.init_pseudo_inputs(dev_x, generator=0)
            t0 = time.perf_counter()
            if epochs:
                train(model, elbo_loss, train_x, None, generator=1, epochs=epochs, progress=False)
            self.sync()
            train_s = time.perf_counter() - t0
            model.eval()
            n_use = self._fit_likelihood(model, name, test, k)
            x = test[:n_use]
            t0 = time.perf_counter()
            ll = log_likelihood(model, x, k=k, generator=0, progress=False)
            self.sync()
            ll_s = time.perf_counter() - t0
            with torch.no_grad():
                gen = 2
                total = sum(
                    float(elbo(model, x[i : i + 1000], gen)["elbo"]) for i in range(0, n_use, 1000)
                )
            r = {
                "train_seconds": train_s,
                "ll_seconds": ll_s,
                "n_test": n_use,
                "test_nll": -ll["mean_log_likelihood"],
                "test_nll_se": float(ll["se_mean"]),
                "test_nll_se_mc": float(ll["se_mean_mc"]),
                "test_neg_elbo": -total / n_use,
                "per_datum_device": str(getattr(ll.get("per_datum"), "device", "?")),
            }
            out["models"][name] = r
            say(
                f"  {name:<5} train {train_s:6.1f} s; log p(x) {ll_s:6.1f} s on {n_use:,} "
                f"images: NLL {r['test_nll']:.2f} +- {r['test_nll_se']:.2f} "
                f"(MC {r['test_nll_se_mc']:.3f}), -ELBO {r['test_neg_elbo']:.2f}"
            )
            if not math.isfinite(r["test_nll"]):
                raise AssertionError(f"{name}: the test NLL is not finite")
        return out

    def _fit_likelihood(self, model, name: str, test, k: int) -> int:
        """Images to score: all, unless a 100-image pilot says they would take more than
        a fifth of what is left of the budget (never in --quick)."""
        from elbolab.diagnostics import log_likelihood

        n = len(test)
        if self.args.quick or n <= 100:
            return n
        t0 = time.perf_counter()
        log_likelihood(model, test[:100], k=k, generator=0, progress=False)
        self.sync()
        pilot = time.perf_counter() - t0
        estimate = pilot * n / 100
        allowance = max(10.0, 0.2 * (self.args.budget_seconds - elapsed()))
        if estimate <= allowance:
            say(f"  {name:<5} pilot: 100 images in {pilot:.2f} s -> {estimate:.0f} s for {n:,}")
            return n
        n_use = max(100, int(n * allowance / estimate) // 100 * 100)
        say(
            f"  {name:<5} pilot: 100 images in {pilot:.2f} s -> {estimate:.0f} s for {n:,}, "
            f"over the {allowance:.0f} s allowance: scoring the first {n_use:,} only"
        )
        return n_use

    # -- (e) ---------------------------------------------------------------------
    def zoo(self) -> dict:
        from elbolab import studies
        from elbolab.studies import zoo

        has_device = "device" in {f.name for f in dataclasses.fields(zoo.Config)}
        base = zoo.PRESETS["default"]
        changes = {"device": self.args.device} if has_device else {}
        zoo_device = self.device if has_device else torch.device("cpu")
        if has_device:
            say(f"  zoo.Config has a device field: device={self.args.device}")
        else:
            say(
                "  zoo.Config has NO device field: the study runs where the library puts it "
                "(the CPU); budget estimates assume the CPU"
            )
        n_train = self.sizes.n_train
        if self.args.quick:
            changes.update(
                n_train=n_train,
                epochs=1,
                iwae_epochs=1,
                iwae_k=10,
                nll_k=self.sizes.k,
                nll_n=self.sizes.n_test,
            )
            estimate = None
            say("  --quick: fixed settings, no budget estimate")
        else:
            if n_train < 50_000:
                changes["n_train"] = n_train
            plan = self._plan_zoo(zoo, dataclasses.replace(base, **changes), zoo_device)
            changes.update(plan["changes"])
            estimate = plan["estimate"]
        cfg = dataclasses.replace(base, **changes)
        say(
            f"  config: epochs={cfg.epochs}, iwae_epochs={cfg.iwae_epochs}, "
            f"n_train={cfg.n_train}, nll_k={cfg.nll_k}, nll_n={cfg.nll_n}"
            + (f", device={cfg.device}" if has_device else "")
        )
        keep = self.args.out is not None
        out_dir = Path(self.args.out) if keep else Path(tempfile.mkdtemp(prefix="gpu_check_zoo_"))
        run_dir = out_dir / "zoo" if not keep else out_dir
        t0 = time.perf_counter()
        studies.run_study(
            zoo,
            cfg,
            run_dir,
            data_root=self.args.data,
            overwrite=True,
            command="benchmarks/gpu_check.py",
            scheduler="serial",
        )
        seconds = time.perf_counter() - t0
        metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
        models = {}
        for name, r in metrics["zoo"].items():
            models[name] = {
                key: r.get(key)
                for key in (
                    "test_nll",
                    "test_nll_se",
                    "test_elbo",
                    "epochs_run",
                    "train_seconds",
                    "evaluate_seconds",
                )
            }
            say(
                f"  {name:<10} test NLL {r['test_nll']:8.2f} +- {r['test_nll_se']:.2f}  "
                f"(epochs {r['epochs_run']}, train {r['train_seconds']:.1f} s, "
                f"evaluate {r['evaluate_seconds']:.1f} s)"
            )
        est = f", estimated {estimate:.0f} s" if estimate is not None else ""
        report = (run_dir / "report.html").is_file()
        say(f"  run_study took {seconds:.1f} s{est}; report.html written: {report}")
        if keep:
            say(f"  run directory kept: {run_dir}")
        else:
            import shutil

            shutil.rmtree(out_dir, ignore_errors=True)
        bad = [n for n, r in models.items() if not math.isfinite(float(r["test_nll"]))]
        if bad:
            raise AssertionError(f"non-finite test NLL for {bad}")
        return {
            "config": {k: v for k, v in dataclasses.asdict(cfg).items()},
            "device_field": has_device,
            "seconds": seconds,
            "estimated_seconds": estimate,
            "models": models,
        }

    def _plan_zoo(self, zoo, cfg, device) -> dict:
        """The zoo settings that fit what is left of the budget, with the estimate.

        Per-epoch cost of each objective: one calibration epoch (with validation on a
        proportional share of the validation set) on a subset, scaled to the training
        set; for the VAE never below (b)'s median. Evaluation of each model: surgery
        over the training set (calibrated on fewer posteriors, scaled quadratically),
        the test log-likelihood (a pilot of nll_k samples on a few images, scaled
        linearly), and 10% for the rest; plus 15 s for the report."""
        from elbolab.diagnostics import log_likelihood, surgery
        from elbolab.models.trainer import train
        from elbolab.studies import vae_runs

        data = self.data()
        n = cfg.n_train or 50_000
        gpu = device.type == "cuda"
        n_cal = min(n, 10_000 if gpu else 2_000)
        n_val = max(100, n_cal * len(data["valid"]) // n)
        x_cal = data["train"][:n_cal]
        if len(data["train"]) < n_cal:
            raise RuntimeError("too few training images loaded for the calibration")
        v_cal = data["valid"][:n_val]
        specs = zoo.specs(cfg)
        kinds = {"vae": specs["vae"], "vamp": specs["vamp"]}
        iwae = next(name for name in specs if name.startswith("iwae"))
        kinds["iwae"] = specs[iwae]
        per_epoch, ll_rate = {}, {}
        test = data["test_all"]
        n_ll = 10 if gpu else 2
        for kind, spec in kinds.items():
            model = vae_runs.make_model(spec, cfg.seed).to(device)
            if kind == "vamp":
                model.init_pseudo_inputs(x_cal.to(device), generator=0)
            t0 = time.perf_counter()
            train(
                model,
                spec.objective.loss,
                x_cal,
                v_cal,
                generator=1,
                epochs=1,
                batch_size=cfg.batch_size,
                lr=cfg.lr,
                progress=False,
            )
            vae_epoch.sync(device)
            per_epoch[kind] = (time.perf_counter() - t0) * n / n_cal
            if kind != "iwae":
                t0 = time.perf_counter()
                log_likelihood(model, test[:n_ll], k=cfg.nll_k, generator=0, progress=False)
                vae_epoch.sync(device)
                ll_rate[kind] = (time.perf_counter() - t0) / n_ll
        b = self.results.get("b", {})
        if b.get("ok") and str(device) == b["result"]["device"] and b["result"]["n_train"] == n:
            per_epoch["vae"] = max(per_epoch["vae"], b["result"]["elbolab_median"])
        n_sur = min(n, 10_000 if gpu else 3_000)
        g = torch.Generator().manual_seed(0)
        mu = torch.randn(n_sur, cfg.latent, generator=g, dtype=torch.float64).to(device)
        std = (0.1 + 0.9 * torch.rand(n_sur, cfg.latent, generator=g, dtype=torch.float64)).to(
            device
        )
        t0 = time.perf_counter()
        surgery(mu, std, generator=0, progress=False)
        vae_epoch.sync(device)
        surgery_s = (time.perf_counter() - t0) * (n / n_sur) ** 2
        n_models = len(specs)
        n_vamp = sum(1 for s in specs.values() if s.get("prior") == "vamp")
        say(
            "  calibration: s/epoch "
            + ", ".join(f"{k} {v:.2f}" for k, v in per_epoch.items())
            + f"; surgery {surgery_s:.1f} s/model; log p(x) "
            + ", ".join(f"{k} {v * 1000:.1f}" for k, v in ll_rate.items())
            + " s per 1,000 test images per model"
        )

        def cost(epochs: int, iwae_epochs: int, nll_n: int) -> float:
            train_s = sum(
                per_epoch["iwae"] * iwae_epochs
                if s.get("objective") == "iwae"
                else per_epoch["vamp" if s.get("prior") == "vamp" else "vae"] * epochs
                for s in specs.values()
            )
            ll_s = nll_n * (ll_rate["vae"] * (n_models - n_vamp) + ll_rate["vamp"] * n_vamp)
            return train_s + 1.1 * (ll_s + n_models * surgery_s) + 15.0

        left = self.args.budget_seconds - elapsed()
        target = 0.85 * left
        n_test = len(data["test_all"])
        if cfg.nll_n is not None:
            nll_default = min(cfg.nll_n, n_test)
        elif hasattr(vae_runs, "nll_images"):
            nll_default = vae_runs.nll_images(None, n_test, device)
        else:
            nll_default = n_test
        choices = sorted({nll_default, *(c for c in (2000, 500, 100) if c < nll_default)})
        for nll_n in reversed(choices):
            for epochs in range(cfg.epochs, 0, -1):
                iwae_epochs = min(cfg.iwae_epochs, epochs)
                est = cost(epochs, iwae_epochs, nll_n)
                if est <= target:
                    say(
                        f"  budget: {left:.0f} s left; epochs={epochs}, iwae_epochs="
                        f"{iwae_epochs}, nll_n={nll_n} estimated at {est:.0f} s"
                    )
                    return {
                        "changes": {"epochs": epochs, "iwae_epochs": iwae_epochs, "nll_n": nll_n},
                        "estimate": est,
                    }
        est = cost(1, 1, choices[0])
        raise RuntimeError(
            f"even 1 epoch with nll_n={choices[0]} is estimated at {est:.0f} s, over the "
            f"{left:.0f} s left of --budget-seconds; the zoo study was not run"
        )


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ["ELBOLAB_NO_PROGRESS"] = "1"
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = QUICK if args.quick else Sizes()
    check = Check(args, sizes)
    say(
        f"elbolab GPU check on {args.device}{' (--quick)' if args.quick else ''}; "
        f"data {args.data}; budget {args.budget_seconds:.0f} s"
    )
    check.section("a", check.versions)
    check.section("b", check.epoch)
    check.section("c", check.surgery)
    check.section("d", check.likelihood)
    check.section("e", check.zoo)

    say()
    say(f"== summary  [t = {elapsed():.1f} s] ==")
    for key, entry in check.results.items():
        status = "ok" if entry["ok"] else f"FAILED ({entry['error'][:120]})"
        say(f"  ({key}) {entry['title']:<62} {entry['seconds']:7.1f} s  {status}")
    failed = [key for key, entry in check.results.items() if not entry["ok"]]
    say(f"  {len(check.results) - len(failed)} of {len(check.results)} sections ok")
    if args.json:
        record = {
            "device": args.device,
            "quick": args.quick,
            "budget_seconds": args.budget_seconds,
            "total_seconds": elapsed(),
            "ok": not failed,
            "failed": failed,
            "sections": check.results,
        }
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(record, f, indent=2, default=_jsonable)
    return 1 if failed else 0


def _jsonable(value):
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    return repr(value)


if __name__ == "__main__":
    sys.exit(main())
