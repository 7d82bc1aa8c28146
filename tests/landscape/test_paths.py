"""Linear paths, NEB and AutoNEB for a function we maximize: analytic saddles and invariants.

Ground truth: f(x, y) = -(x^2 - 1)^2 - 2 (y - x^2)^2 + 0.25 x has two maxima near
(-1, 1) and (1, 1) and one first-order saddle between them (on the curve y = x^2, where
4x - 4x^3 + 0.25 = 0). Maxima and saddle are computed with scipy to ~1e-12; the true
maximum-f path is the steepest-ascent curve from the saddle to both maxima, integrated with
``solve_ivp``.
"""

import math

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp
from scipy.optimize import fsolve, minimize

from elbolab.errors import ConfigError, NumericalError
from elbolab.landscape import (
    Band,
    Cycles,
    Optimizer,
    autoneb,
    barrier,
    dense_points,
    dense_values,
    linear_path,
    neb,
    path_length,
    plane_grid,
)

D = torch.float64


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def ridge(X):
    x, y = X[:, 0], X[:, 1]
    return -((x**2 - 1) ** 2) - 2 * (y - x**2) ** 2 + 0.25 * x


def _grad(z):
    X = torch.tensor(z, dtype=D)[None].requires_grad_(True)
    ridge(X).sum().backward()
    return X.grad[0].numpy()


def _f(z):
    return float(ridge(torch.as_tensor(z, dtype=D)[None])[0])


@pytest.fixture(scope="module")
def truth():
    opt = dict(jac=lambda z: -_grad(z), method="BFGS", options={"gtol": 1e-13})
    a = minimize(lambda z: -_f(z), [-1.0, 1.0], **opt).x
    b = minimize(lambda z: -_f(z), [1.0, 1.0], **opt).x
    s = fsolve(_grad, [0.0, 0.0], xtol=1e-14)
    assert np.abs(_grad(a)).max() < 1e-9 and np.abs(_grad(s)).max() < 1e-12
    # s is a first-order saddle: Hessian eigenvalues of opposite signs.
    h = torch.autograd.functional.hessian(lambda v: ridge(v[None])[0], torch.tensor(s))
    ev = torch.linalg.eigvalsh(h)
    assert ev[0] < 0 < ev[1]

    # Maximum-f path: steepest ascent from the saddle along the Hessian's positive
    # eigenvector, both ways, until the gradient vanishes (at the maxima).
    def rhs(_, z):
        g = _grad(z)
        return g / max(np.linalg.norm(g), 1e-12)

    def at_top(_, z):
        return np.linalg.norm(_grad(z)) - 1e-6

    at_top.terminal = True
    at_top.direction = -1  # leaving the saddle the norm grows; it falls to 0 at the top
    e = torch.linalg.eigh(h).eigenvectors[:, 1].numpy()
    halves = [
        solve_ivp(rhs, [0, 5], s + sign * 1e-7 * e, max_step=0.01, rtol=1e-10, atol=1e-12,
                  events=at_top).y.T
        for sign in (-1, 1)
    ]  # fmt: skip
    mep = np.vstack([halves[0][::-1], halves[1]])
    a, b, s = (torch.tensor(v, dtype=D) for v in (a, b, s))
    return {"a": a, "b": b, "saddle": s, "barrier": min(_f(a), _f(b)) - _f(s), "mep": mep}


def _distance_to(curve, points):
    """Largest distance of the points to a densely sampled curve."""
    return float(np.linalg.norm(points.numpy()[:, None] - curve[None], axis=2).min(1).max())


def double_well(n=50, seed=1):
    """-(x0^2 - 1)^2 - sum_j w_j (x_j - c_j x0^2)^2: maxima f = 0 at x0 = -+1, x_j = c_j;
    saddle f = -1 at 0, so the maximum-f path has barrier exactly 1."""
    g = torch.Generator().manual_seed(seed)
    c = 0.5 * torch.randn(n - 1, generator=g, dtype=D)
    w = 0.5 + torch.rand(n - 1, generator=g, dtype=D)

    def f(X):
        x0 = X[:, 0]
        return -((x0**2 - 1) ** 2) - ((X[:, 1:] - c * x0[:, None] ** 2) ** 2 * w).sum(1)

    a = torch.cat([torch.tensor([-1.0], dtype=D), c])
    b = torch.cat([torch.tensor([1.0], dtype=D), c])
    straight = 1 + float((w * c**2).sum())  # f at the straight line's midpoint is -this
    return f, a, b, straight


