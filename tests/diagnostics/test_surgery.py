"""ELBO surgery: identity, bounds, limits, closed forms and the blocked log q(z)."""

import math

import pytest
import torch
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

from elbolab.diagnostics import log_aggregate_posterior, surgery, surgery_model
from elbolab.diagnostics.surgery import _prior_log_prob
from elbolab.errors import ConfigError
from elbolab.models.vae import VAE
from elbolab.objectives import elbo

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _posteriors(n=400, d=3, seed=100, spread=1.0, lo=0.2, hi=1.0):
    g = torch.Generator().manual_seed(seed)
    mu = spread * torch.randn(n, d, generator=g, dtype=torch.float64)
    std = lo + (hi - lo) * torch.rand(n, d, generator=g, dtype=torch.float64)
    return mu, std


def test_identity_and_bounds():
    mu, std = _posteriors()
    r = surgery(mu, std, generator=0, n_samples=3, progress=False)
    # exact on the same samples
    assert r["average_kl_mc"] == pytest.approx(r["mutual_info"] + r["marginal_kl"], abs=1e-10)
    # analytic average KL against its MC estimate: within MC error
    assert r["kl_analytic"] and r["se_average_kl"] == 0.0
    assert abs(r["average_kl"] - r["average_kl_mc"]) < 4 * r["se_average_kl_mc"]
    assert 0.0 <= r["mutual_info"] <= r["log_n"] == math.log(400)
    assert r["marginal_kl"] >= 0.0
    expect = 0.5 * (mu**2 + std**2 - 1).sum(1) - std.log().sum(1)
    assert r["average_kl"] == pytest.approx(float(expect.mean()), rel=1e-12)
    for key in ("se_mutual_info", "se_marginal_kl", "se_average_kl_mc"):
        assert 0 < r[key] < 1
    assert r["kl_per_datum"].shape == (400,) and r["mutual_info_per_datum"].shape == (400,)


def test_mi_zero_for_identical_posteriors():
    n, d = 300, 4
    mu = torch.full((n, d), 0.7, dtype=torch.float64)
    std = torch.full((n, d), 0.3, dtype=torch.float64)
    r = surgery(mu, std, generator=1, progress=False)
    assert abs(r["mutual_info"]) < 1e-9
    # q(z) = N(0.7, 0.3^2): marginal KL is that Gaussian's KL to the prior
    kl = d * (0.5 * (0.7**2 + 0.3**2 - 1) - math.log(0.3))
    assert r["average_kl"] == pytest.approx(kl, rel=1e-12)
    assert abs(r["marginal_kl"] - kl) < 4 * r["se_marginal_kl"]


def test_mi_reaches_log_n_for_separated_narrow_posteriors():
    mu, _ = _posteriors(n=200, d=2, seed=3, spread=100.0)
    std = torch.full_like(mu, 1e-3)
    r = surgery(mu, std, generator=0, progress=False)
    assert r["mutual_info"] <= r["log_n"]
    assert r["mutual_info"] == pytest.approx(r["log_n"], abs=1e-9)


def test_marginal_kl_zero_when_aggregate_is_the_prior():
    mu = torch.zeros(100, 3, dtype=torch.float64)
    std = torch.ones(100, 3, dtype=torch.float64)
    r = surgery(mu, std, generator=0, n_samples=2, progress=False)
    for key in ("average_kl", "mutual_info", "marginal_kl", "average_kl_mc"):
        assert abs(r[key]) < 1e-9, key


def test_mi_upper_bound_holds_exactly_in_floating_point():
    # many near-duplicate and far-apart posteriors, few samples: the bound is by construction
    for seed in range(5):
        mu, std = _posteriors(n=50, d=2, seed=seed, spread=10.0 ** (seed - 2), lo=1e-3, hi=2.0)
        r = surgery(mu, std, generator=1000 + seed, progress=False)
        assert r["mutual_info"] <= r["log_n"]
        assert r["mutual_info"] > -4 * r["se_mutual_info"]


def test_two_point_mi_and_marginal_kl_against_quadrature():
    # N = 2 one-dimensional posteriors: I(n; z) and KL(q(z) || p(z)) by quadrature.
    mu = torch.tensor([[-0.6], [0.9]], dtype=torch.float64)
    std = torch.tensor([[0.7], [0.4]], dtype=torch.float64)
    z = torch.linspace(-12, 12, 48001, dtype=torch.float64)
    dz = float(z[1] - z[0])
    lq = Normal(mu, std).log_prob(z)  # (2, G)
    lqbar = torch.logsumexp(lq, 0) - math.log(2)
    mi = float(0.5 * (lq.exp() * (lq - lqbar)).sum() * dz)
    mkl = float((lqbar.exp() * (lqbar - Normal(0.0, 1.0).log_prob(z))).sum() * dz)
    r = surgery(mu, std, generator=0, n_samples=20000, progress=False)
    assert abs(r["mutual_info"] - mi) < 4 * r["se_mutual_info"]
    assert abs(r["marginal_kl"] - mkl) < 4 * r["se_marginal_kl"]
    assert 0 < mi < math.log(2)


