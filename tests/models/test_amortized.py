"""Amortized families, the linearization of a network and its empirical NTK."""

import pytest
import torch
from torch import nn

from elbolab.errors import ConfigError
from elbolab.models.amortized import (
    MLP,
    Amortized,
    Centered,
    Linearized,
    empirical_ntk,
    ntk_drift,
)

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


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def test_linearized_moves_with_to_and_keeps_theta0_out_of_its_state():
    # theta_0 lives in buffers: .to() converts it with the rest (here the dtype, which
    # the CPU can check; a device moves the same way), and state_dict holds only the
    # base and delta.
    net = MLP(3, 2, width=8, depth=1, generator=0)
    lin = Linearized(net)
    n_params = len(list(net.parameters()))
    expected = {f"base.{k}" for k in net.state_dict()} | {f"delta.{i}" for i in range(n_params)}
    assert set(lin.state_dict()) == expected
    lin = lin.to(torch.float64)
    assert all(t.dtype == torch.float64 for t in lin._theta0.values())
    x = torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    # The expansion is of a copy: the original stays in float32.
    assert torch.allclose(lin(x), lin.base(x), atol=1e-12)
    assert next(net.parameters()).dtype == torch.float32


def test_ensemble_weights_come_from_their_seeds_on_the_cpu():
    from elbolab.models.amortized import EnsembleMLP

    a = EnsembleMLP([3, 5], 4, 2, width=8)
    b = EnsembleMLP([5], 4, 2, width=8)
    assert all(p.device.type == "cpu" for p in a.parameters())
    for wa, wb in zip(a.weights, b.weights, strict=True):
        assert torch.equal(wa[1], wb[0])  # model r depends on seeds[r] only


@needs_cuda
def test_a_seed_gives_the_same_network_on_cuda():
    from elbolab.models.amortized import EnsembleMLP

    x = torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    for parameterization in ("ntk", "standard"):
        cpu = MLP(3, 4, width=16, parameterization=parameterization, generator=7)
        cpu = cpu.to(torch.float64)
        gpu = MLP(3, 4, width=16, parameterization=parameterization, generator=7)
        gpu = gpu.to(torch.float64).to("cuda")
        for p, q in zip(cpu.parameters(), gpu.parameters(), strict=True):
            assert q.device.type == "cuda" and torch.equal(p, q.cpu())
        lin = Linearized(MLP(3, 4, width=16, parameterization=parameterization, generator=7))
        lin = lin.to(torch.float64).to("cuda")
        assert all(t.device.type == "cuda" for t in lin._theta0.values())
        assert torch.allclose(lin(x.cuda()).cpu(), cpu(x), atol=1e-10)
        k = empirical_ntk(lin, x[:2].cuda())
        assert k.device.type == "cuda"
        assert torch.allclose(k.cpu(), empirical_ntk(cpu, x[:2]), atol=1e-8)
    ens = EnsembleMLP([0, 1], 3, 2, width=8)
    ens_gpu = EnsembleMLP([0, 1], 3, 2, width=8).to("cuda")
    xb = x[None].expand(2, 5, 3)
    assert torch.allclose(ens_gpu(xb.cuda()).cpu(), ens(xb), atol=1e-10)


def test_linearizing_leaves_the_original_network_trainable():
    # The network and its linearization train side by side in the width experiment.
    net = MLP(3, 2, width=8, depth=1, generator=0)
    lin = Linearized(net)
    assert all(p.requires_grad for p in net.parameters())
    assert not any(p.requires_grad for p in lin.base.parameters())
    with torch.no_grad():
        next(net.parameters()).add_(1.0)
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(2))
    # Moving the original does not move the expansion point.
    assert torch.allclose(lin(x), MLP(3, 2, width=8, depth=1, generator=0)(x))


def test_centred_network_starts_at_zero_with_the_networks_kernel_and_moves_like_it():
    net = MLP(3, 4, width=16, depth=1, generator=0, dtype=torch.float64)
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    before = net(x).detach()
    centred = Centered(net)
    lin = Linearized(centred)  # expanded at theta_0, as in the width experiment
    assert torch.equal(centred(x), torch.zeros_like(before))
    assert torch.allclose(lin(x), torch.zeros_like(before), atol=1e-12)
    assert torch.allclose(empirical_ntk(centred, x), empirical_ntk(net, x), atol=1e-12)
    # Its linearization has the same gradient as the network at theta_0.
    centred(x).sum().backward()
    lin(x).sum().backward()
    for d, p in zip(lin.delta, net.parameters(), strict=True):
        assert torch.allclose(d.grad, p.grad, atol=1e-10)
    # After a parameter change it is the network's change of output.
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1)
    assert torch.allclose(centred(x), net(x) - before, atol=1e-12)
    assert not torch.allclose(centred(x), torch.zeros_like(before))


def test_natural_about_a_reference_has_the_stated_natural_parameters():
    from elbolab.models.amortized import natural_about

    out = torch.tensor([[0.0, 0.5, 0.0, -1.0]], dtype=torch.float64)  # (a, b), d = 2
    ref = torch.tensor([[3.0, -2.0]], dtype=torch.float64)
    q = natural_about(out, ref, precision=100.0)
    lam = 100.0 * torch.exp(torch.tensor([0.0, -1.0], dtype=torch.float64))
    eta1 = 100.0 * torch.tensor([0.0, 0.5], dtype=torch.float64) + lam * ref[0]
    assert torch.allclose(q.mean[0], eta1 / lam)
    assert torch.allclose(q.scale[0], lam.rsqrt())
    # Zero outputs give N(reference, 1 / precision) whatever the reference.
    q0 = natural_about(torch.zeros(1, 4, dtype=torch.float64), ref, precision=100.0)
    assert torch.allclose(q0.mean, ref) and torch.allclose(
        q0.scale, torch.full((1, 2), 0.1, dtype=torch.float64)
    )
    with pytest.raises(ConfigError, match="precision"):
        natural_about(out, ref, precision=0.0)