def quadratic(n=50, seed=2):
    """A concave quadratic in n dimensions and two points on different sides of its top."""
    g = torch.Generator().manual_seed(seed)
    m = torch.randn(n, generator=g, dtype=D)
    q = torch.randn(n, n, generator=g, dtype=D)
    A = q @ q.T / n + 0.1 * torch.eye(n, dtype=D)

    def f(X):
        d = X - m
        return -0.5 * ((d @ A) * d).sum(1)

    a = m + torch.randn(n, generator=g, dtype=D)
    b = m + torch.randn(n, generator=g, dtype=D)
    return f, a, b


# ----------------------------------------------------------------------------- basics


def test_linear_path_barrier_length_dense():
    a, b = torch.tensor([0.0, 0.0], dtype=D), torch.tensor([3.0, 4.0], dtype=D)
    p = linear_path(a, b, 6)
    assert p.shape == (6, 2)
    assert torch.equal(p[0], a) and torch.equal(p[-1], b)
    torch.testing.assert_close(p[1:] - p[:-1], ((b - a) / 5).expand(5, 2))
    assert path_length(p) == pytest.approx(5.0)
    pts, pos = dense_points(p, per_segment=4)
    assert pts.shape == (21, 2) and torch.equal(pts[::4], p)
    torch.testing.assert_close(pos, torch.linspace(0, 1, 21, dtype=D))
    vals = dense_values(lambda X: -(X**2).sum(1), p, per_segment=4, batch_size=5)
    torch.testing.assert_close(vals, -(pts**2).sum(1))
    assert barrier(torch.tensor([-1.0, -3.0, -2.0]), -1.0, -2.0) == 1.0
    assert barrier(torch.tensor([0.0, 1.0, 0.5]), 0.0, 0.5) == 0.0  # never negative


def test_straight_line_barrier_of_the_ridge(truth):
    a, b = truth["a"], truth["b"]
    lin = dense_values(ridge, linear_path(a, b, 11), per_segment=20)
    assert barrier(lin, _f(a), _f(b)) > truth["barrier"] + 1.0


# ----------------------------------------------------------------------------- NEB


@pytest.mark.parametrize("optimizer,lr", [("adam", 0.01), ("sgd", 0.05)])
def test_neb_climbing_image_finds_the_saddle(truth, optimizer, lr):
    a, b = truth["a"], truth["b"]
    r = neb(ridge, a, b, n_pivots=10, steps=3000, optimizer=Optimizer(optimizer, lr=lr),
            band=Band(climbing=True), tol=1e-7, show_progress=False)  # fmt: skip
    assert r.converged
    ci = r.climbing_index
    assert ci is not None and 0 < ci < 9
    assert float((r.pivots[ci] - truth["saddle"]).norm()) < 1e-3
    assert r.values[ci] == r.values[1:-1].min()
    # The barrier of the maximum-f path is f(lower endpoint) - f(saddle) ...
    assert r.barrier == pytest.approx(truth["barrier"], abs=1e-3)
    # ... and much lower than the straight line's.
    lin = dense_values(ridge, linear_path(a, b, 10))
    assert r.barrier < barrier(lin, r.f_a, r.f_b) - 1.0
    # Endpoints never move (bit-for-bit), and their values are the same in every row.
    assert torch.equal(r.pivots[0], a) and torch.equal(r.pivots[-1], b)
    assert torch.all(r.history[:, 0] == r.history[0, 0])
    assert r.history.shape == (r.n_iter + 1, 10)
    assert torch.isfinite(r.history).all()


