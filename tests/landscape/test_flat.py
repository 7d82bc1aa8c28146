"""Flattener: structured parameters <-> vectors, single and batched, with gradients."""

import pytest
import torch

from elbolab.errors import ConfigError
from elbolab.landscape import Flattener


def _params(batch=()):
    g = torch.Generator().manual_seed(0)
    return {
        "lam": torch.rand(*batch, 3, 5, generator=g, dtype=torch.float64),
        "gamma": torch.rand(*batch, 4, 3, generator=g, dtype=torch.float64),
        "scale": torch.rand(tuple(batch), generator=g, dtype=torch.float64),  # a scalar parameter
    }


def test_roundtrip_single_and_layout():
    params = _params()
    fl = Flattener(params)
    assert fl.n == 15 + 12 + 1 and len(fl) == fl.n
    assert fl.names == ("lam", "gamma", "scale")
    assert fl.offsets == (0, 15, 27)
    x = fl.flatten(params)
    assert x.shape == (28,) and x.dtype == torch.float64
    # Blocks in template order, each row-major.
    assert torch.equal(x[:15], params["lam"].reshape(-1))
    assert torch.equal(x[15:27], params["gamma"].reshape(-1))
    back = fl.unflatten(x)
    for k, v in params.items():
        assert back[k].shape == v.shape
        assert torch.equal(back[k], v)


def test_batched_matches_rowwise():
    fl = Flattener({"lam": (3, 5), "gamma": (4, 3), "scale": ()}, dtype=torch.float64)
    params = _params(batch=(6,))
    x = fl.flatten(params)
    assert x.shape == (6, fl.n)
    rows = torch.stack([fl.flatten({k: v[i] for k, v in params.items()}) for i in range(6)])
    assert torch.equal(x, rows)
    back = fl.unflatten(x)
    assert back["lam"].shape == (6, 3, 5) and back["scale"].shape == (6,)
    for k, v in params.items():
        assert torch.equal(back[k], v)
    # Two batch dimensions work too.
    x2 = torch.zeros(2, 3, fl.n, dtype=torch.float64)
    assert fl.unflatten(x2)["gamma"].shape == (2, 3, 4, 3)


def test_wrap_gives_a_differentiable_vector_function():
    fl = Flattener({"a": (2, 2), "b": (3,)}, dtype=torch.float64)

    def fn(p):  # sum of squares of a plus sum of b, per batch row
        return (p["a"] ** 2).sum(dim=(-2, -1)) + p["b"].sum(-1)

    f = fl.wrap(fn)
    x = torch.randn(4, fl.n, dtype=torch.float64, requires_grad=True)
    f(x).sum().backward()
    expected = torch.cat([2 * x.detach()[:, :4], torch.ones(4, 3, dtype=torch.float64)], dim=1)
    torch.testing.assert_close(x.grad, expected)


def test_errors():
    fl = Flattener({"a": (2, 2), "b": (3,)})
    with pytest.raises(ConfigError, match="missing"):
        fl.flatten({"a": torch.zeros(2, 2)})
    with pytest.raises(ConfigError, match="unexpected"):
        fl.flatten({"a": torch.zeros(2, 2), "b": torch.zeros(3), "c": torch.zeros(1)})
    with pytest.raises(ConfigError, match="shape"):
        fl.flatten({"a": torch.zeros(2, 3), "b": torch.zeros(3)})
    with pytest.raises(ConfigError, match="batch shape"):
        fl.flatten({"a": torch.zeros(5, 2, 2), "b": torch.zeros(4, 3)})
    with pytest.raises(ConfigError, match="expected"):
        fl.unflatten(torch.zeros(6))
    with pytest.raises(ConfigError):
        Flattener({})


def test_structured_parameters_through_a_path_method():
    from elbolab.landscape import neb

    fl = Flattener({"lam": (2, 3), "gamma": (4, 2)}, dtype=torch.float64)

    def elbo(p):  # any function of the structured parameters, batched over pivots
        return -(p["lam"] ** 2).sum(dim=(-2, -1)) - ((p["gamma"] - 1) ** 2).sum(dim=(-2, -1))

    a = fl.flatten({"lam": torch.ones(2, 3), "gamma": torch.zeros(4, 2)})
    b = fl.flatten({"lam": -torch.ones(2, 3), "gamma": 2 * torch.ones(4, 2)})
    r = neb(fl.wrap(elbo), a, b, n_pivots=5, steps=20, show_progress=False)
    assert torch.equal(r.pivots[0], a) and torch.equal(r.pivots[-1], b)
    path = fl.unflatten(r.pivots)
    assert path["lam"].shape == (5, 2, 3) and path["gamma"].shape == (5, 4, 2)