def test_blocked_log_aggregate_posterior_matches_brute_force():
    mu, std = _posteriors(n=120, d=3, seed=4)
    g = torch.Generator().manual_seed(2)
    z = 1.5 * torch.randn(70, 3, generator=g, dtype=torch.float64)
    own = torch.randint(120, (70,), generator=g)
    brute = torch.logsumexp(Normal(mu[None], std[None]).log_prob(z[:, None]).sum(-1), 1)
    brute = brute - math.log(120)
    for method in ("gemm", "direct", "auto"):
        for bs, cs in ((7, 13), (1024, 16384), (70, 120)):
            lq, gap = log_aggregate_posterior(z, mu, std, own, bs, cs, method=method)
            torch.testing.assert_close(lq, brute, rtol=0, atol=1e-10)
            assert (gap >= 0).all()


def test_extreme_scales_fall_back_to_exact_paths():
    mu, std = _posteriors(n=60, d=2, seed=5)
    std[0] = 1e-9  # a needle: huge density at its mean, expanded quadratic form unusable
    z = torch.cat([mu[:1], mu[1:4] + 0.1])
    own = torch.tensor([7, 1, 2, 3])  # the first point is far more probable under q(z|x_0)
    brute = torch.logsumexp(Normal(mu[None], std[None]).log_prob(z[:, None]).sum(-1), 1)
    lq, gap = log_aggregate_posterior(z, mu, std, own)
    torch.testing.assert_close(lq, brute - math.log(60), rtol=1e-12, atol=1e-9)
    assert (gap >= 0).all()


def test_non_gaussian_prior_is_monte_carlo_and_normal_prior_matches_none():
    mu, std = _posteriors(n=150, d=2, seed=6)
    mix = MixtureSameFamily(
        Categorical(logits=torch.zeros(3, dtype=torch.float64)),
        Independent(
            Normal(torch.randn(3, 2, dtype=torch.float64), torch.ones(3, 2, dtype=torch.float64)), 1
        ),
    )
    r = surgery(mu, std, prior=mix, generator=0, progress=False)
    assert not r["kl_analytic"]
    assert r["average_kl"] == r["average_kl_mc"]
    assert r["average_kl"] == pytest.approx(r["mutual_info"] + r["marginal_kl"], abs=1e-10)
    normal = Independent(
        Normal(torch.zeros(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64)), 1
    )
    a = surgery(mu, std, prior=normal, generator=3, progress=False)
    b = surgery(mu, std, prior=None, generator=3, progress=False)
    for key in ("average_kl", "mutual_info", "marginal_kl", "se_average_kl_mc"):
        assert a[key] == pytest.approx(b[key], rel=1e-12, abs=1e-12), key


@pytest.mark.parametrize("prior", ["normal", "vamp"])
def test_surgery_model(prior):
    m = VAE(8, 2, hidden=(6,), prior=prior, n_pseudo=4, generator=1, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(60, 8, generator=g) < 0.4).double()
    r = surgery_model(m, x, generator=0, n_samples=2, encode_batch_size=25, progress=False)
    assert r["average_elbo"] == pytest.approx(r["average_reconstruction"] - r["average_kl"])
    assert 0 <= r["mutual_info"] <= r["log_n"]
    assert r["mu"].shape == (60, 2)
    with torch.no_grad():
        e = elbo(m, x, generator=5, n_samples=200)
    se = (r["se_average_reconstruction"] ** 2 + r["se_average_kl"] ** 2) ** 0.5
    assert abs(r["average_elbo"] - float(e["elbo"]) / 60) < 4 * se + 0.05


def test_bad_input():
    mu, std = _posteriors(n=10, d=2)
    with pytest.raises(ConfigError):
        surgery(mu, std[:, :1], generator=0)
    with pytest.raises(ConfigError):
        surgery(mu, -std, generator=0)
    with pytest.raises(ConfigError):
        surgery(mu, std, generator=0, n_samples=0)
    with pytest.raises(ConfigError):
        surgery(mu, std, prior=object(), generator=0)
    with pytest.raises(ConfigError):
        log_aggregate_posterior(mu, mu, std, method="fast")


# ------------------------------------------------------------------ devices and blocks


def test_default_blocks_match_the_former_blocks():
    # the CPU default block (512 x 2048) against the former 1024 x 16384 and tiny blocks
    mu, std = _posteriors(n=3000, d=4, seed=8)
    a = surgery(mu, std, generator=2, progress=False)
    for bs, cs in ((1024, 16384), (100, 77)):
        b = surgery(mu, std, generator=2, batch_size=bs, column_size=cs, progress=False)
        for key in ("mutual_info", "marginal_kl", "average_kl_mc"):
            assert a[key] == pytest.approx(b[key], abs=1e-12), key
        torch.testing.assert_close(
            a["mutual_info_per_datum"], b["mutual_info_per_datum"], rtol=0, atol=1e-12
        )


