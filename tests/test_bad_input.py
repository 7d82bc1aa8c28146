"""One table of bad or unusual input across the public API.

Every row is (name, call, expected): ``call(tmp)`` makes the call with the bad input
(``tmp`` a scratch folder), and the expectation is either

* ``raises(Class, regex)``: exactly that elbolab error class (not a subclass, not a
  torch/numpy error that happens to share a base class) whose message matches regex,
  which names the argument; or
* ``handled(check)``: the call succeeds and ``check(result)`` asserts the correct
  result (e.g. a batch of d independent Normals gives the same ELBO as the diagonal
  prior; ``np.int64(5)`` behaves as 5), with no NaN and no impossible value.

ConfigError and DataError derive from ValueError and NumericalError from
FloatingPointError (for callers that catch those), so ``pytest.raises(ValueError)``
would also pass on an internal numpy/torch ValueError: the table therefore compares
``type(err) is Class``.
"""

from __future__ import annotations

import functools
import gzip
import math
import re
import struct

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch.distributions import Independent, Normal

from elbolab import checks
from elbolab.data import Corpus, lda_corpus, read_amat, read_idx, read_ldac
from elbolab.diagnostics import (
    active_units,
    collapse_curve,
    collapsed_fraction,
    kl_per_dimension,
    log_likelihood,
    surgery,
    surgery_model,
)
from elbolab.distributions import DiagonalNormal
from elbolab.errors import ConfigError, DataError, ElbolabError, NumericalError
from elbolab.landscape import (
    LDAObjective,
    Optimizer,
    align,
    bezier,
    dense_points,
    linear_path,
    neb,
    plane_grid,
    plane_through,
)
from elbolab.models.lda import LDA
from elbolab.models.linear_vae import LinearVAE, fit_linear_vae
from elbolab.models.ppca import PPCA, marginal_log_prob
from elbolab.models.trainer import CHECKPOINT_NAME, train
from elbolab.models.vae import VAE
from elbolab.objectives import elbo, elbo_loss, iwae
from elbolab.objectives.forward_kl import elbo_amortized, forward_kl, iwbo_amortized

D, LATENT = 6, 2


def raises(cls, pattern):
    return ("raises", cls, pattern)


def handled(check):
    return ("handled", check)


# ----------------------------------------------------------------------- tiny fixtures


def _x(n=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, D, generator=g) < 0.5).float()


def _nan_x():
    x = _x()
    x[1, 2] = math.nan
    return x


def _vae(seed=0, **kw):
    return VAE(D, LATENT, hidden=(4,), generator=seed, **kw)


class _BatchedPriorVAE(VAE):
    """p(z) written the usual PyTorch way: a batch of d independent Normals."""

    def prior(self):
        zeros = self._anchor.new_zeros(self.latent_dim)
        return Normal(zeros, torch.ones_like(zeros))


class _WrongPriorVAE(VAE):
    def prior(self):
        zeros = self._anchor.new_zeros(3, self.latent_dim)
        return Normal(zeros, torch.ones_like(zeros))


class _NaNEncoderVAE(VAE):
    def encode(self, x):
        q = super().encode(x)
        return DiagonalNormal(q.loc * math.nan, q.scale)


def _pair(cls, latent=LATENT):
    """(standard VAE, cls) with the same weights."""
    a = VAE(D, latent, hidden=(4,), generator=0)
    b = cls(D, latent, hidden=(4,), generator=0)
    b.load_state_dict(a.state_dict())
    return a, b


def _same(a, b, tol=1e-6):
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    assert torch.isfinite(a).all() and torch.allclose(a, b, rtol=tol, atol=tol), (a, b)


@functools.cache
def _small_corpus():
    return lda_corpus(8, 10, 2, doc_length=12, seed=0)[0]


def _counts():
    return _small_corpus().to_dense()


@functools.cache
def _lda_fit(k=2):
    return LDA(k, max_iter=3, seed=0).fit(_small_corpus())


def _objective(**kw):
    return LDAObjective(_small_corpus(), 2, 0.5, 0.1, **kw)


def _write(tmp, name, data: bytes):
    p = tmp / name
    p.write_bytes(data)
    return p


def _ppca_x():
    return np.random.default_rng(0).normal(size=(20, 4))


def _q_fn(x):
    return DiagonalNormal(x[:, :2] * 0.1, torch.ones(x.shape[0], 2))


def _log_joint(z, x):
    return Normal(0.0, 1.0).log_prob(z).sum(-1) + Normal(0.0, 1.0).log_prob(x).sum(-1)


def _simulator(gen, n):
    z = torch.randn(n, 2, generator=gen)
    return z, torch.cat([z, z], 1)


def _nan_simulator(gen, n):
    z, x = _simulator(gen, n)
    x[0, 0] = math.nan
    return z, x


def _train(model, data, valid=None, **kw):
    args = {"generator": 0, "epochs": 1, "batch_size": 5, "progress": False, **kw}
    return train(model, elbo_loss, data, valid, **args)


