"""Forward KL, ELBO and IWBO of amortized families on a conjugate Gaussian model.

Model: z ~ N(0, 1), x | z ~ N(z, s^2). Exact posterior N(m x, v) with m = 1 / (1 + s^2),
v = s^2 / (1 + s^2); marginal x ~ N(0, 1 + s^2).
"""

import math

import pytest
import torch
from torch import nn

from elbolab.errors import ConfigError
from elbolab.models.amortized import Amortized
from elbolab.objectives.forward_kl import elbo_amortized, forward_kl, iwbo_amortized

S2 = 0.5
M, V = 1 / (1 + S2), S2 / (1 + S2)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def simulator(gen, n):
    z = torch.randn(n, 1, generator=gen, dtype=torch.float64)
    x = z + math.sqrt(S2) * torch.randn(n, 1, generator=gen, dtype=torch.float64)
    return z, x


def log_joint(z, x):
    prior = -0.5 * (z**2 + math.log(2 * math.pi))
    lik = -0.5 * ((x - z) ** 2 / S2 + math.log(2 * math.pi * S2))
    return (prior + lik).sum(-1)


def affine_family(a, b, log_c):
    """q(z | x) = N(a x + b, c^2) as an Amortized module over a fixed linear map."""
    lin = nn.Linear(1, 2, dtype=torch.float64)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[a], [0.0]]))
        lin.bias.copy_(torch.tensor([b, log_c]))
    return Amortized(lin, "mean_scale")


def expected_nll(a, b, log_c):
    """E_{p(z,x)}[-log q(z | x)] in closed form for q = N(a x + b, c^2)."""
    c2 = math.exp(2 * log_c)
    sq = 1 - 2 * a + a * a * (1 + S2) + b * b  # E[(z - a x - b)^2]
    return 0.5 * math.log(2 * math.pi * c2) + sq / (2 * c2)


def test_forward_kl_estimates_the_closed_form():
    q = affine_family(0.3, 0.2, -0.1)
    with torch.no_grad():
        out = forward_kl(q, simulator, 200_000, generator=0)
    se = float(out["nll_per_pair"].std()) / math.sqrt(200_000)
    assert abs(float(out["loss"]) - expected_nll(0.3, 0.2, -0.1)) < 4 * se


def test_forward_kl_minus_posterior_entropy_is_the_expected_kl():
    # E_x KL(N(m x, v) || N(a x + b, c^2)) in closed form.
    a, b, log_c = 0.3, 0.2, -0.1
    c2 = math.exp(2 * log_c)
    mean_sq = (M - a) ** 2 * (1 + S2) + b * b
    kl = 0.5 * (math.log(c2 / V) + (V + mean_sq) / c2 - 1)
    entropy = 0.5 * math.log(2 * math.pi * math.e * V)
    assert expected_nll(a, b, log_c) - entropy == pytest.approx(kl, rel=1e-12)


def test_minimizing_the_forward_kl_finds_the_exact_posterior():
    q = affine_family(0.0, 0.0, 0.0)
    opt = torch.optim.Adam(q.parameters(), lr=0.05)
    gen = torch.Generator().manual_seed(1)
    for _ in range(1500):
        opt.zero_grad()
        forward_kl(q, simulator, 512, gen)["loss"].backward()
        opt.step()
    w, bias = q.net.weight.detach(), q.net.bias.detach()
    assert float(w[0, 0]) == pytest.approx(M, abs=0.03)
    assert float(bias[0]) == pytest.approx(0.0, abs=0.03)
    # What is left is E_x KL(p(z|x) || q) = E[-log q] - H[p(z|x)]: close to 0.
    with torch.no_grad():
        nll = float(forward_kl(q, simulator, 200_000, generator=2)["loss"])
    entropy = 0.5 * math.log(2 * math.pi * math.e * V)
    assert -0.01 < nll - entropy < 0.01


def test_iwbo_with_one_sample_is_the_elbo_and_rises_to_log_px():
    q = affine_family(0.5, 0.1, -0.5)
    x = torch.linspace(-2, 2, 9, dtype=torch.float64)[:, None]
    e = elbo_amortized(q, log_joint, x, generator=3)["elbo_per_datum"]
    i1 = iwbo_amortized(q, log_joint, x, 1, generator=3)["iwbo_per_datum"]
    assert torch.allclose(e, i1)
    log_px = -0.5 * (x[:, 0] ** 2 / (1 + S2) + math.log(2 * math.pi * (1 + S2)))
    bounds = [float(iwbo_amortized(q, log_joint, x, k, generator=4)["iwbo"]) for k in (1, 10, 1000)]
    assert bounds[0] < bounds[1] < bounds[2] <= float(log_px.sum()) + 1e-3
    assert bounds[2] == pytest.approx(float(log_px.sum()), abs=0.05)


def test_bad_shapes_are_reported():
    q = affine_family(0.5, 0.1, -0.5)
    with pytest.raises(ConfigError):
        forward_kl(q, lambda g, n: simulator(g, n + 1), 4, 0)
    with pytest.raises(ConfigError):
        iwbo_amortized(q, log_joint, torch.zeros(3, 1, dtype=torch.float64), 0, 0)
