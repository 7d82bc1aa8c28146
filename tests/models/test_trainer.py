"""Trainer: loss decreases, early stopping keeps the best epoch, resume is bit-identical."""

import pytest
import torch
from torch.distributions import kl_divergence

from elbolab.errors import ConfigError, NumericalError
from elbolab.models.trainer import CHECKPOINT_NAME, train
from elbolab.models.vae import VAE
from elbolab.objectives import elbo_loss

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _binary(n, p, seed, d=12):
    """Two prototypes, pixels flipped with probability 0.1, sorted by class like MNIST."""
    g = torch.Generator().manual_seed(seed)
    protos = (torch.rand(2, d, generator=g) < p).float()
    labels = torch.sort(torch.randint(2, (n,), generator=g)).values
    flip = (torch.rand(n, d, generator=g) < 0.1).float()
    return (protos[labels] - flip).abs()


def _model(seed=0):
    return VAE(12, 2, hidden=(16,), generator=seed)


def _deterministic_loss(model, x, generator):
    # -(log p(x | z = mu) - KL): no sampling, so a loss can be recomputed exactly
    q = model.encode(x.float())
    return -(model.decode(q.mean).log_prob(x.float()) - kl_divergence(q, model.prior())).sum()


def test_loss_decreases():
    x = _binary(240, 0.5, 0)
    m = _model()
    h = train(
        m,
        elbo_loss,
        x[:200],
        x[200:],
        generator=1,
        epochs=6,
        batch_size=20,
        lr=1e-2,
        progress=False,
    )
    assert h["epochs_run"] == 6 and len(h["valid_loss"]) == 6
    assert h["train_loss"][-1] < h["train_loss"][0] - 1.0
    assert h["valid_loss"][-1] < h["valid_loss"][0]
    assert h["seconds"] > 0 and h["resumed_from"] == 0


def test_early_stopping_keeps_the_best_epoch():
    g = torch.Generator().manual_seed(3)
    x_train = (torch.rand(100, 12, generator=g) < 0.9).float()  # mostly ones
    x_valid = (torch.rand(40, 12, generator=g) < 0.1).float()  # mostly zeros: fitting hurts
    m = _model(2)
    h = train(
        m,
        _deterministic_loss,
        x_train,
        x_valid,
        generator=0,
        epochs=30,
        batch_size=10,
        lr=3e-2,
        patience=3,
        progress=False,
    )
    best = h["best_epoch"]
    assert h["stopped_early"] and h["epochs_run"] == best + 1 + 3 < 30
    assert h["valid_loss"][best] == min(h["valid_loss"]) == h["best_loss"]
    with torch.no_grad():
        final = float(_deterministic_loss(m, x_valid, None)) / 40
    assert final == pytest.approx(h["best_loss"], rel=1e-6)
    assert h["valid_loss"][-1] > h["best_loss"]  # the model returned is not the last one


class _Interrupt(Exception):
    pass


def test_resume_from_checkpoint_is_bit_identical(tmp_path):
    x = _binary(150, 0.5, 5)
    args = dict(epochs=5, batch_size=16, lr=1e-2, patience=10, progress=False)

    m_ref = _model(7)
    ref = train(m_ref, elbo_loss, x[:120], x[120:], torch.Generator().manual_seed(11), **args)

    calls = {"n": 0}

    def crashing_loss(model, xb, generator):
        calls["n"] += model.training  # count training minibatches, not validation
        if calls["n"] == 3 * 8 + 4:  # 8 minibatches per epoch: dies inside epoch 3
            raise _Interrupt
        return elbo_loss(model, xb, generator)

    m1 = _model(7)
    with pytest.raises(_Interrupt):
        train(
            m1,
            crashing_loss,
            x[:120],
            x[120:],
            torch.Generator().manual_seed(11),
            checkpoint=tmp_path,
            **args,
        )
    assert (tmp_path / CHECKPOINT_NAME).exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]

    # a fresh process would build a new model and generator: both are overwritten
    m2 = _model(99)
    res = train(
        m2,
        elbo_loss,
        x[:120],
        x[120:],
        torch.Generator().manual_seed(12345),
        checkpoint=tmp_path,
        **args,
    )
    assert res["resumed_from"] == 3
    assert res["train_loss"] == ref["train_loss"]
    assert res["valid_loss"] == ref["valid_loss"]
    assert res["best_epoch"] == ref["best_epoch"]
    for (k, a), (_, b) in zip(m_ref.state_dict().items(), m2.state_dict().items(), strict=True):
        assert torch.equal(a, b), k


def test_checkpoint_callable_receives_state():
    x = _binary(60, 0.5, 1)
    seen = []
    train(
        _model(),
        elbo_loss,
        x,
        None,
        generator=0,
        epochs=2,
        batch_size=30,
        lr=1e-3,
        checkpoint=seen.append,
        progress=False,
    )
    assert [len(s["history"]["train_loss"]) for s in seen] == [1, 2]
    assert {"model", "optimizer", "generator", "best_state"} <= set(seen[0])


@pytest.mark.parametrize(
    "kwargs",
    [{"epochs": -1}, {"batch_size": 0}, {"lr": 0.0}, {"patience": 0}, {"generator": None}],
)
def test_bad_settings(kwargs):
    x = _binary(20, 0.5, 1)
    args = {"generator": 0, "epochs": 1, "batch_size": 5, "lr": 1e-3, **kwargs}
    with pytest.raises(ConfigError):
        train(_model(), elbo_loss, x, None, progress=False, **args)


def test_non_finite_loss_is_reported():
    x = _binary(20, 0.5, 1)

    def nan_loss(model, xb, generator):
        return elbo_loss(model, xb, generator) * float("nan")

    with pytest.raises(NumericalError, match="lr"):
        train(_model(), nan_loss, x, None, generator=0, epochs=1, batch_size=5, progress=False)