def _corrupt_checkpoint(tmp):
    (tmp / "ck").mkdir()
    (tmp / "ck" / CHECKPOINT_NAME).write_bytes(b"\x80\x02garbage not a torch file")
    return _train(_vae(), _x(10), checkpoint=tmp / "ck")


def _foreign_checkpoint(tmp):
    _train(VAE(D, 3, hidden=(4,), generator=0), _x(10), checkpoint=tmp / "ck")
    return _train(_vae(), _x(10), checkpoint=tmp / "ck")


def _nan_valid_loss():
    def loss(model, x, gen):
        value = elbo_loss(model, x, gen)
        return value if model.training else value * math.nan

    return train(_vae(), loss, _x(10), _x(5), generator=0, epochs=1, progress=False)


def _seeds_equal(result):
    a, b = result
    assert np.array_equal(a[0].to_dense(), b[0].to_dense())


def _posteriors(n=12, d=LATENT):
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, d, generator=g, dtype=torch.float64), torch.rand(
        n, d, generator=g, dtype=torch.float64
    ) + 0.3


def _surgery_batched_vs_diagonal():
    mu, std = _posteriors()
    d = mu.shape[1]
    batched = Normal(torch.zeros(d, dtype=torch.float64), torch.ones(d, dtype=torch.float64))
    return (
        surgery(mu, std, batched, generator=3, progress=False),
        surgery(mu, std, Independent(batched, 1), generator=3, progress=False),
    )


def _check_surgery_same(pair):
    a, b = pair
    assert a["kl_analytic"] and b["kl_analytic"]
    for key in ("average_kl", "mutual_info", "marginal_kl", "average_kl_mc"):
        _same(a[key], b[key], 1e-10)


def _elbo_pair(cls, x, **kw):
    a, b = _pair(cls)
    return elbo(a, x, generator=7, **kw), elbo(b, x, generator=7, **kw)


def _check_elbo_pair(pair):
    a, b = pair
    _same(a["elbo_per_datum"], b["elbo_per_datum"])
    assert a["elbo_per_datum"].shape == b["elbo_per_datum"].shape


def _quadratic(x):
    return -(x * x).sum(-1)


def _check_large_counts(c):
    assert c.n_tokens == 2**52
    assert (c.doc_lengths > 0).all()


def _check_two_epochs(h):
    assert h["epochs_run"] == 2
    assert h["best_epoch"] >= 0


def _check_active_units(r):
    assert r["threshold"] == 0.5
    assert r["count"] == 2


def _check_swapped(r):
    assert list(r[0]) == [1, 0]


def _check_linear_path(p):
    assert p.shape == (5, 3)
    assert torch.isfinite(p).all()


def _check_bezier(r):
    assert r.pivots.shape[1] == 2
    assert math.isfinite(r.barrier)


def _check_objective_pair(r):
    _same(*r, 0)
    # The ELBO bounds log p(words) <= 0 of discrete data.
    assert float(r[0]) < 0, float(r[0])


def _elbo_numpy_layout(layout):
    """elbo on x given as a numpy array in ``layout`` (negative strides, big-endian...)
    and on the same values as an ordinary tensor."""
    x = _x()
    ordinary = x.flip(0)
    return (
        elbo(_vae(), layout(x.numpy()), generator=7),
        elbo(_vae(), ordinary, generator=7),
    )


def _lda_positive_is_impossible(m):
    assert math.isfinite(m.elbo_) and m.elbo_ <= 0


# -------------------------------------------------------------------------------- table

