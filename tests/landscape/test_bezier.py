"""Bezier curves (Garipov et al. 2018): basis identities, fixed endpoints, lower barriers."""

import math

import pytest
import torch

from elbolab.errors import ConfigError
from elbolab.landscape import (
    Optimizer,
    barrier,
    bernstein,
    bezier,
    bezier_points,
    dense_values,
    linear_path,
)

D = torch.float64


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def ridge(X):  # two maxima near (-1, 1) and (1, 1); see test_paths.py
    x, y = X[:, 0], X[:, 1]
    return -((x**2 - 1) ** 2) - 2 * (y - x**2) ** 2 + 0.25 * x


A = torch.tensor([-0.9671489, 0.9353771], dtype=D)  # near-maxima of ridge (1e-7)
B = torch.tensor([1.0298960, 1.0606857], dtype=D)


def double_well(n=50, seed=1):
    g = torch.Generator().manual_seed(seed)
    c = 0.5 * torch.randn(n - 1, generator=g, dtype=D)
    w = 0.5 + torch.rand(n - 1, generator=g, dtype=D)

    def f(X):
        x0 = X[:, 0]
        return -((x0**2 - 1) ** 2) - ((X[:, 1:] - c * x0[:, None] ** 2) ** 2 * w).sum(1)

    one = torch.tensor([1.0], dtype=D)
    return f, torch.cat([-one, c]), torch.cat([one, c])


def test_bernstein_basis_and_curve_points():
    t = torch.linspace(0, 1, 7, dtype=D)
    for d in (1, 2, 3, 5):
        w = bernstein(t, d)
        assert w.shape == (7, d + 1)
        torch.testing.assert_close(w.sum(1), torch.ones(7, dtype=D))
        assert torch.equal(w[0], torch.eye(d + 1, dtype=D)[0])
        assert torch.equal(w[-1], torch.eye(d + 1, dtype=D)[-1])
    ctrl = torch.tensor([[0.0, 0.0], [1.0, 2.0], [2.0, 0.0]], dtype=D)
    pts = bezier_points(ctrl, t)
    # Quadratic Bezier in closed form: (1-t)^2 P0 + 2 t (1-t) P1 + t^2 P2.
    want = (1 - t)[:, None] ** 2 * ctrl[0] + (2 * t * (1 - t))[:, None] * ctrl[1]
    want = want + t[:, None] ** 2 * ctrl[2]
    torch.testing.assert_close(pts, want)
    # Control points evenly on a segment give that segment at uniform speed.
    lin = torch.linspace(0, 1, 4, dtype=D)[:, None].expand(4, 3)
    torch.testing.assert_close(bezier_points(lin, t), t[:, None].expand(7, 3))


@pytest.mark.parametrize("degree", [2, 3])
def test_bezier_keeps_endpoints_and_lowers_the_barrier(degree):
    gen = torch.Generator().manual_seed(0)
    r = bezier(ridge, A, B, degree=degree, steps=400, optimizer=Optimizer(lr=0.05), n_t=16,
               generator=gen, n_pivots=21, show_progress=False)  # fmt: skip
    assert torch.equal(r.pivots[0], A) and torch.equal(r.pivots[-1], B)
    ctrl = r.info["control_points"]
    assert ctrl.shape == (degree + 1, 2)
    assert torch.equal(ctrl[0], A) and torch.equal(ctrl[-1], B)
    assert r.pivots.shape == (21, 2) and r.values.shape == (21,)
    torch.testing.assert_close(r.values, ridge(r.pivots))
    assert r.history.shape == (400, 16) and torch.isfinite(r.history).all()
    lin = dense_values(ridge, linear_path(A, B, 21))
    assert r.barrier < barrier(lin, r.f_a, r.f_b) - 1.0  # 2.74 -> about 1.0
    # The objective (mean f over t) went up.
    obj = r.info["objective"]
    assert obj[-50:].mean() > obj[:10].mean() + 0.5


def test_bezier_any_function_in_50d():
    f, a, b = double_well()
    r = bezier(f, a, b, degree=2, steps=300, optimizer=Optimizer(lr=0.02), generator=1,
               show_progress=False)  # fmt: skip
    assert torch.equal(r.pivots[0], a) and torch.equal(r.pivots[-1], b)
    # A quadratic curve can follow x_j = c_j x0^2 exactly; the best barrier is 1.
    assert r.barrier == pytest.approx(1.0, abs=2e-2)


def test_t_comes_from_the_generator():
    kw = dict(steps=20, optimizer=Optimizer(lr=0.05), n_t=4, sampling="uniform",
              show_progress=False)  # fmt: skip
    r1 = bezier(ridge, A, B, generator=torch.Generator().manual_seed(5), **kw)
    r2 = bezier(ridge, A, B, generator=torch.Generator().manual_seed(5), **kw)
    r3 = bezier(ridge, A, B, generator=torch.Generator().manual_seed(6), **kw)
    assert torch.equal(r1.pivots, r2.pivots) and not torch.equal(r1.pivots, r3.pivots)


def test_all_t_of_a_step_in_one_batch():
    calls = []

    def f(X):
        calls.append(X.shape[0])
        return ridge(X)

    bezier(f, A, B, steps=10, n_t=8, n_pivots=5, per_segment=4, show_progress=False)
    assert calls == [8] * 11 + [4 * 4 + 1]


def positive_log(X):
    return (-X + 0.01 * torch.log(X)).sum(1)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_step_control_keeps_a_constrained_domain(optimizer):
    a, b = torch.tensor([0.01, 1.0], dtype=D), torch.tensor([1.0, 0.01], dtype=D)
    r = bezier(positive_log, a, b, degree=3, steps=150, optimizer=Optimizer(optimizer, lr=0.5),
               project=lambda x: x.clamp_min(1e-9), show_progress=False)  # fmt: skip
    assert torch.isfinite(r.history).all() and torch.isfinite(r.dense_values).all()
    assert bool((r.info["control_points"] > 0).all()) and bool((r.pivots > 0).all())
    assert torch.equal(r.pivots[0], a) and torch.equal(r.pivots[-1], b)


def test_nan_injected_into_f_stops_with_floating_point_error():
    calls = {"n": 0}

    def f(X):
        calls["n"] += 1
        v = -(X**2).sum(1)
        return v * math.nan if calls["n"] > 5 else v

    a, b = torch.tensor([1.0, 0.0], dtype=D), torch.tensor([0.0, 1.0], dtype=D)
    with pytest.raises(FloatingPointError, match="iteration 5"):
        bezier(f, a, b, steps=50, show_progress=False)
    with pytest.raises(FloatingPointError, match="iteration 0"):
        bezier(lambda X: (X * math.nan).sum(1), a, b, steps=5, show_progress=False)


def test_bad_arguments():
    with pytest.raises(ConfigError, match="degree"):
        bezier(ridge, A, B, degree=1)
    with pytest.raises(ConfigError, match="sampling"):
        bezier(ridge, A, B, sampling="sobol")
    with pytest.raises(ConfigError, match="n_t"):
        bezier(ridge, A, B, n_t=0)
    with pytest.raises(ConfigError, match="Optimizer record"):
        bezier(ridge, A, B, optimizer="sgd")