def test_neb_without_climbing_lies_on_the_maximum_f_path(truth):
    r = neb(ridge, truth["a"], truth["b"], n_pivots=12, steps=1500, optimizer=Optimizer(lr=0.02),
            show_progress=False)  # fmt: skip
    assert r.converged and r.climbing_index is None
    # Pivots on the true steepest-ascent path, up to the first-order error of the upwind
    # tangent (about 0.03 at this spacing; the straight line is ~0.9 away).
    assert _distance_to(truth["mep"], r.pivots) < 0.05
    assert _distance_to(truth["mep"], linear_path(truth["a"], truth["b"], 12)) > 0.5
    assert r.barrier == pytest.approx(truth["barrier"], abs=2e-3)


def test_neb_any_function_in_50d():
    f, a, b, straight = double_well()
    r = neb(f, a, b, n_pivots=11, steps=2000, optimizer=Optimizer(lr=0.02),
            band=Band(climbing=True), tol=1e-6, show_progress=False)  # fmt: skip
    assert torch.equal(r.pivots[0], a) and torch.equal(r.pivots[-1], b)
    assert r.barrier == pytest.approx(1.0, abs=1e-3)  # analytic: along x_j = c_j x0^2
    assert straight > 10  # the straight line is far worse
    f, a, b = quadratic()
    r = neb(f, a, b, n_pivots=8, steps=100, optimizer=Optimizer(lr=0.05), show_progress=False)
    lin = linear_path(a, b, 8)
    assert torch.equal(r.pivots[0], a) and torch.equal(r.pivots[-1], b)
    assert torch.all(r.values[1:-1] > f(lin)[1:-1])  # every pivot moved uphill


def test_neb_evaluates_all_pivots_in_one_call_per_iteration():
    f0, a, b = quadratic(n=5)
    calls = []

    def f(X):
        calls.append(X.shape[0])
        return f0(X)

    r = neb(f, a, b, n_pivots=7, steps=20, tol=0.0, per_segment=3, show_progress=False)
    assert r.n_iter == 20
    # start + one per step, each with all 7 pivots; then one dense evaluation.
    assert calls == [7] * 21 + [6 * 3 + 1]


def test_neb_callback_stops_and_generator_is_reproducible():
    f, a, b = quadratic(n=4)
    seen = []
    r = neb(f, a, b, steps=100, tol=0.0, callback=lambda it, p, v: seen.append(it) or it == 5,
            show_progress=False)  # fmt: skip
    assert seen == [1, 2, 3, 4, 5] and r.n_iter == 5
    kw = dict(steps=10, noise=0.1, show_progress=False)
    r1 = neb(f, a, b, generator=torch.Generator().manual_seed(3), **kw)
    r2 = neb(f, a, b, generator=torch.Generator().manual_seed(3), **kw)
    r3 = neb(f, a, b, generator=torch.Generator().manual_seed(4), **kw)
    assert torch.equal(r1.pivots, r2.pivots) and not torch.equal(r1.pivots, r3.pivots)


# ----------------------------------------------------------------------------- step control


def _nan_after(k):
    """A quadratic that starts returning NaN after k calls (NaN injected into f)."""
    calls = {"n": 0}

    def f(X):
        calls["n"] += 1
        v = -(X**2).sum(1)
        return v * math.nan if calls["n"] > k else v

    return f


@pytest.mark.parametrize("method", [neb, autoneb])
def test_nan_injected_into_f_stops_with_floating_point_error(method):
    a, b = torch.tensor([1.0, 0.0, 0.0], dtype=D), torch.tensor([0.0, 1.0, 0.0], dtype=D)
    with pytest.raises(FloatingPointError, match="iteration 5"):
        method(_nan_after(5), a, b, steps=50, tol=0.0, show_progress=False)
    with pytest.raises(FloatingPointError, match=r"iteration 0 \(starting path\)"):
        method(_nan_after(0), a, b, steps=50, show_progress=False)