CASES = [
    # ---------------------------------------------------------------- data: Corpus
    (
        "corpus/negative count",
        lambda t: Corpus(np.array([[1, -1]]), ["a", "b"]),
        raises(DataError, "counts.*negative"),
    ),
    (
        "corpus/count 1e30 beyond exact range",
        lambda t: Corpus(np.array([[1e30, 1.0]]), ["a", "b"]),
        raises(DataError, r"counts.*2\*\*53"),
    ),
    (
        "corpus/uint64 count beyond int64",
        lambda t: Corpus(np.array([[2**63 + 5, 1]], dtype=np.uint64), ["a", "b"]),
        raises(DataError, r"counts.*2\*\*53"),
    ),
    (
        "corpus/token total overflows",
        lambda t: Corpus(np.full((2, 2), 2**52, dtype=np.int64), ["a", "b"]),
        raises(DataError, r"counts sum to more than 2\*\*53"),
    ),
    (
        "corpus/large valid counts stay positive",
        lambda t: Corpus(np.array([[2**51, 2**51]], dtype=np.int64), ["a", "b"]),
        handled(_check_large_counts),
    ),
    (
        "corpus/complex counts",
        lambda t: Corpus(np.ones((1, 2), complex), ["a", "b"]),
        raises(DataError, "counts.*integer dtype"),
    ),
    ("corpus/vocab None", lambda t: Corpus(np.ones((1, 2), int), None), raises(DataError, "vocab")),
    (
        "corpus/fraction as str",
        lambda t: _small_corpus().train_test_split("0.5"),
        raises(ConfigError, "test_fraction"),
    ),
    (
        "corpus/fraction 1.5",
        lambda t: _small_corpus().train_test_split(1.5),
        raises(ConfigError, "test_fraction"),
    ),
    (
        "corpus/seed float",
        lambda t: _small_corpus().train_test_split(0.5, seed=2.5),
        raises(ConfigError, "seed"),
    ),
    (
        "corpus/seed negative",
        lambda t: _small_corpus().completion_split(0.5, seed=-1),
        raises(ConfigError, "seed.*>= 0"),
    ),
    (
        "corpus/seed str",
        lambda t: _small_corpus().completion_split(0.5, seed="abc"),
        raises(ConfigError, "seed"),
    ),
    (
        "corpus/np.int64 seed is an int",
        lambda t: (
            _small_corpus().train_test_split(0.25, seed=np.int64(5)),
            _small_corpus().train_test_split(0.25, seed=5),
        ),
        handled(_seeds_equal),
    ),
    (
        "corpus/np.float64 fraction is a float",
        lambda t: (
            _small_corpus().completion_split(np.float64(0.5), seed=1),
            _small_corpus().completion_split(0.5, seed=1),
        ),
        handled(_seeds_equal),
    ),
    (
        "corpus/float doc indices",
        lambda t: _small_corpus().subset([0.0, 1.0]),
        raises(ConfigError, "doc_indices"),
    ),
    # ---------------------------------------------------------------- data: loaders
    ("ldac/path None", lambda t: read_ldac(None), raises(ConfigError, "dat_path")),
    (
        "ldac/malformed pair",
        lambda t: read_ldac(_write(t, "a.dat", b"1 3-2\n")),
        raises(DataError, r"a\.dat:1: .*pair"),
    ),
    (
        "ldac/zero count",
        lambda t: read_ldac(_write(t, "b.dat", b"1 0:1\n1 2:0\n")),
        raises(DataError, r"b\.dat:2: .*count"),
    ),
    (
        "idx/truncated",
        lambda t: read_idx(_write(t, "x.idx", struct.pack(">IIII", 0x803, 2, 2, 2) + b"\x00" * 5)),
        raises(DataError, r"x\.idx: .*expected"),
    ),
    (
        "idx/magic as str",
        lambda t: read_idx(_write(t, "y.idx", b""), magic="0x803"),
        raises(ConfigError, "magic"),
    ),
    (
        "amat/short line",
        lambda t: read_amat(_write(t, "m.amat", gzip.compress(b"0 1 0\n"))),
        raises(DataError, r"m\.amat:1: expected 784"),
    ),
    # ---------------------------------------------------------------- data: synthetic
    ("lda_corpus/n_docs True", lambda t: lda_corpus(True, 4, 2), raises(ConfigError, "n_docs")),
    ("lda_corpus/seed str", lambda t: lda_corpus(3, 4, 2, seed="x"), raises(ConfigError, "seed")),
    (
        "lda_corpus/complex alpha",
        lambda t: lda_corpus(3, 4, 2, alpha=1 + 1j),
        raises(ConfigError, "alpha"),
    ),
    (
        "lda_corpus/np.int64 sizes",
        lambda t: (
            lda_corpus(np.int64(3), np.int64(4), np.int64(2), seed=np.int64(1)),
            lda_corpus(3, 4, 2, seed=1),
        ),
        handled(_seeds_equal),
    ),
    # ---------------------------------------------------------------- models: LDA
    ("lda/fit None", lambda t: LDA(2).fit(None), raises(DataError, "X must be a Corpus")),
    (
        "lda/fit counts 1e30",
        lambda t: LDA(2, max_iter=2).fit(np.array([[1e30, 1.0], [2.0, 3.0]])),
        raises(DataError, r"X\[0, 0\] = 1e\+30 is above 2\*\*53"),
    ),
    (
        "lda/fit complex",
        lambda t: LDA(2).fit(np.ones((2, 3), complex)),
        raises(DataError, "X must hold"),
    ),
    ("lda/fit 1-D", lambda t: LDA(2).fit(np.ones(3)), raises(DataError, "X must be a 2-D")),
    ("lda/eta 1e300", lambda t: LDA(2, eta=1e300).fit(_counts()), raises(ConfigError, "eta")),
    ("lda/alpha str", lambda t: LDA(2, alpha="0.1").fit(_counts()), raises(ConfigError, "alpha")),
    (
        "lda/max_iter float",
        lambda t: LDA(2, max_iter=2.0).fit(_counts()),
        raises(ConfigError, "max_iter"),
    ),
    ("lda/tol str", lambda t: LDA(2, tol="small").fit(_counts()), raises(ConfigError, "tol")),
    ("lda/seed negative", lambda t: LDA(2, seed=-1).fit(_counts()), raises(ConfigError, "seed")),
    (
        "lda/huge valid counts: ELBO <= 0",
        lambda t: LDA(2, max_iter=3).fit(_counts() * 2**40),
        handled(_lda_positive_is_impossible),
    ),
    (
        "lda/np.int64 n_topics",
        lambda t: (LDA(np.int64(2), max_iter=3).fit(_counts()), LDA(2, max_iter=3).fit(_counts())),
        handled(lambda r: _same(r[0].elbo_, r[1].elbo_, 0)),
    ),
    (
        "lda/merged different K",
        lambda t: LDA.merged([_lda_fit(2), _lda_fit(3)]),
        raises(ConfigError, r"fits\[1\] has n_topics 3"),
    ),
    ("lda/merged empty", lambda t: LDA.merged([]), raises(ConfigError, "fits")),
    (
        "lda/transform other vocabulary",
        lambda t: _lda_fit(2).transform(np.ones((2, 4))),
        raises(DataError, "words"),
    ),
    # ---------------------------------------------------------------- models: PPCA
    (
        "ppca/NaN data",
        lambda t: PPCA(2).fit(np.where(np.eye(4, 4) > 0, np.nan, 1.0)),
        raises(DataError, "X contains NaN"),
    ),
    ("ppca/complex data", lambda t: PPCA(2).fit(_ppca_x() + 1j), raises(DataError, "X must hold")),
    (
        "ppca/np.int64 n_components",
        lambda t: (PPCA(np.int64(2)).fit(_ppca_x()), PPCA(2).fit(_ppca_x())),
        handled(lambda r: _same(r[0].sigma2_, r[1].sigma2_, 0)),
    ),
    (
        "ppca/marginal_log_prob wrong width",
        lambda t: marginal_log_prob(torch.zeros(3, 5), torch.zeros(4), torch.ones(4, 2), 1.0),
        raises(DataError, "x has 5 features"),
    ),
    (
        "ppca/marginal_log_prob inf",
        lambda t: marginal_log_prob(
            torch.full((3, 4), math.inf), torch.zeros(4), torch.ones(4, 2), 1.0
        ),
        raises(DataError, "x contains NaN"),
    ),
    # ---------------------------------------------------------------- models: LinearVAE
    (
        "linear_vae/NaN data analytic ELBO",
        lambda t: LinearVAE(4, 2).elbo_analytic(
            torch.tensor([[0.0, math.nan, 0.0, 0.0]], dtype=torch.float64)
        ),
        raises(DataError, "x contains NaN"),
    ),
    (
        "linear_vae/inf data log_prob",
        lambda t: LinearVAE(4, 2).log_prob(torch.full((2, 4), math.inf, dtype=torch.float64)),
        raises(DataError, "x contains NaN"),
    ),
    (
        "linear_vae/wrong width",
        lambda t: LinearVAE(4, 2).elbo_analytic(torch.zeros(2, 5)),
        raises(DataError, "x has 5 columns"),
    ),
    ("linear_vae/data_dim True", lambda t: LinearVAE(True, 1), raises(ConfigError, "data_dim")),
    (
        "fit_linear_vae/huge lr",
        lambda t: fit_linear_vae(_ppca_x(), 2, 20, 1e6, 0),
        raises(NumericalError, "lr=1000000"),
    ),
    (
        "fit_linear_vae/huge lr stochastic",
        lambda t: fit_linear_vae(_ppca_x(), 2, 20, 1e6, 0, analytic=False),
        raises(NumericalError, "lower lr"),
    ),
    (
        "fit_linear_vae/tiny sigma2",
        lambda t: fit_linear_vae(_ppca_x(), 2, 20, 0.1, 0, sigma2=1e-300),
        raises(NumericalError, "sigma2=1e-300"),
    ),
    (
        "fit_linear_vae/float16",
        lambda t: fit_linear_vae(_ppca_x() * 300, 2, 20, 0.1, 0, dtype=torch.float16),
        raises(NumericalError, "float16"),
    ),
    (
        "fit_linear_vae/float16 unit scale",
        lambda t: fit_linear_vae(_ppca_x(), 2, 20, 0.1, 0, dtype=torch.float16),
        raises(NumericalError, "float16"),
    ),
    (
        "fit_linear_vae/complex x",
        lambda t: fit_linear_vae(_ppca_x() + 0j, 2, 5, 0.1, 0),
        raises(DataError, "x must hold real"),
    ),
    (
        "fit_linear_vae/ragged nested list",
        lambda t: fit_linear_vae([[0.0, 1.0], [1.0]], 1, 5, 0.1, 0),
        raises(DataError, "x must be a rectangular array"),
    ),
    (
        "fit_linear_vae/complex x is DataError as in elbo",
        lambda t: fit_linear_vae(torch.ones(4, 3, dtype=torch.complex64), 1, 5, 0.1, 0),
        raises(DataError, "x must hold real"),
    ),
    (
        "fit_linear_vae/np.int64 settings",
        lambda t: (
            fit_linear_vae(_ppca_x(), np.int64(2), np.int64(20), np.float64(0.05), np.int64(0)),
            fit_linear_vae(_ppca_x(), 2, 20, 0.05, 0),
        ),
        handled(
            lambda r: _same(
                r[0][1]["elbo_analytic_per_datum"], r[1][1]["elbo_analytic_per_datum"], 0
            )
        ),
    ),
    # ---------------------------------------------------------------- models: VAE, train
    ("vae/hidden int", lambda t: VAE(D, 2, hidden=5), raises(ConfigError, "hidden")),
    (
        "vae/complex sigma2",
        lambda t: VAE(D, 2, likelihood="gaussian", sigma2=1j),
        raises(ConfigError, "sigma2"),
    ),
    (
        "vae/np.int64 sizes",
        lambda t: (VAE(np.int64(D), np.int64(2), hidden=(np.int64(4),)), VAE(D, 2, hidden=(4,))),
        handled(lambda r: _same(r[0].encoder[0].weight, r[1].encoder[0].weight, 0)),
    ),
    (
        "train/wrong width",
        lambda t: _train(_vae(), torch.zeros(10, D + 1)),
        raises(DataError, "train_data has 7 columns"),
    ),
    (
        "train/valid wrong width",
        lambda t: _train(_vae(), _x(10), torch.zeros(4, D - 1)),
        raises(DataError, "valid_data has 5 columns"),
    ),
    (
        "train/NaN valid data",
        lambda t: _train(_vae(), _x(10), _nan_x()),
        raises(DataError, "valid_data contains NaN"),
    ),
    (
        "train/inf train data",
        lambda t: _train(_vae(), _x(10) / 0.0),
        raises(DataError, "train_data contains NaN"),
    ),
    (
        "train/NaN validation loss",
        lambda t: _nan_valid_loss(),
        raises(NumericalError, "validation loss"),
    ),
    (
        "train/corrupt checkpoint",
        _corrupt_checkpoint,
        raises(DataError, f"{CHECKPOINT_NAME}: cannot read the checkpoint"),
    ),
    (
        "train/foreign checkpoint",
        _foreign_checkpoint,
        raises(DataError, "checkpoint does not fit this model"),
    ),
    (
        "train/np.int64 epochs",
        lambda t: _train(_vae(), _x(10), epochs=np.int64(2), batch_size=np.int64(5)),
        handled(_check_two_epochs),
    ),
    # ---------------------------------------------------------------- objectives: elbo
    (
        "elbo/batched Normal prior = diagonal",
        lambda t: _elbo_pair(_BatchedPriorVAE, _x()),
        handled(_check_elbo_pair),
    ),
    (
        "elbo/batched Normal prior, B == d",
        lambda t: _elbo_pair(_BatchedPriorVAE, _x(LATENT)),
        handled(_check_elbo_pair),
    ),
    (
        "elbo/batched prior, Monte Carlo KL",
        lambda t: _elbo_pair(_BatchedPriorVAE, _x(), analytic_kl=False),
        handled(_check_elbo_pair),
    ),
    (
        "elbo/prior of the wrong batch shape",
        lambda t: elbo(_pair(_WrongPriorVAE)[1], _x(), 0),
        raises(ConfigError, r"model\.prior\(\).*batch \(3, 2\)"),
    ),
    (
        "elbo/wrong width",
        lambda t: elbo(_vae(), torch.zeros(4, D + 2), 0),
        raises(DataError, "x has 8 columns"),
    ),
    ("elbo/NaN data", lambda t: elbo(_vae(), _nan_x(), 0), raises(DataError, "x contains NaN")),
    (
        "elbo/complex data",
        lambda t: elbo(_vae(), _x().to(torch.complex64), 0),
        raises(DataError, "x must hold real"),
    ),
    (
        "elbo/negative-stride array x[::-1]",
        lambda t: _elbo_numpy_layout(lambda a: a[::-1]),
        handled(_check_elbo_pair),
    ),
    (
        "elbo/big-endian array",
        lambda t: _elbo_numpy_layout(lambda a: np.ascontiguousarray(a[::-1]).astype(">f8")),
        handled(_check_elbo_pair),
    ),
    (
        "elbo/ragged nested list",
        lambda t: elbo(_vae(), [[0.0] * D, [0.0] * (D - 1)], 0),
        raises(ConfigError, "x must be a rectangular array"),
    ),
    (
        "elbo/beta 10**400 beyond float",
        lambda t: elbo(_vae(), _x(), 0, beta=10**400),
        raises(ConfigError, "beta must be a finite real number.*too large for a float"),
    ),
    (
        "elbo/encoder returns NaN",
        lambda t: elbo(_pair(_NaNEncoderVAE)[1], _x(), 0),
        raises(NumericalError, "elbo: the (reconstruction|kl) term"),
    ),
    ("elbo/beta complex", lambda t: elbo(_vae(), _x(), 0, beta=1j), raises(ConfigError, "beta")),
    (
        "elbo/np.int64 n_samples and seed",
        lambda t: (
            elbo(_vae(), _x(), np.int64(4), n_samples=np.int64(3)),
            elbo(_vae(), _x(), 4, n_samples=3),
        ),
        handled(_check_elbo_pair),
    ),
    # ---------------------------------------------------------------- objectives: iwae
    (
        "iwae/batched Normal prior = diagonal",
        lambda t: [
            iwae(m, _x(), 4, generator=2)["iwae_per_datum"] for m in _pair(_BatchedPriorVAE)
        ],
        handled(lambda r: _same(*r)),
    ),
    (
        "iwae/wrong width",
        lambda t: iwae(_vae(), torch.zeros(3, 2), 4, 0),
        raises(DataError, "x has 2 columns"),
    ),
    ("iwae/NaN data", lambda t: iwae(_vae(), _nan_x(), 4, 0), raises(DataError, "x contains")),
    (
        "iwae/DReG, encoder returns NaN",
        lambda t: iwae(_pair(_NaNEncoderVAE)[1], _x(), 4, 0, dreg=True),
        raises(NumericalError, "iwae: the log-weight term"),
    ),
    ("iwae/k float", lambda t: iwae(_vae(), _x(), 2.0, 0), raises(ConfigError, "k must be")),
    (
        "iwae/np.int64 k",
        lambda t: [iwae(_vae(), _x(), k, 3)["iwae"] for k in (np.int64(4), 4)],
        handled(lambda r: _same(*r, 0)),
    ),
    # ---------------------------------------------------------------- objectives: forward KL
    (
        "forward_kl/simulator gives NaN",
        lambda t: forward_kl(_q_fn, _nan_simulator, 4, 0),
        raises(DataError, "simulated x contains NaN"),
    ),
    (
        "forward_kl/q_fn gives NaN",
        lambda t: forward_kl(
            lambda x: DiagonalNormal(x[:, :2] * math.nan, torch.ones(x.shape[0], 2)),
            _simulator,
            4,
            0,
        ),
        raises(NumericalError, "forward_kl: log q"),
    ),
    (
        "forward_kl/np.int64 n",
        lambda t: [forward_kl(_q_fn, _simulator, n, 1)["loss"] for n in (np.int64(6), 6)],
        handled(lambda r: _same(*r, 0)),
    ),
    (
        "elbo_amortized/NaN x",
        lambda t: elbo_amortized(_q_fn, _log_joint, _nan_x(), 0),
        raises(DataError, "elbo_amortized: x contains NaN"),
    ),
    (
        "iwbo_amortized/k float",
        lambda t: iwbo_amortized(_q_fn, _log_joint, _x(), 2.5, 0),
        raises(ConfigError, "k must be"),
    ),
    (
        "iwbo_amortized/log_joint NaN",
        lambda t: iwbo_amortized(_q_fn, lambda z, x: _log_joint(z, x) * math.nan, _x(), 3, 0),
        raises(NumericalError, "iwbo_amortized"),
    ),
    # ---------------------------------------------------------------- diagnostics
    (
        "surgery/batched Normal prior = diagonal",
        lambda t: _surgery_batched_vs_diagonal(),
        handled(_check_surgery_same),
    ),
    (
        "surgery/prior of the wrong shape",
        lambda t: surgery(
            *_posteriors(), Normal(torch.zeros(3), torch.ones(3)), generator=0, progress=False
        ),
        raises(ConfigError, r"prior must be a distribution over R\^2"),
    ),
    (
        "surgery/complex mu",
        lambda t: surgery(_posteriors()[0].to(torch.complex128), _posteriors()[1], progress=False),
        raises(ConfigError, "mu must hold real"),
    ),
    (
        "surgery/np.int64 n_samples",
        lambda t: [
            surgery(*_posteriors(), generator=1, n_samples=s, progress=False)["mutual_info"]
            for s in (np.int64(2), 2)
        ],
        handled(lambda r: _same(*r, 0)),
    ),
    (
        "surgery_model/batched Normal prior",
        lambda t: [
            surgery_model(m, _x(8), generator=5, progress=False)["average_elbo"]
            for m in _pair(_BatchedPriorVAE)
        ],
        handled(lambda r: _same(*r)),
    ),
    (
        "surgery_model/wrong width",
        lambda t: surgery_model(_vae(), torch.zeros(4, 3), 0, progress=False),
        raises(DataError, "x has 3 columns"),
    ),
    (
        "surgery_model/encoder returns NaN",
        lambda t: surgery_model(_pair(_NaNEncoderVAE)[1], _x(), 0, progress=False),
        raises(NumericalError, "surgery_model: the encoder's mean"),
    ),
    (
        "log_likelihood/batched Normal prior",
        lambda t: [
            log_likelihood(m, _x(), k=8, generator=1, progress=False)["per_datum"]
            for m in _pair(_BatchedPriorVAE)
        ],
        handled(lambda r: _same(*r)),
    ),
    (
        "log_likelihood/wrong width",
        lambda t: log_likelihood(_vae(), torch.zeros(2, 9), k=4, progress=False),
        raises(DataError, "x has 9 columns"),
    ),
    (
        "log_likelihood/NaN data",
        lambda t: log_likelihood(_vae(), _nan_x(), k=4, progress=False),
        raises(DataError, "x contains NaN"),
    ),
    (
        "log_likelihood/encoder returns NaN",
        lambda t: log_likelihood(_pair(_NaNEncoderVAE)[1], _x(), k=4, generator=0, progress=False),
        raises(NumericalError, "log_likelihood: a log weight"),
    ),
    (
        "log_likelihood/k np.int64",
        lambda t: [
            log_likelihood(_vae(), _x(), k=k, generator=1, progress=False)["log_likelihood"]
            for k in (np.int64(6), 6)
        ],
        handled(lambda r: _same(*r, 0)),
    ),
    (
        "kl_per_dimension/inf mu",
        lambda t: kl_per_dimension(torch.full((2, 2), math.inf), torch.ones(2, 2)),
        raises(ConfigError, "mu has infinite"),
    ),
    (
        "active_units/np.float64 threshold",
        lambda t: active_units(_posteriors()[0], np.float64(0.5)),
        handled(_check_active_units),
    ),
    (
        "collapsed_fraction/delta str",
        lambda t: collapsed_fraction(torch.ones(3, 2), 0.1, "0.1"),
        raises(ConfigError, "delta"),
    ),
    (
        "collapse_curve/epsilons str",
        lambda t: collapse_curve(torch.ones(3, 2), ["a"]),
        raises(ConfigError, "epsilons"),
    ),
    # ---------------------------------------------------------------- landscape
    (
        "align/complex",
        lambda t: align(np.ones((2, 3)) + 1j, np.ones((2, 3))),
        raises(ConfigError, "align: a must hold real"),
    ),
    (
        "align/floor str",
        lambda t: align(np.eye(2) + 0.1, np.eye(2) + 0.1, "skl", "tiny"),
        raises(ConfigError, "floor"),
    ),
    (
        "align/np.float64 floor",
        lambda t: align(np.eye(2) + 0.1, np.eye(2)[::-1] + 0.1, "skl", np.float64(1e-9)),
        handled(_check_swapped),
    ),
    (
        "linear_path/np.int64 pivots",
        lambda t: linear_path(torch.zeros(3), torch.ones(3), np.int64(5)),
        handled(_check_linear_path),
    ),
    (
        "linear_path/np.flip endpoint",
        lambda t: (
            linear_path(np.flip(np.arange(3.0)), torch.zeros(3, dtype=torch.float64), 3),
            linear_path(torch.tensor([2.0, 1.0, 0.0]), torch.zeros(3, dtype=torch.float64), 3),
        ),
        handled(lambda r: _same(*r, 0)),
    ),
    (
        "linear_path/complex endpoint",
        lambda t: linear_path(torch.zeros(3) + 1j, torch.ones(3), 3),
        raises(ConfigError, "a must hold real"),
    ),
    (
        "linear_path/n_pivots float",
        lambda t: linear_path(torch.zeros(2), torch.ones(2), 4.0),
        raises(ConfigError, "n_pivots"),
    ),
    ("dense_points/str pivots", lambda t: dense_points(["a", "b"]), raises(ConfigError, "pivots")),
    (
        "neb/f not callable",
        lambda t: neb(3, torch.zeros(2), torch.ones(2), 3, steps=1),
        raises(ConfigError, "f must be a function"),
    ),
    (
        "neb/lr complex",
        lambda t: neb(_quadratic, torch.zeros(2), torch.ones(2), 3, optimizer=Optimizer(lr=1j)),
        raises(ConfigError, "lr"),
    ),
    (
        "bezier/degree float",
        lambda t: bezier(_quadratic, torch.zeros(2), torch.ones(2), 2.0),
        raises(ConfigError, "degree"),
    ),
    (
        "bezier/np.int64 settings",
        lambda t: bezier(
            _quadratic,
            torch.zeros(2),
            torch.ones(2),
            np.int64(2),
            steps=np.int64(3),
            n_t=np.int64(4),
            generator=np.int64(0),
            show_progress=False,
        ),
        handled(_check_bezier),
    ),
    (
        "plane_grid/NaN in xs",
        lambda t: plane_grid(
            _quadratic,
            torch.zeros(2),
            torch.tensor([1.0, 0]),
            torch.tensor([0, 1.0]),
            [0.0, math.nan],
            [0.0],
        ),
        raises(ConfigError, "xs"),
    ),
    (
        "plane_through/complex",
        lambda t: plane_through(torch.zeros(2) + 1j, torch.ones(2), torch.tensor([0.0, 1.0])),
        raises(ConfigError, "a must hold real"),
    ),
    (
        "lda_objective/log-lambda beyond float range",
        lambda t: _objective()(torch.full((_objective().n,), 800.0, dtype=torch.float64)),
        raises(NumericalError, "LDAObjective: the ELBO is NaN.* at row.*of x"),
    ),
    (
        "lda_objective/log-lambda at the edge",
        lambda t: _objective(mode="full")(
            torch.cat(
                [torch.full((20,), -745.0), torch.zeros(_objective(mode="full").n - 20)]
            ).double()
        ),
        raises(NumericalError, "of x"),
    ),
    (
        "lda_objective/NaN x",
        lambda t: _objective()(torch.full((_objective().n,), math.nan)),
        raises(ConfigError, "x has NaN"),
    ),
    (
        "lda_objective/alpha 1e300",
        lambda t: LDAObjective(_small_corpus(), 2, 1e300, 0.1),
        raises(ConfigError, "alpha"),
    ),
    (
        "lda_objective/corpus None",
        lambda t: LDAObjective(None, 2, 0.5, 0.1),
        raises(DataError, "corpus_or_csr must be a Corpus"),
    ),
    (
        "lda_objective/np.int64 K",
        lambda t: [
            LDAObjective(_small_corpus(), k, 0.5, 0.1)(torch.zeros(20, dtype=torch.float64))
            for k in (np.int64(2), 2)
        ],
        handled(_check_objective_pair),
    ),
    (
        "lda_objective/sparse complex corpus",
        lambda t: LDAObjective(sp.csr_matrix(np.ones((2, 3), complex)), 2, 0.5, 0.1),
        raises(DataError, "corpus_or_csr must hold integer counts"),
    ),
]


