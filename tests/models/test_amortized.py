"""Amortized families, the linearization of a network and its empirical NTK."""

import pytest
import torch
from torch import nn

from elbolab.errors import ConfigError
from elbolab.models.amortized import MLP, Amortized, Linearized, empirical_ntk, ntk_drift

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("parameterization", ["ntk", "standard"])
def test_linearization_equals_the_network_at_initialization(parameterization):
    net = MLP(3, 4, width=32, depth=2, parameterization=parameterization, generator=0)
    x = torch.randn(10, 3, generator=torch.Generator().manual_seed(1))
    expected = net(x)
    lin = Linearized(net)
    assert torch.allclose(lin(x), expected, atol=1e-6)


def test_linearization_gradient_at_initialization_is_the_networks():
    net = MLP(3, 2, width=16, depth=1, generator=0)
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(1))
    net(x).pow(2).sum().backward()
    expected = [p.grad.clone() for p in net.parameters()]
    lin = Linearized(net)
    lin(x).pow(2).sum().backward()
    for d, g in zip(lin.delta, expected, strict=True):
        assert torch.allclose(d.grad, g, atol=1e-5)


def test_linearization_is_exact_for_a_network_linear_in_its_parameters():
    layer = nn.Linear(3, 2, dtype=torch.float64)
    x = torch.randn(6, 3, dtype=torch.float64)
    lin = Linearized(layer)
    with torch.no_grad():
        for d in lin.delta:
            d.copy_(torch.randn_like(d))
        moved = nn.Linear(3, 2, dtype=torch.float64)
        moved.weight.copy_(lin._theta0["weight"] + lin.delta[0])
        moved.bias.copy_(lin._theta0["bias"] + lin.delta[1])
    assert torch.allclose(lin(x), moved(x), atol=1e-12)
    assert lin.displacement() > 0


def test_linearization_is_not_exact_for_a_nonlinear_network():
    net = MLP(3, 2, width=16, depth=1, activation="tanh", generator=0, dtype=torch.float64)
    lin = Linearized(net)
    with torch.no_grad():
        for d in lin.delta:
            d.copy_(torch.randn_like(d))
    x = torch.randn(4, 3, dtype=torch.float64)
    params = {n: lin._theta0[n] + d for n, d in zip(lin._names, lin.delta, strict=True)}
    moved = torch.func.functional_call(net, params, (x,))
    assert not torch.allclose(lin(x), moved, atol=1e-3)


def test_ntk_of_an_affine_map_is_x_xT_plus_one():
    layer = nn.Linear(3, 1, dtype=torch.float64)
    x = torch.randn(5, 3, dtype=torch.float64)
    k = empirical_ntk(layer, x)
    assert torch.allclose(k, x @ x.T + 1, atol=1e-12)


def test_ntk_is_symmetric_psd_and_linearized_kernel_does_not_drift():
    net = MLP(2, 3, width=64, depth=2, generator=0, dtype=torch.float64)
    x = torch.randn(6, 2, dtype=torch.float64)
    k0 = empirical_ntk(net, x)
    assert k0.shape == (18, 18)
    assert torch.allclose(k0, k0.T)
    assert float(torch.linalg.eigvalsh(k0).min()) > -1e-8
    lin = Linearized(net)
    with torch.no_grad():
        for d in lin.delta:
            d.add_(torch.randn_like(d))
    assert ntk_drift(k0, empirical_ntk(lin, x)) == 0.0


def test_families_return_gaussians_with_the_right_moments():
    out = torch.tensor([[1.0, 2.0, 0.0, 0.5]])
    q = Amortized(nn.Identity(), "mean_scale")(out)
    assert torch.allclose(q.mean, torch.tensor([[1.0, 2.0]]))
    assert torch.allclose(q.stddev, torch.tensor([[0.0, 0.5]]).exp())
    q = Amortized(nn.Identity(), "natural")(out)  # eta1 = (1, 2), log precision = (0, 0.5)
    prec = torch.tensor([0.0, 0.5]).exp()
    assert torch.allclose(q.mean, torch.tensor([1.0, 2.0]) / prec)
    assert torch.allclose(q.variance, 1 / prec)
    with pytest.raises(ConfigError):
        Amortized(nn.Identity(), "nope")
    with pytest.raises(ConfigError):
        MLP(3, 2, width=0)
