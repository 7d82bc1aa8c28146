"""Posterior-collapse diagnostics on constructed inputs."""

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from elbolab.diagnostics import active_units, collapse_curve, collapsed_fraction, kl_per_dimension
from elbolab.errors import ConfigError


def test_kl_per_dimension_matches_torch():
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(7, 3, generator=g, dtype=torch.float64)
    std = 0.1 + torch.rand(7, 3, generator=g, dtype=torch.float64)
    kl = kl_per_dimension(mu, std)
    torch.testing.assert_close(kl, kl_divergence(Normal(mu, std), Normal(0.0, 1.0)))
    assert kl.shape == (7, 3) and (kl >= 0).all()
    zero = kl_per_dimension(np.zeros((4, 2)), np.ones((4, 2)))
    assert torch.equal(zero, torch.zeros(4, 2, dtype=torch.float64))


def test_active_units_on_constructed_means():
    n = 1000
    sign = torch.tensor([1.0, -1.0]).repeat(n // 2)  # mean 0, population variance 1
    mu = torch.stack(
        [
            1.0 * sign,  # variance 1       -> active
            0.2 * sign,  # variance 0.04    -> active
            0.05 * sign,  # variance 0.0025 -> inactive
            torch.full((n,), 3.0),  # constant -> inactive
        ],
        1,
    )
    r = active_units(mu)
    assert r["count"] == 2
    assert r["active"].tolist() == [True, True, False, False]
    torch.testing.assert_close(
        r["variances"], torch.tensor([1.0, 0.04, 0.0025, 0.0], dtype=torch.float64)
    )
    assert active_units(mu, threshold=0.001)["count"] == 3


def test_collapse_curve_on_constructed_kls():
    n = 100
    kl = torch.full((n, 4), 1e-3, dtype=torch.float64)
    kl[0, 1] = 5.0  # 99% of the data below epsilon: collapsed at delta = 0.01
    kl[:2, 2] = 5.0  # 98%: not collapsed at delta = 0.01, collapsed at delta = 0.02
    kl[:, 3] = 1.0  # collapsed only once epsilon > 1
    eps = [5e-4, 0.01, 0.5, 2.0, 10.0]
    r = collapse_curve(kl, eps, delta=0.01)
    assert r["fraction"].tolist() == [0.0, 0.5, 0.5, 0.75, 1.0]
    assert collapse_curve(kl, eps, delta=0.02)["fraction"].tolist() == [0.0, 0.75, 0.75, 1.0, 1.0]
    torch.testing.assert_close(
        r["prob_below"][1], torch.tensor([1.0, 0.99, 0.98, 0.0], dtype=torch.float64)
    )
    # strict inequality of the definition: KL = epsilon does not count as below
    assert collapse_curve(kl, [1.0], delta=0.0)["prob_below"][0, 3] == 0.0
    assert collapsed_fraction(kl, epsilon=1.0, delta=0.0) == 0.25  # only dimension 0
    assert collapsed_fraction(kl, epsilon=0.01, delta=0.01) == 0.5


def test_collapse_curve_monotone_in_epsilon():
    g = torch.Generator().manual_seed(1)
    kl = torch.rand(200, 10, generator=g, dtype=torch.float64) ** 4 * torch.linspace(0.01, 3, 10)
    eps = np.logspace(-4, 1, 40)
    for delta in (0.0, 0.01, 0.1, 0.5):
        frac = collapse_curve(kl, eps, delta=delta)["fraction"]
        assert (frac[1:] >= frac[:-1]).all()
        assert frac[0] == 0.0 and frac[-1] == 1.0


@pytest.mark.parametrize(
    "call",
    [
        lambda: kl_per_dimension(torch.zeros(3, 2), torch.zeros(3, 2)),
        lambda: kl_per_dimension(torch.zeros(3, 2), torch.ones(3, 3)),
        lambda: active_units(torch.zeros(1, 2)),
        lambda: active_units(torch.zeros(5)),
        lambda: collapse_curve(torch.zeros(3, 2), [], 0.01),
        lambda: collapse_curve(torch.zeros(3, 2), [0.1], 1.5),
    ],
)
def test_bad_input(call):
    with pytest.raises(ConfigError):
        call()


def test_results_are_cpu_and_devices_must_agree():
    mu = torch.randn(6, 3, dtype=torch.float64)
    std = torch.rand(6, 3, dtype=torch.float64) + 0.5
    assert kl_per_dimension(mu, std).device.type == "cpu"
    with pytest.raises(ConfigError, match="mu is on cpu but std is on meta"):
        kl_per_dimension(mu, std.to("meta"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_inputs_give_the_cpu_results():
    g = torch.Generator().manual_seed(3)
    mu = torch.randn(50, 4, generator=g, dtype=torch.float64)
    std = 0.2 + torch.rand(50, 4, generator=g, dtype=torch.float64)
    kl = kl_per_dimension(mu.cuda(), std.cuda())
    assert kl.device.type == "cpu"
    torch.testing.assert_close(kl, kl_per_dimension(mu, std))
    a, b = active_units(mu.cuda()), active_units(mu)
    assert a["count"] == b["count"] and a["variances"].device.type == "cpu"
    c = collapse_curve(kl.cuda(), [0.01, 0.1, 1.0])
    assert c["fraction"].device.type == "cpu"
    assert torch.equal(c["fraction"], collapse_curve(kl, [0.01, 0.1, 1.0])["fraction"])
    assert collapsed_fraction(kl.cuda(), 0.5) == collapsed_fraction(kl, 0.5)
    with pytest.raises(ConfigError, match="mu is on cuda.* but std is on cpu"):
        kl_per_dimension(mu.cuda(), std)
