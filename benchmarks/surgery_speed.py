"""Time the full-data ELBO-surgery estimate: elbolab against a straightforward PyTorch version.

Usage::

    python benchmarks/surgery_speed.py [--n 50000] [--d 20] [--repeats 3]
                                       [--naive-rows 1024] [--device cpu|cuda]
                                       [--json OUT]

The task is the ELBO-surgery decomposition (Hoffman & Johnson 2016) for N posteriors
q(z | x_n) = N(mu_n, diag(std_n^2)) with random mu_n ~ N(0, I), std_n ~ U(0.1, 1), one
sample z_n ~ q(z | x_n) per data point, and the aggregate posterior
log q(z_n) = logsumexp_m log q(z_n | x_m) - log N over ALL N points (an N x N
computation: 2.5e9 Gaussian log-densities for N = 50,000).

* elbolab: ``elbolab.diagnostics.surgery(mu, std, generator=0)`` end to end (sampling,
  the blocked N x N log-sum-exp, prior, analytic KL, standard errors), float64. The
  table gives the median of ``--repeats`` runs and every run.
* straightforward PyTorch: what a user would write with ``torch.distributions``,
  chunked so that it fits in memory::

      q = Normal(mu[None], std[None])
      for rows in chunks of 64 samples z:
          lp = q.log_prob(z[rows, None, :]).sum(-1)          # (64, N, d) -> (64, N)
          log_qz[rows] = torch.logsumexp(lp, 1) - log(N)

  in float64 too. Its cost is linear in the number of rows (each row sees all N
  columns), so it is timed on the first ``--naive-rows`` samples only (median of
  ``--repeats``) and EXTRAPOLATED linearly to all N rows; the script says so in its
  output. The same rows' log q(z_n) from both implementations are compared.

Device: ``--device cpu`` (default) or ``cuda`` (``cuda:N``): both implementations run
there, on the same posteriors (drawn on the CPU from a fixed seed and moved once). On
CUDA the generator is a CUDA one, so the samples differ from the CPU run's; times are
taken after ``torch.cuda.synchronize()``, and an untimed warm-up run of each comes first.

Thread count: torch's default (all cores of the machine). Progress bars are off.
Nothing is written to disk except ``--json OUT``.
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


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=50_000, help="number of data points N")
    parser.add_argument("--d", type=int, default=20, help="latent dimension d")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each")
    parser.add_argument(
        "--naive-rows", type=int, default=1024, help="rows timed for the straightforward version"
    )
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    parser.add_argument("--json", metavar="OUT", help="also write the numbers to OUT")
    args = parser.parse_args(argv)
    if args.n < 2 or args.d < 1 or args.repeats < 1 or args.naive_rows < 1:
        parser.error("need --n >= 2, --d >= 1, --repeats >= 1, --naive-rows >= 1")
    args.naive_rows = min(args.naive_rows, args.n)
    return args


def make_posteriors(n: int, d: int, seed: int = 12345):
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(n, d, generator=g, dtype=torch.float64)
    std = 0.1 + 0.9 * torch.rand(n, d, generator=g, dtype=torch.float64)
    return mu, std


def naive_log_qz(z: torch.Tensor, mu: torch.Tensor, std: torch.Tensor, chunk: int = 64):
    """log q(z_i) with torch.distributions over the full broadcast, chunked over rows."""
    from torch.distributions import Normal

    q = Normal(mu[None], std[None])
    out = torch.empty(z.shape[0], dtype=z.dtype, device=z.device)
    for i in range(0, z.shape[0], chunk):
        lp = q.log_prob(z[i : i + chunk, None, :]).sum(-1)
        out[i : i + chunk] = torch.logsumexp(lp, 1) - math.log(mu.shape[0])
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ["ELBOLAB_NO_PROGRESS"] = "1"
    from elbolab import checks
    from elbolab.diagnostics import log_aggregate_posterior, surgery
    from elbolab.errors import ConfigError

    try:
        device = checks.device(args.device, "--device")
    except ConfigError as exc:
        print(f"surgery_speed: {exc}", file=sys.stderr)
        return 2
    mu, std = make_posteriors(args.n, args.d)
    mu, std = mu.to(device), std.to(device)
    where = describe(device)
    print(
        f"ELBO surgery, N={args.n}, d={args.d}, 1 sample per point, float64, on {device}; "
        f"torch {torch.__version__}, {where}",
        flush=True,
    )

    if device.type == "cuda":  # warm-up: CUDA context, cuBLAS handles, kernels
        surgery(mu[:1000], std[:1000], generator=0, progress=False)
    times = []
    result = None
    for r in range(args.repeats):
        t, result = timed(lambda: surgery(mu, std, generator=0, progress=False), device)
        times.append(t)
        print(f"  elbolab run {r + 1}: {times[-1]:.2f} s", flush=True)
    ours = statistics.median(times)

    # The same samples z_n as surgery(generator=0) draws on this device.
    g = torch.Generator(device=device).manual_seed(0)
    eps = torch.randn(1, args.n, args.d, generator=g, dtype=torch.float64, device=device)[0]
    z = mu + std * eps
    rows = args.naive_rows
    if device.type == "cuda":
        naive_log_qz(z[:64], mu, std)
    naive_times = []
    naive_vals = None
    for r in range(args.repeats):
        t, naive_vals = timed(lambda: naive_log_qz(z[:rows], mu, std), device)
        naive_times.append(t)
        print(f"  straightforward run {r + 1}: {naive_times[-1]:.2f} s for {rows} rows", flush=True)
    naive_rows_time = statistics.median(naive_times)
    naive_full = naive_rows_time * args.n / rows
    ours_vals, _ = log_aggregate_posterior(z[:rows], mu, std, own=torch.arange(rows, device=device))
    max_diff = float((ours_vals - naive_vals.cpu()).abs().max())

    print()
    print(f"{'implementation':<52}{'median s':>10}")
    print(f"{'elbolab surgery (all N rows, measured)':<52}{ours:>10.2f}")
    label = f"torch.distributions ({rows} rows -> N, extrapolated)"
    print(f"{label:<52}{naive_full:>10.2f}")
    print(f"speed-up (straightforward / elbolab): {naive_full / ours:.1f}x")
    print(f"max |log q(z) difference| on the {rows} shared rows: {max_diff:.2e} nats")
    print(
        f"terms: average KL {result['average_kl']:.4f}, MI {result['mutual_info']:.4f} "
        f"(log N = {result['log_n']:.4f}), marginal KL {result['marginal_kl']:.4f}, "
        f"MI + marginal KL - MC average KL = "
        f"{result['mutual_info'] + result['marginal_kl'] - result['average_kl_mc']:.2e}"
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(
                {
                    "n": args.n,
                    "d": args.d,
                    "device": str(device),
                    "threads": torch.get_num_threads(),
                    "elbolab_seconds": times,
                    "elbolab_median": ours,
                    "naive_rows": rows,
                    "naive_seconds_rows": naive_times,
                    "naive_extrapolated_seconds": naive_full,
                    "speedup": naive_full / ours,
                    "max_abs_diff": max_diff,
                },
                f,
                indent=2,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