def test_nan_that_no_step_size_avoids_is_reported():
    """NaN appears in a strip x0 in (0.3, 0.7) crossing the path, from iteration 3 on."""

    def f(X):
        v = -((X - 1) ** 2).sum(1)
        strip = (X[:, 0] > 0.3) & (X[:, 0] < 0.7)
        return torch.where(strip & f.armed, math.nan, v)

    def arm(it, pivots, values):
        f.armed = it >= 3

    a, b = torch.tensor([0.0, 0.0], dtype=D), torch.tensor([1.0, 0.0], dtype=D)
    f.armed = False
    with pytest.raises(FloatingPointError, match="iteration 4.*20 step halvings"):
        neb(f, a, b, steps=20, tol=0.0, callback=arm, show_progress=False)
    # NaN at a fixed endpoint is named as such.
    f.armed = False
    with pytest.raises(FloatingPointError, match="endpoint"):
        neb(f, a, torch.tensor([0.5, 0.0], dtype=D), steps=20, tol=0.0, callback=arm,
            show_progress=False)  # fmt: skip


def positive_log(X):
    """Defined only for X > 0 (log), maximum at X = 0.01: pivots are pushed to the edge."""
    return (-X + 0.01 * torch.log(X)).sum(1)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("with_project,max_step", [(True, None), (False, None), (False, 1.0)])
def test_step_control_keeps_a_constrained_domain(optimizer, with_project, max_step):
    a, b = torch.tensor([0.01, 1.0], dtype=D), torch.tensor([1.0, 0.01], dtype=D)
    project = (lambda x: x.clamp_min(1e-9)) if with_project else None
    settings = Optimizer(optimizer, lr=0.5, max_step=max_step)
    for method in (neb, autoneb):
        r = method(positive_log, a, b, steps=150, optimizer=settings, project=project,
                   show_progress=False)  # fmt: skip
        assert torch.isfinite(r.history).all() and torch.isfinite(r.dense_values).all()
        assert torch.isfinite(r.pivots).all() and bool((r.pivots > 0).all())
        assert torch.equal(r.pivots[0], a) and torch.equal(r.pivots[-1], b)
        assert math.isfinite(r.barrier)
        if max_step == 1.0:
            assert r.info["halvings"] > 0  # steps into x <= 0 were backtracked


def refusing_log(X):
    """positive_log, but refusing (NumericalError) where it is undefined instead of
    returning NaN, as LDAObjective does beyond float range."""
    if bool((X <= 0).any()):
        raise NumericalError("refusing_log: undefined for X <= 0")
    return positive_log(X)


def test_an_f_that_refuses_non_finite_values_gets_its_steps_halved():
    a, b = torch.tensor([0.01, 1.0], dtype=D), torch.tensor([1.0, 0.01], dtype=D)
    for method in (neb, autoneb):
        r = method(refusing_log, a, b, steps=150, optimizer=Optimizer(lr=0.5, max_step=1.0),
                   show_progress=False)  # fmt: skip
        assert r.info["halvings"] > 0  # trials into X <= 0 were refused and backtracked
        assert bool((r.pivots > 0).all()) and torch.isfinite(r.dense_values).all()
        assert torch.equal(r.pivots[0], a) and torch.equal(r.pivots[-1], b)
    # The rows f refused come back as NaN among the others, not as a failed batch.
    values = plane_grid(refusing_log, torch.tensor([0.5, 0.5], dtype=D),
                        torch.tensor([1.0, 0.0], dtype=D), torch.tensor([0.0, 1.0], dtype=D),
                        torch.tensor([-1.0, 0.0], dtype=D), torch.tensor([0.0], dtype=D),
                        show_progress=False)  # fmt: skip
    assert torch.isnan(values[0, 0]) and torch.isfinite(values[0, 1])


# ----------------------------------------------------------------------------- AutoNEB


@pytest.mark.parametrize("climbing", [False, True])
def test_autoneb_inserts_pivots_and_finds_the_maximum_f_path(truth, climbing):
    a, b = truth["a"], truth["b"]
    r = autoneb(ridge, a, b, n_pivots=3, steps=300, optimizer=Optimizer(lr=0.02),
                cycles=Cycles(4, climbing=climbing), show_progress=False)  # fmt: skip
    assert torch.equal(r.pivots[0], a) and torch.equal(r.pivots[-1], b)
    sizes = r.info["n_pivots_per_cycle"]
    assert sizes[0] == 3 and r.pivots.shape[0] > 3 and sizes == sorted(sizes)
    assert r.barrier == pytest.approx(truth["barrier"], abs=1e-2)
    for h in r.info["cycle_histories"]:
        assert torch.all(h[:, 0] == h[0, 0]) and torch.all(h[:, -1] == h[0, -1])
    assert _distance_to(truth["mep"], r.pivots) < 0.05
    if climbing:
        ci = r.climbing_index
        assert float((r.pivots[ci] - truth["saddle"]).norm()) < 1e-3
        assert r.barrier == pytest.approx(truth["barrier"], abs=1e-3)


