"""Importance-sampled log p(x) against the exact marginal of a linear-Gaussian VAE."""

import math

import pytest
import torch
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

from elbolab import checks
from elbolab.diagnostics import log_likelihood
from elbolab.diagnostics.likelihood import _regroup
from elbolab.diagnostics.mixture import DiagonalMixture
from elbolab.errors import ConfigError
from elbolab.models.vae import VAE
from elbolab.objectives import elbo

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _linear_gaussian():
    m = VAE(5, 2, hidden=(), likelihood="gaussian", sigma2=0.3, dtype=torch.float64, generator=7)
    x = 1.5 * torch.randn(8, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    return m, x


def test_matches_exact_log_marginal_within_standard_error():
    m, x = _linear_gaussian()
    exact = m.exact_log_marginal(x)
    r = log_likelihood(m, x, k=3000, generator=0, batch_size=3, chunk_size=700, progress=False)
    se = r["se_per_datum"]
    assert r["per_datum"].shape == (8,) and (se > 0).all() and (se < 0.5).all()
    # the estimator is biased low by about se^2 / 2: allow it on top of 4 standard errors
    assert ((r["per_datum"] - exact).abs() < 4 * se + se**2).all()
    assert abs(r["mean_log_likelihood"] - float(exact.mean())) < 4 * r["se_mean_mc"] + 0.01
    assert r["log_likelihood"] == pytest.approx(float(r["per_datum"].sum()))
    assert r["se_mean"] > 0 and r["k"] == 3000


def test_standard_error_is_honest_over_repeats():
    # the spread of independent estimates matches the delta-method standard error
    m, x = _linear_gaussian()
    x = x[:2]
    vals = torch.stack(
        [log_likelihood(m, x, k=200, generator=s, progress=False)["per_datum"] for s in range(60)]
    )
    se = log_likelihood(m, x, k=200, generator=99, progress=False)["se_per_datum"]
    ratio = vals.std(0) / se
    assert ((ratio > 0.6) & (ratio < 1.6)).all(), ratio


def test_above_the_elbo_on_average():
    m = VAE(10, 2, hidden=(8,), generator=3, dtype=torch.float64)
    x = (torch.rand(20, 10, generator=torch.Generator().manual_seed(2)) < 0.3).double()
    r = log_likelihood(m, x, k=500, generator=1, batch_size=7, progress=False)
    with torch.no_grad():
        e = elbo(m, x, generator=4, n_samples=500)
    assert r["mean_log_likelihood"] > float(e["elbo"]) / 20


def test_vamp_prior_and_float32():
    m = VAE(10, 2, hidden=(8,), prior="vamp", n_pseudo=5, generator=3)
    x = (torch.rand(6, 10, generator=torch.Generator().manual_seed(2)) < 0.3).to(torch.uint8)
    r = log_likelihood(m, x, k=50, generator=0, chunk_size=16, progress=False)
    assert torch.isfinite(r["per_datum"]).all() and r["per_datum"].dtype == torch.float64


@pytest.mark.parametrize("kwargs", [{"k": 0}, {"batch_size": 0}, {"chunk_size": 0}])
def test_bad_arguments(kwargs):
    m, x = _linear_gaussian()
    args = {"k": 10, **kwargs}
    with pytest.raises(ConfigError):
        log_likelihood(m, x, generator=0, progress=False, **args)


# ------------------------------------------------------------------ chunking and devices


def _reference(model, x, k, seed, batch_size=100, chunk=None):
    """The straightforward estimate with the model's torch.distributions and the same
    draws as log_likelihood (batches of ``batch_size``, draws of ``chunk`` samples)."""
    gen = torch.Generator().manual_seed(seed)
    chunk = min(chunk or max(1, 50_000 // min(batch_size, x.shape[0])), k)
    out = []
    with torch.no_grad():
        prior = model.prior()
        for i0 in range(0, x.shape[0], batch_size):
            xb = x[i0 : i0 + batch_size].to(model._anchor.dtype)
            q = model.encode(xb)
            lws = []
            for c0 in range(0, k, chunk):
                kc = min(chunk, k - c0)
                eps = torch.randn((kc, *q.loc.shape), generator=gen, dtype=q.loc.dtype)
                z = q.loc + q.scale * eps
                lws.append(
                    (model.decode(z).log_prob(xb) + prior.log_prob(z) - q.log_prob(z)).double()
                )
            out.append(torch.logsumexp(torch.cat(lws), 0) - math.log(k))
    return torch.cat(out)


@pytest.mark.parametrize("prior", ["normal", "vamp"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_same_numbers_as_the_straightforward_estimate(prior, dtype):
    m = VAE(12, 3, hidden=(9,), prior=prior, n_pseudo=7, generator=5, dtype=dtype)
    x = (torch.rand(23, 12, generator=torch.Generator().manual_seed(4)) < 0.4).to(torch.uint8)
    ref = _reference(m, x, k=300, seed=11, batch_size=10, chunk=64)
    r = log_likelihood(m, x, k=300, generator=11, batch_size=10, chunk_size=64, progress=False)
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    torch.testing.assert_close(r["per_datum"], ref, rtol=0, atol=tol)
    # the default draws (chunk of 50,000 // batch_size samples) too
    ref = _reference(m, x, k=300, seed=2, batch_size=10)
    r = log_likelihood(m, x, k=300, generator=2, batch_size=10, progress=False)
    torch.testing.assert_close(r["per_datum"], ref, rtol=0, atol=tol)


@pytest.mark.parametrize("prior", ["normal", "vamp"])
def test_chunked_equals_unchunked(prior):
    # the memory budget regroups the same draws: nothing changes beyond float rounding
    m = VAE(10, 2, hidden=(8,), prior=prior, n_pseudo=6, generator=3, dtype=torch.float64)
    x = (torch.rand(9, 10, generator=torch.Generator().manual_seed(2)) < 0.3).double()
    kw = {"k": 500, "generator": 7, "batch_size": 4, "chunk_size": 70, "progress": False}
    whole = log_likelihood(m, x, max_memory=2**40, **kw)  # one step per batch
    tiny = log_likelihood(m, x, max_memory=1, **kw)  # one sample per step
    mid = log_likelihood(m, x, max_memory=50_000, **kw)  # steps that split and join draws
    narrow = log_likelihood(m, x, max_memory=2_700, **kw)  # 3 of the 4 images per step
    for r in (tiny, mid, narrow):
        torch.testing.assert_close(r["per_datum"], whole["per_datum"], rtol=0, atol=1e-10)
        torch.testing.assert_close(r["se_per_datum"], whole["se_per_datum"], rtol=1e-8, atol=0)
        assert r["mean_log_likelihood"] == pytest.approx(whole["mean_log_likelihood"], abs=1e-10)


def test_regroup_keeps_the_samples_in_order():
    draws = [
        torch.full((n, 2, 1), float(i)) + torch.arange(n)[:, None, None] / 100
        for i, n in enumerate([3, 5, 1, 4])
    ]
    whole = torch.cat(draws)
    for step in (1, 2, 3, 4, 7, 13, 100):
        parts = list(_regroup(iter(draws), step))
        assert all(p.shape[0] == step for p in parts[:-1]) and 0 < parts[-1].shape[0] <= step
        assert torch.equal(torch.cat(parts), whole)


def test_results_are_cpu_float64():
    m, x = _linear_gaussian()
    r = log_likelihood(m, x, k=20, generator=torch.Generator().manual_seed(0), progress=False)
    for key in ("per_datum", "se_per_datum"):
        assert r[key].device.type == "cpu" and r[key].dtype == torch.float64
    assert isinstance(r["mean_log_likelihood"], float)


def test_model_and_data_on_different_devices_is_a_config_error():
    m = VAE(6, 2, hidden=(4,), generator=0)
    x = torch.zeros(3, 6, dtype=torch.uint8)
    with pytest.raises(ConfigError, match="the model is on meta but x is on cpu"):
        log_likelihood(m.to("meta"), x, k=4, generator=0, progress=False)
    with pytest.raises(ConfigError, match="the model is on cpu but x is on meta"):
        log_likelihood(VAE(6, 2, hidden=(4,)), x.to("meta"), k=4, generator=0, progress=False)


def test_generator_on_another_device_is_a_config_error():
    # A CPU build has no generator on another device: the rule log_likelihood applies
    # (checks.torch_generator on the model's device) is exercised directly; the CUDA
    # test below runs it end to end.
    with pytest.raises(ConfigError, match="generator is on cpu but .* is on meta"):
        checks.torch_generator(torch.Generator(), "generator", device=torch.device("meta"))
    m, x = _linear_gaussian()
    with pytest.raises(ConfigError, match="generator"):
        log_likelihood(m, x, k=4, generator=None, progress=False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_generator_with_cpu_model_is_a_config_error():
    m, x = _linear_gaussian()
    gen = torch.Generator(device="cuda").manual_seed(0)
    with pytest.raises(ConfigError, match=r"generator is on cuda.* but .* is on cpu"):
        log_likelihood(m, x, k=4, generator=gen, progress=False)
    with pytest.raises(ConfigError, match="the model is on cuda.* but x is on cpu"):
        log_likelihood(m.cuda(), x, k=4, generator=0, progress=False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("prior", ["normal", "vamp"])
def test_cuda_follows_the_model_and_agrees_with_the_cpu(prior):
    m = VAE(10, 2, hidden=(8,), prior=prior, n_pseudo=5, generator=3, dtype=torch.float64)
    x = (torch.rand(12, 10, generator=torch.Generator().manual_seed(2)) < 0.3).double()
    cpu = log_likelihood(m, x, k=2000, generator=0, progress=False)
    gpu = log_likelihood(m.cuda(), x.cuda(), k=2000, generator=0, progress=False)
    assert gpu["per_datum"].device.type == "cpu"
    # different streams: agreement within the Monte Carlo error
    se = torch.sqrt(cpu["se_per_datum"] ** 2 + gpu["se_per_datum"] ** 2)
    assert ((cpu["per_datum"] - gpu["per_datum"]).abs() < 5 * se + 1e-3).all()
    # and the same draws on the device give the same numbers chunked or not
    again = log_likelihood(m.cuda(), x.cuda(), k=2000, generator=0, max_memory=1, progress=False)
    torch.testing.assert_close(again["per_datum"], gpu["per_datum"], rtol=0, atol=1e-9)


# ------------------------------------------------------------------ the VampPrior's log p(z)


def _mixture(k=37, d=5, seed=0, lo=0.3, hi=1.5, spread=1.0, weights=True):
    g = torch.Generator().manual_seed(seed)
    loc = spread * torch.randn(k, d, generator=g, dtype=torch.float64)
    scale = lo + (hi - lo) * torch.rand(k, d, generator=g, dtype=torch.float64)
    logits = torch.randn(k, generator=g, dtype=torch.float64) if weights else torch.zeros(k)
    direct = MixtureSameFamily(
        Categorical(logits=logits.double()), Independent(Normal(loc, scale), 1)
    )
    return direct, g


def test_vamp_log_prob_by_matrix_products_equals_the_direct_formula():
    for seed, kw in enumerate([{}, {"weights": False}, {"lo": 0.05, "hi": 0.2, "spread": 3.0}]):
        direct, g = _mixture(seed=seed, **kw)
        mix = DiagonalMixture.of(direct)
        z = 2.0 * torch.randn(4, 50, 5, generator=g, dtype=torch.float64)
        want = direct.log_prob(z)  # the (4, 50, K, d) broadcast, float64
        torch.testing.assert_close(mix.log_prob(z), want, rtol=0, atol=1e-10)
        torch.testing.assert_close(mix.direct_log_prob(z), want, rtol=0, atol=1e-12)
        # a small memory block splits the rows: same numbers
        small = DiagonalMixture.of(direct, block_bytes=1)
        torch.testing.assert_close(small.log_prob(z), want, rtol=0, atol=1e-10)


def test_vamp_prior_of_the_model_is_recognized():
    m = VAE(6, 3, hidden=(5,), prior="vamp", n_pseudo=4, generator=1, dtype=torch.float64)
    prior = m.prior()
    mix = DiagonalMixture.of(prior)
    assert mix is not None and mix.k == 4 and mix.d == 3
    z = torch.randn(30, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.testing.assert_close(mix.log_prob(z), prior.log_prob(z).detach(), rtol=0, atol=1e-10)
    assert DiagonalMixture.of(VAE(6, 3, hidden=(5,)).prior()) is None


def test_float32_error_stays_within_the_stated_bound():
    direct, g = _mixture(k=60, d=6, seed=3, lo=0.1, hi=1.0, spread=2.0)
    mix = DiagonalMixture.of(direct)
    z = (2.5 * torch.randn(400, 6, generator=g, dtype=torch.float64)).float()
    want = direct.log_prob(z.double())
    b32, b64 = mix.error_bounds(z).tolist()
    assert b64 < 1e-9 < b32
    got = mix.log_prob(z, tolerance=math.inf)  # force the float32 product
    err = float((got - want).abs().max())
    # beyond the product's cancellation, the float32 log-sum-exp rounds its own result
    own_rounding = 8 * 2.0**-24 * float(want.abs().max())
    assert err <= b32 + own_rounding, (err, b32)
    # with the default tolerance the bound (> 1e-4 here) sends it to float64: exact
    assert b32 > 1e-4
    torch.testing.assert_close(mix.log_prob(z), want, rtol=0, atol=1e-10)


def test_needle_components_use_the_direct_formula():
    # scales of 1e-7 at |z| ~ 10: even float64's expanded form is off by more than 1e-4
    direct, g = _mixture(k=9, d=3, seed=4)
    loc = direct.component_distribution.base_dist.loc.clone()
    scale = direct.component_distribution.base_dist.scale.clone()
    scale[2] = 1e-7
    loc[2] += 10.0
    needle = MixtureSameFamily(direct.mixture_distribution, Independent(Normal(loc, scale), 1))
    mix = DiagonalMixture.of(needle)
    z = torch.cat([loc[2:3] + 1e-7, torch.randn(5, 3, generator=g, dtype=torch.float64)])
    assert mix.error_bounds(z)[1] > 1e-4
    torch.testing.assert_close(mix.log_prob(z), needle.log_prob(z), rtol=1e-12, atol=1e-8)


@pytest.mark.parametrize("prior", ["normal", "vamp"])
def test_a_given_posterior_gives_the_same_estimate_without_encoding(prior):
    m = VAE(6, 2, hidden=(5,), prior=prior, n_pseudo=3, dtype=torch.float64, generator=2)
    x = (torch.rand(7, 6, generator=torch.Generator().manual_seed(3)) < 0.5).double()
    plain = log_likelihood(m, x, k=40, generator=1, batch_size=3, progress=False)
    with torch.no_grad():
        q = elbo(m, x, generator=0)["posterior"]
    calls = []
    m.encode = lambda xb: calls.append(xb) or VAE.encode(m, xb)
    given = log_likelihood(m, x, k=40, generator=1, batch_size=3, progress=False, posterior=q)
    assert all(c is m.pseudo_inputs for c in calls)  # only a VampPrior encodes (its u_k)
    # the same samples; only the encoding's rounding may differ (x at once, not in 3s)
    torch.testing.assert_close(given["per_datum"], plain["per_datum"], rtol=1e-12, atol=1e-12)
    with pytest.raises(ConfigError, match="posterior must be q"):
        log_likelihood(m, x[:5], k=4, progress=False, posterior=q)