def test_vamp_prior_log_prob_by_matrix_products():
    mu, std = _posteriors(n=50, d=3, seed=9)
    g = torch.Generator().manual_seed(1)
    mix = MixtureSameFamily(
        Categorical(logits=torch.randn(11, generator=g, dtype=torch.float64)),
        Independent(
            Normal(
                torch.randn(11, 3, generator=g, dtype=torch.float64),
                0.2 + torch.rand(11, 3, generator=g, dtype=torch.float64),
            ),
            1,
        ),
    )
    z = 2 * torch.randn(300, 3, generator=g, dtype=torch.float64)
    torch.testing.assert_close(_prior_log_prob(mix, z, 64), mix.log_prob(z), rtol=0, atol=1e-10)
    r = surgery(mu, std, prior=mix, generator=0, progress=False)
    assert r["average_kl"] == pytest.approx(r["mutual_info"] + r["marginal_kl"], abs=1e-10)


def test_results_are_cpu():
    mu, std = _posteriors(n=30, d=2)
    r = surgery(mu, std, generator=torch.Generator().manual_seed(0), progress=False)
    for key in ("kl_per_datum", "mutual_info_per_datum"):
        assert r[key].device.type == "cpu" and r[key].dtype == torch.float64
    assert isinstance(r["mutual_info"], float)


def test_inputs_on_different_devices_are_a_config_error():
    mu, std = _posteriors(n=10, d=2)
    with pytest.raises(ConfigError, match="mu is on cpu but std is on meta"):
        surgery(mu, std.to("meta"), generator=0, progress=False)
    with pytest.raises(ConfigError, match="mu is on meta but std is on cpu"):
        log_aggregate_posterior(mu, mu.to("meta"), std)
    with pytest.raises(ConfigError, match="z is on meta but mu is on cpu"):
        log_aggregate_posterior(mu.to("meta"), mu, std)
    with pytest.raises(ConfigError, match="own is on meta but mu is on cpu"):
        log_aggregate_posterior(mu, mu, std, own=torch.arange(10, device="meta"))
    loc = torch.zeros(2, device="meta")
    prior = Independent(Normal(loc, torch.ones_like(loc), validate_args=False), 1)
    with pytest.raises(ConfigError, match="prior is on meta but mu is on cpu"):
        surgery(mu, std, prior=prior, generator=0, progress=False)
    with pytest.raises(ConfigError, match="generator"):
        surgery(mu, std, generator=None, progress=False)


def test_surgery_model_device_rules():
    m = VAE(8, 2, hidden=(6,), generator=1)
    x = torch.zeros(5, 8, dtype=torch.uint8)
    with pytest.raises(ConfigError, match="the model is on meta but x is on cpu"):
        surgery_model(m.to("meta"), x, generator=0, progress=False)
    with pytest.raises(ConfigError, match="the model is on cpu but x is on meta"):
        surgery_model(VAE(8, 2, hidden=(6,)), x.to("meta"), generator=0, progress=False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_generator_with_cpu_posteriors_is_a_config_error():
    mu, std = _posteriors(n=10, d=2)
    gen = torch.Generator(device="cuda").manual_seed(0)
    with pytest.raises(ConfigError, match=r"generator is on cuda.* but .* is on cpu"):
        surgery(mu, std, generator=gen, progress=False)
    with pytest.raises(ConfigError, match="mu is on cuda.* but std is on cpu"):
        surgery(mu.cuda(), std, generator=0, progress=False)
    m = VAE(8, 2, hidden=(6,), generator=1)
    with pytest.raises(ConfigError, match=r"generator is on cuda.* but .* is on cpu"):
        surgery_model(m, torch.zeros(5, 8), generator=gen, progress=False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_follows_the_data_and_agrees_with_the_cpu():
    mu, std = _posteriors(n=700, d=3, seed=4)
    g = torch.Generator().manual_seed(2)
    z = 1.5 * torch.randn(300, 3, generator=g, dtype=torch.float64)
    own = torch.randint(700, (300,), generator=g)
    for method in ("gemm", "direct"):
        cpu = log_aggregate_posterior(z, mu, std, own, method=method)
        gpu = log_aggregate_posterior(z.cuda(), mu.cuda(), std.cuda(), own.cuda(), method=method)
        assert gpu[0].device.type == "cpu"
        torch.testing.assert_close(gpu[0], cpu[0], rtol=0, atol=1e-10)
        torch.testing.assert_close(gpu[1], cpu[1], rtol=0, atol=1e-10)
    r = surgery(mu.cuda(), std.cuda(), generator=0, n_samples=4, progress=False)
    c = surgery(mu, std, generator=0, n_samples=4, progress=False)
    assert r["kl_per_datum"].device.type == "cpu"
    assert r["average_kl"] == pytest.approx(c["average_kl"], rel=1e-12)
    assert abs(r["mutual_info"] - c["mutual_info"]) < 5 * c["se_mutual_info"]
    m = VAE(8, 2, hidden=(6,), prior="vamp", n_pseudo=4, generator=1, dtype=torch.float64)
    x = (torch.rand(60, 8, generator=g) < 0.4).double()
    s = surgery_model(m.cuda(), x.cuda(), generator=0, n_samples=2, progress=False)
    assert s["mu"].device.type == "cpu" and 0 <= s["mutual_info"] <= s["log_n"]
