"""Time the importance-sampled test NLL: elbolab against a straightforward PyTorch version.

Usage::

    python benchmarks/nll_speed.py [--device cpu|cuda] [--n N] [--k 5000]
                                   [--repeats 3] [--models normal,vamp]
                                   [--naive-rows ROWS] [--data ROOT] [--json OUT]

The task is the test-set log-likelihood log p(x) of Burda et al. (2016) with k = 5000
importance samples from the encoder, on the binarized MNIST test set (Larochelle &
Murray 2011; read with ``elbolab.data.load_binarized_mnist(root, "test")`` from
``--data`` or ``$ELBOLAB_DATA``), the first ``--n`` images (default: all 10,000 on CUDA,
500 on the CPU). Two untrained but seeded models (generator 0), both
784-200-200-20 tanh MLPs with a Bernoulli decoder:

* ``normal``: the standard-normal prior;
* ``vamp``: the VampPrior with K = 500 pseudo-inputs (a mixture of 500 diagonal
  Gaussians in R^20).

Compared, on the same device in the same run:

* elbolab: ``elbolab.diagnostics.log_likelihood(model, x, k, generator=1)`` end to end
  (its default batch of 100 images, draws of 500 samples, evaluation steps sized by its
  memory budget; the VampPrior's log p(z) by matrix products);
* straightforward PyTorch: what a user would write with the model's own
  ``torch.distributions`` objects, chunked so that it fits in memory::

      q = model.encode(x_batch); prior = model.prior()
      for each draw of 500 samples z ~ q (the same randn calls as elbolab's):
          for slices of the draw of about --naive-rows (sample, image) rows:
              log_w = model.decode(z).log_prob(x) + prior.log_prob(z) - q.log_prob(z)
              fold logsumexp(log_w) into a running log-sum-exp

  where ``prior.log_prob`` of the VampPrior is ``MixtureSameFamily.log_prob``, which
  broadcasts a (samples, images, K, d) tensor. ``--naive-rows`` defaults to 50,000 on
  CUDA and 10,000 on the CPU.

Both draw the same samples from the same seed, so their per-image log p(x) agree to
float32 rounding; the script prints the largest difference. The table gives the median
of ``--repeats`` timed runs of each (and every run); on CUDA an untimed warm-up of each
comes first and times are taken after ``torch.cuda.synchronize()``. Targets on one H200
(all 10,000 images, k = 5000): at most 5 s for ``normal``, 30 s for ``vamp``.

Thread count: torch's default. Progress bars are off. Needs no dask. Nothing is written
to disk except ``--json OUT``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the sibling _timing.py
from _timing import describe, timed  # noqa: E402

SEED_MODEL = 0
SEED_SAMPLES = 1
BATCH = 100  # images per batch, as elbolab's default
DRAW = 500  # samples per draw: elbolab's default for batches of 100 (50,000 // 100)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    parser.add_argument(
        "--n", type=int, default=None, help="test images (default 10000 on cuda, 500 on cpu)"
    )
    parser.add_argument("--k", type=int, default=5000, help="importance samples per image")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each")
    parser.add_argument(
        "--models", default="normal,vamp", help="comma-separated subset of normal,vamp"
    )
    parser.add_argument(
        "--naive-rows",
        type=int,
        default=None,
        help="rows per step of the straightforward version (default 50000 cuda, 10000 cpu)",
    )
    parser.add_argument("--data", default=None, help="data root (default $ELBOLAB_DATA)")
    parser.add_argument("--json", metavar="OUT", help="also write the numbers to OUT")
    args = parser.parse_args(argv)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    if not args.models or any(m not in ("normal", "vamp") for m in args.models):
        parser.error("--models must be a comma-separated subset of normal,vamp")
    if (args.n is not None and args.n < 1) or args.k < 1 or args.repeats < 1:
        parser.error("need --n >= 1, --k >= 1, --repeats >= 1")
    if args.naive_rows is not None and args.naive_rows < 1:
        parser.error("need --naive-rows >= 1")
    return args


def naive_log_likelihood(model, x, k: int, seed: int, rows: int) -> torch.Tensor:
    """Per-image log p^(x) with the model's torch.distributions, chunked (see above)."""
    device = x.device
    gen = torch.Generator(device=device).manual_seed(seed)
    out = torch.empty(x.shape[0], dtype=torch.float64, device=device)
    with torch.no_grad():
        prior = model.prior()
        for i0 in range(0, x.shape[0], BATCH):
            xb = x[i0 : i0 + BATCH].float()
            q = model.encode(xb)
            loc, scale = q.base_dist.loc, q.base_dist.scale
            step = max(1, rows // xb.shape[0])
            acc = torch.full((xb.shape[0],), -math.inf, dtype=torch.float64, device=device)
            for c0 in range(0, k, DRAW):
                kc = min(DRAW, k - c0)
                eps = torch.randn((kc, *loc.shape), generator=gen, dtype=loc.dtype, device=device)
                z_draw = loc + scale * eps
                for s0 in range(0, kc, step):
                    z = z_draw[s0 : s0 + step]
                    log_w = model.decode(z).log_prob(xb) + prior.log_prob(z) - q.log_prob(z)
                    acc = torch.logaddexp(acc, torch.logsumexp(log_w.double(), 0))
            out[i0 : i0 + BATCH] = acc - math.log(k)
    return out


def make_model(kind: str, device: torch.device):
    from elbolab.models.vae import VAE

    model = VAE(
        784,
        20,
        hidden=(200, 200),
        activation="tanh",
        prior=kind,
        n_pseudo=500,
        generator=SEED_MODEL,
    )
    return model.to(device).eval()


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ["ELBOLAB_NO_PROGRESS"] = "1"
    from elbolab import checks
    from elbolab.data import load_binarized_mnist
    from elbolab.diagnostics import log_likelihood
    from elbolab.errors import ConfigError, DataError

    try:
        device = checks.device(args.device, "--device")
        x_all = load_binarized_mnist(args.data or os.environ.get("ELBOLAB_DATA"), "test")
    except (ConfigError, DataError, OSError) as exc:
        print(f"nll_speed: {exc}", file=sys.stderr)
        return 2
    n = args.n if args.n is not None else (10_000 if device.type == "cuda" else 500)
    n = min(n, x_all.shape[0])
    rows = args.naive_rows or (50_000 if device.type == "cuda" else 10_000)
    x = torch.from_numpy(x_all[:n]).to(device)  # uint8; both implementations cast per batch
    where = describe(device)
    print(
        f"test NLL, binarized MNIST test, n={n} images, k={args.k}, on {device}; "
        f"torch {torch.__version__}, {where}",
        flush=True,
    )

    report = {"device": str(device), "n": n, "k": args.k, "threads": torch.get_num_threads()}
    lines = []
    for kind in args.models:
        model = make_model(kind, device)

        def ours(model=model):
            return log_likelihood(model, x, k=args.k, generator=SEED_SAMPLES, progress=False)

        def naive(model=model):
            return naive_log_likelihood(model, x, args.k, SEED_SAMPLES, rows)

        if device.type == "cuda":  # warm-up: CUDA context, cuBLAS handles, kernels
            log_likelihood(model, x[:BATCH], k=min(args.k, 2 * DRAW), generator=0, progress=False)
            naive_log_likelihood(model, x[:BATCH], min(args.k, 2 * DRAW), 0, rows)
        t_ours, t_naive = [], []
        res = base = None
        for r in range(args.repeats):
            t, res = timed(ours, device)
            t_ours.append(t)
            print(f"  {kind}: elbolab run {r + 1}: {t:.2f} s", flush=True)
        for r in range(args.repeats):
            t, base = timed(naive, device)
            t_naive.append(t)
            print(f"  {kind}: straightforward run {r + 1}: {t:.2f} s", flush=True)
        diff = float((res["per_datum"] - base.cpu()).abs().max())
        m_ours, m_naive = statistics.median(t_ours), statistics.median(t_naive)
        lines.append((kind, m_ours, m_naive, diff, res["mean_log_likelihood"], res["se_mean_mc"]))
        report[kind] = {
            "elbolab_seconds": t_ours,
            "elbolab_median": m_ours,
            "naive_seconds": t_naive,
            "naive_median": m_naive,
            "speedup": m_naive / m_ours,
            "max_abs_diff_per_image": diff,
            "mean_log_likelihood": res["mean_log_likelihood"],
            "se_mean_mc": res["se_mean_mc"],
        }
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()

    print()
    print(f"{'model':<10}{'elbolab s':>12}{'torch.distributions s':>24}{'speed-up':>10}")
    for kind, m_ours, m_naive, _, _, _ in lines:
        print(f"{kind:<10}{m_ours:>12.2f}{m_naive:>24.2f}{m_naive / m_ours:>9.1f}x")
    for kind, _, _, diff, mean, se in lines:
        print(
            f"{kind}: mean log p(x) = {mean:.3f} nats (MC se {se:.3f}); max |per-image "
            f"difference| between the two = {diff:.2e} nats"
        )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