def test_enough_cases_and_unique_names():
    names = [c[0] for c in CASES]
    assert len(names) >= 60 and len(set(names)) == len(names)


def test_error_classes_are_distinct():
    # The classes are siblings under ElbolabError: none is another's subclass, so the
    # exact-class assertions below tell them apart. (ConfigError and DataError also
    # derive from ValueError for callers that catch it; hence `type(err) is cls`.)
    classes = (ConfigError, DataError, NumericalError)
    for a in classes:
        assert issubclass(a, ElbolabError)
        for b in classes:
            assert a is b or not issubclass(a, b)
    assert not issubclass(NumericalError, ValueError)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.parametrize("name, call, expected", CASES, ids=[c[0] for c in CASES])
def test_bad_input(name, call, expected, tmp_path):
    if expected[0] == "raises":
        _, cls, pattern = expected
        try:
            call(tmp_path)
        except Exception as err:  # noqa: BLE001 - the class is asserted exactly below
            assert type(err) is cls, f"{name}: expected {cls.__name__}, got {err!r}"
            assert re.search(pattern, str(err)), f"{name}: {pattern!r} not in {str(err)!r}"
            assert "\n" not in str(err).strip(), f"{name}: the message is not one line"
        else:
            pytest.fail(f"{name}: no error, expected {cls.__name__}")
    else:
        result = call(tmp_path)
        # A check asserts; one that returned a value (a bool, a tuple) could not fail.
        assert expected[1](result) is None, f"{name}: the check returned a value, not asserts"


