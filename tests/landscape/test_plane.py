"""Planes through the landscape: grids, random directions, planes through paths, projection."""

import pytest
import torch

from elbolab.errors import ConfigError
from elbolab.landscape import (
    farthest_from_line,
    plane_grid,
    plane_through,
    project,
    random_gaussian_directions,
    random_sign_directions,
)

D = torch.float64


def f(X):
    return -(X**2).sum(1) + torch.sin(X[:, 0]) * X[:, -1]


def test_plane_grid_equals_pointwise_evaluation():
    g = torch.Generator().manual_seed(0)
    n = 6
    center = torch.randn(n, generator=g, dtype=D)
    u, v = random_gaussian_directions(n, g)
    xs = torch.linspace(-1, 1, 5, dtype=D)
    ys = torch.linspace(-2, 0.5, 4, dtype=D)
    grid = plane_grid(f, center, u, v, xs, ys, batch_size=7, show_progress=False)  # uneven chunks
    assert grid.shape == (4, 5)
    for i, y in enumerate(ys):
        for j, x in enumerate(xs):
            want = f((center + x * u + y * v)[None])[0]
            assert grid[i, j] == pytest.approx(float(want), abs=1e-14)
    # The chunk size does not change the answer; plain lists work as axes.
    one = plane_grid(f, center, u, v, xs.tolist(), ys.tolist(), batch_size=100,
                     show_progress=False)  # fmt: skip
    torch.testing.assert_close(one, grid)


def test_random_sign_directions_are_pm1_and_orthogonal():
    for n in (2, 10, 1000):
        u, v = random_sign_directions(n, torch.Generator().manual_seed(n))
        assert u.shape == v.shape == (n,)
        assert set(u.tolist()) <= {-1.0, 1.0} and set(v.tolist()) <= {-1.0, 1.0}
        assert float(u @ v) == 0.0
    # Odd n: v has exactly one 0, the rest +-1, still orthogonal.
    u, v = random_sign_directions(11, 3)
    assert set(u.tolist()) <= {-1.0, 1.0} and int((v == 0).sum()) == 1
    assert set(v[v != 0].tolist()) <= {-1.0, 1.0} and float(u @ v) == 0.0
    # Reproducible, seed-dependent, and scalable to unit norm.
    a1, b1 = random_sign_directions(50, torch.Generator().manual_seed(7))
    a2, b2 = random_sign_directions(50, torch.Generator().manual_seed(7))
    a3, _ = random_sign_directions(50, torch.Generator().manual_seed(8))
    assert torch.equal(a1, a2) and torch.equal(b1, b2) and not torch.equal(a1, a3)
    u, v = random_sign_directions(64, 0, scale=1 / 8)
    assert float(u.norm()) == pytest.approx(1.0) and float(v.norm()) == pytest.approx(1.0)


def test_random_gaussian_directions_are_orthonormal():
    u, v = random_gaussian_directions(40, torch.Generator().manual_seed(1))
    assert float(u.norm()) == pytest.approx(1.0, abs=1e-12)
    assert float(v.norm()) == pytest.approx(1.0, abs=1e-12)
    assert abs(float(u @ v)) < 1e-12
    u2, v2 = random_gaussian_directions(40, 1, scale=3.0)
    torch.testing.assert_close(u2, 3 * u)
    torch.testing.assert_close(v2, 3 * v)


def test_plane_through_three_points():
    g = torch.Generator().manual_seed(2)
    a, b, c = (torch.randn(9, generator=g, dtype=D) for _ in range(3))
    center, u, v, coords = plane_through(a, b, c)
    torch.testing.assert_close(center, (a + b) / 2)
    assert float(u @ v) == pytest.approx(0.0, abs=1e-14)
    assert float(u.norm()) == pytest.approx(1.0) and float(v.norm()) == pytest.approx(1.0)
    d = float((b - a).norm())
    torch.testing.assert_close(coords[0], torch.tensor([-d / 2, 0.0], dtype=D))
    torch.testing.assert_close(coords[1], torch.tensor([d / 2, 0.0], dtype=D))
    assert coords[2, 1] > 0
    # The three points lie in the plane and their coordinates reconstruct them.
    pts = torch.stack([a, b, c])
    xy, res = project(pts, center, u, v)
    torch.testing.assert_close(xy, coords)
    assert float(res.max()) < 1e-12
    torch.testing.assert_close(center + xy[:, :1] * u + xy[:, 1:] * v, pts)
    with pytest.raises(ConfigError, match="line"):
        plane_through(a, b, a + 0.5 * (b - a))
    _, _, _, coords_a = plane_through(a, b, c, origin="a")
    torch.testing.assert_close(coords_a[0], torch.zeros(2, dtype=D))


def test_projection_coordinates_and_residual():
    g = torch.Generator().manual_seed(4)
    n = 12
    center = torch.randn(n, generator=g, dtype=D)
    u, v = random_sign_directions(n, g)  # orthogonal but not unit
    coords = torch.randn(20, 2, generator=g, dtype=D)
    in_plane = center + coords[:, :1] * u + coords[:, 1:] * v
    xy, res = project(in_plane, center, u, v)
    torch.testing.assert_close(xy, coords)
    assert float(res.abs().max()) < 1e-12
    # Move each point off the plane along a unit normal by a known distance.
    normal = torch.randn(n, generator=g, dtype=D)
    basis = torch.stack([u, v], 1)
    normal = normal - basis @ torch.linalg.solve(basis.T @ basis, basis.T @ normal)
    normal = normal / normal.norm()
    dist = torch.rand(20, generator=g, dtype=D) * 3
    xy, res = project(in_plane + dist[:, None] * normal, center, u, v)
    torch.testing.assert_close(xy, coords)
    torch.testing.assert_close(res, dist)
    # A single point gives (2,) and a scalar.
    xy1, res1 = project(in_plane[0], center, u, v)
    assert xy1.shape == (2,) and res1.shape == ()


def test_farthest_from_line():
    a, b = torch.zeros(3, dtype=D), torch.tensor([1.0, 0.0, 0.0], dtype=D)
    pts = torch.tensor([[0.0, 0, 0], [0.5, 0.2, 0], [0.3, 0, -0.7], [1.0, 0, 0]], dtype=D)
    i, d = farthest_from_line(pts, a, b)
    assert i == 2 and d == pytest.approx(0.7)


def test_bad_arguments():
    with pytest.raises(ConfigError, match="n"):
        random_sign_directions(1)
    with pytest.raises(ConfigError, match="same length"):
        plane_grid(f, torch.zeros(3), torch.ones(3), torch.ones(2), [0.0], [0.0])
    with pytest.raises(ConfigError, match="independent"):
        project(torch.zeros(2, 3), torch.zeros(3), torch.ones(3), 2 * torch.ones(3))
