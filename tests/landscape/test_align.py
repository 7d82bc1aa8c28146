"""Label-switching alignment: permutations recovered, distances exact."""

import numpy as np
import pytest
import torch
from scipy.stats import entropy

from elbolab.errors import ConfigError
from elbolab.landscape import (
    align,
    apply_permutation,
    distance_matrix,
    invert_permutation,
    permute_params,
)

METRICS = ["hellinger", "skl"]


def _topics(k=8, v=60, seed=0):
    rng = np.random.default_rng(seed)
    beta = rng.dirichlet(np.full(v, 0.1), size=k)
    beta[:, :3] = 0.0  # words no topic uses: exercises the SKL floor
    return beta / beta.sum(1, keepdims=True)


@pytest.mark.parametrize("metric", METRICS)
def test_recovers_a_random_permutation(metric):
    rng = np.random.default_rng(1)
    a = _topics()
    q = rng.permutation(a.shape[0])
    # b: permuted copy, unnormalized (lambda-like: each row scaled), slightly perturbed.
    b = a[q] * rng.uniform(5, 50, size=(a.shape[0], 1))
    b = b * rng.uniform(0.99, 1.01, size=b.shape)
    perm, dist = align(a, b, metric=metric)
    assert perm.dtype == np.int64
    np.testing.assert_array_equal(perm, invert_permutation(q))
    aligned = apply_permutation(b, perm, axis=0)
    np.testing.assert_allclose(aligned / aligned.sum(1, keepdims=True), a, atol=1e-2)
    assert dist.shape == (a.shape[0],) and np.all(dist < 0.05)
    # Torch inputs give the same answer.
    perm_t, dist_t = align(torch.from_numpy(a), torch.from_numpy(b), metric=metric)
    np.testing.assert_array_equal(perm_t, perm)
    np.testing.assert_allclose(dist_t, dist)


@pytest.mark.parametrize("metric", METRICS)
def test_identical_inputs_give_identity_and_zero_distances(metric):
    a = _topics(seed=3)
    perm, dist = align(a, a.copy(), metric=metric)
    np.testing.assert_array_equal(perm, np.arange(a.shape[0]))
    assert np.all(dist == 0.0)
    # A permuted exact copy: zero distances as well.
    q = np.random.default_rng(4).permutation(a.shape[0])
    perm, dist = align(a, a[q], metric=metric)
    np.testing.assert_array_equal(a[q][perm], a)
    assert np.all(dist == 0.0)


def test_distance_values_against_closed_forms():
    p = np.array([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]])
    q = np.array([[0.2, 0.2, 0.6], [0.3, 0.3, 0.4]])
    dh = distance_matrix(p, q, "hellinger")
    for i in range(2):
        for j in range(2):
            want = np.sqrt(0.5 * np.sum((np.sqrt(p[i]) - np.sqrt(q[j])) ** 2))
            assert dh[i, j] == pytest.approx(want, abs=1e-12)
    ds = distance_matrix(p, 10 * q, "skl")  # rows are normalized first
    for i in range(2):
        for j in range(2):
            want = entropy(p[i], q[j]) + entropy(q[j], p[i])
            assert ds[i, j] == pytest.approx(want, rel=1e-9)
    # Symmetric metrics: D(a, b) = D(b, a)^T.
    np.testing.assert_allclose(distance_matrix(q, p, "skl"), ds.T, rtol=1e-9)


def test_apply_permutation_helpers():
    perm = np.array([2, 0, 1])
    x = np.arange(12.0).reshape(4, 3)
    np.testing.assert_array_equal(apply_permutation(x, perm, axis=1), x[:, perm])
    xt = torch.arange(12.0).reshape(3, 4)
    assert torch.equal(apply_permutation(xt, perm, axis=0), xt[perm])
    inv = invert_permutation(perm)
    np.testing.assert_array_equal(x[:, perm][:, inv], x)
    params = {"lam": np.arange(6.0).reshape(3, 2), "gamma": np.arange(6.0).reshape(2, 3), "k": 7}
    out = permute_params(params, perm, {"lam": 0, "gamma": 1})
    np.testing.assert_array_equal(out["lam"], params["lam"][perm])
    np.testing.assert_array_equal(out["gamma"], params["gamma"][:, perm])
    assert out["k"] == 7


def test_errors():
    a = _topics(k=3, v=5)
    with pytest.raises(ConfigError, match="metric"):
        align(a, a, metric="cosine")
    with pytest.raises(ConfigError, match="negative"):
        align(a, -a)
    with pytest.raises(ConfigError, match="same shape"):
        align(a, a[:2])
    with pytest.raises(ConfigError, match="sum to zero"):
        align(a, np.vstack([a[:2], np.zeros(5)]))
    with pytest.raises(ConfigError, match="permutation"):
        apply_permutation(a, np.array([0, 0, 1]))