def test_checks_accept_numpy_scalars_as_numbers():
    assert checks.integer(np.int64(5), "n", 1) == 5
    assert type(checks.integer(np.int32(5), "n")) is int
    assert checks.number(np.float32(0.5), "x") == 0.5
    with pytest.raises(ConfigError, match="n must be an integer >= 1, got 2.5"):
        checks.integer(2.5, "n", 1)
    with pytest.raises(ConfigError, match="n must be an integer >= 1, got 0$"):
        checks.integer(np.int64(0), "n", 1)


def test_checks_accept_any_numpy_layout():
    a = np.arange(12.0).reshape(3, 4)
    for layout in (a[::-1], np.flip(a), a[:, ::-2], a.astype(">f8"), np.flip(a.astype(">i4"))):
        t = checks.data_matrix(layout, "x")
        assert np.array_equal(t.numpy(), layout)
        assert np.array_equal(checks.real_tensor(layout, "x").numpy(), layout)
    with pytest.raises(DataError, match="x must be a rectangular array"):
        checks.real_tensor([[1.0, 2.0], [3.0]], "x")
    with pytest.raises(ConfigError, match="x must be a rectangular array"):
        checks.data_matrix([[1.0, 2.0], [3.0]], "x", shape_error=ConfigError)
    with pytest.raises(DataError, match="x must hold real"):
        checks.data_matrix(np.ones((2, 2), complex), "x", shape_error=ConfigError)
    with pytest.raises(ConfigError, match="n must be a finite real number >= 0.*too large"):
        checks.number(10**400, "n", minimum=0)