def test_autoneb_any_function_in_50d():
    f, a, b, straight = double_well()
    r = autoneb(f, a, b, steps=300, optimizer=Optimizer(lr=0.02), show_progress=False)
    assert torch.equal(r.pivots[0], a) and torch.equal(r.pivots[-1], b)
    assert r.barrier == pytest.approx(1.0, abs=1e-2) and r.barrier < straight


# ----------------------------------------------------------------------------- bad input


def test_bad_arguments_and_bad_functions():
    a, b = torch.zeros(2, dtype=D), torch.ones(2, dtype=D)
    ok = lambda X: -(X**2).sum(1)  # noqa: E731
    with pytest.raises(ConfigError, match="n_pivots"):
        neb(ok, a, b, n_pivots=2)
    with pytest.raises(ConfigError, match="optimizer"):
        Optimizer("lbfgs")
    with pytest.raises(ConfigError, match="Optimizer record"):
        neb(ok, a, b, optimizer="adam")
    with pytest.raises(ConfigError, match="Band record"):
        neb(ok, a, b, band=1.0)
    with pytest.raises(ConfigError, match="Cycles record"):
        autoneb(ok, a, b, cycles=3)
    with pytest.raises(ConfigError, match="spring"):
        Band(spring=-1.0)
    with pytest.raises(ConfigError, match="max_pivots"):
        autoneb(ok, a, b, n_pivots=5, cycles=Cycles(max_pivots=4))
    with pytest.raises(ConfigError, match="same point"):
        neb(ok, a, a.clone())
    with pytest.raises(ConfigError, match="same length"):
        neb(ok, a, torch.ones(3, dtype=D))
    with pytest.raises(ConfigError, match="lr"):
        Optimizer(lr=-1.0)
    with pytest.raises(ConfigError, match="shape"):
        neb(lambda X: X.sum(), a, b, show_progress=False)
    with pytest.raises(ConfigError, match="differentiable"):
        neb(lambda X: torch.ones(X.shape[0], dtype=D), a, b, show_progress=False)


def test_tangents_follow_henkelman_jonsson_case_by_case():
    """The improved tangent of Henkelman & Jonsson (2000), written out case by case."""
    from elbolab.landscape.elastic_band import _tangents

    def unit(v):  # a zero vector stays zero
        return v / v.norm().clamp_min(torch.finfo(D).tiny)

    gen = torch.Generator().manual_seed(0)
    for trial in range(60):
        path = torch.randn(6, 4, dtype=D, generator=gen)
        if trial % 3 == 0:  # ties and flat stretches
            values = torch.randint(0, 2, (6,), generator=gen).to(D)
        else:
            values = torch.randn(6, dtype=D, generator=gen)
        if trial % 5 == 0:
            path[3] = path[2]  # a zero-length segment
        tau, seg = _tangents(path.clone(), values)
        e = -values
        for i in range(1, 5):
            t_plus, t_minus = path[i + 1] - path[i], path[i] - path[i - 1]
            up, down = e[i - 1] < e[i] < e[i + 1], e[i - 1] > e[i] > e[i + 1]
            d_big = max(abs(e[i + 1] - e[i]), abs(e[i - 1] - e[i]))
            d_small = min(abs(e[i + 1] - e[i]), abs(e[i - 1] - e[i]))
            if up:
                want = t_plus
            elif down:
                want = t_minus
            elif e[i + 1] > e[i - 1]:
                want = t_plus * d_big + t_minus * d_small
            else:
                want = t_plus * d_small + t_minus * d_big
            if want.norm() == 0:
                want = unit(t_plus) + unit(t_minus)  # flat: the bisector
            torch.testing.assert_close(tau[i - 1], unit(want), rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(seg, (path[1:] - path[:-1]).norm(dim=1), rtol=1e-14, atol=0)
