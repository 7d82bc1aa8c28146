"""The guarded ascent step NEB, AutoNEB and Bezier share: Adam as torch has it, the cap,
and step halving only where f is not finite."""

import pytest
import torch

from elbolab.errors import ConfigError, NumericalError
from elbolab.landscape.ascent import GuardedAscent, Optimizer, candidate, cap_norm
from elbolab.landscape.inputs import value_and_grad

D = torch.float64

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _no_projection(x):
    return x


def test_adam_update_is_torch_adam_for_maximization():
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn(3, 4, dtype=D, generator=gen)
    ours = GuardedAscent(Optimizer("adam", lr=0.1), x0, max_step=1e9, project=_no_projection)
    param = x0.clone().requires_grad_(True)
    ref = torch.optim.Adam([param], lr=0.1, maximize=True)
    x = x0.clone()
    for _ in range(5):
        force = torch.randn(3, 4, dtype=D, generator=gen)
        x = x + ours.update(force)
        param.grad = force.clone()
        ref.step()
    torch.testing.assert_close(x, param.detach(), rtol=1e-12, atol=1e-12)


def test_sgd_update_and_cap():
    force = torch.tensor([[3.0, 4.0], [0.3, 0.4]], dtype=D)
    sgd = GuardedAscent(Optimizer("sgd", lr=2.0), force, max_step=1.0, project=_no_projection)
    torch.testing.assert_close(sgd.update(force), 2.0 * force)
    capped = cap_norm(2.0 * force, 1.0)
    torch.testing.assert_close(capped.norm(dim=1), torch.tensor([1.0, 1.0], dtype=D))
    torch.testing.assert_close(capped[0], torch.tensor([0.6, 0.8], dtype=D))


def _half_plane(X):
    """Defined for x0 < 1 only (NaN beyond)."""
    return torch.where(X[:, 0] < 1, -(X**2).sum(1), torch.nan)


def _rows(f):
    return lambda moved: candidate(moved, *value_and_grad(f, moved))


def _never_hopeless(trial, h):
    return None


def test_only_the_rows_that_left_the_domain_have_their_step_halved():
    x = torch.tensor([[0.0, 0.0], [0.0, 0.0]], dtype=D)
    force = torch.tensor([[1.5, 0.0], [0.0, 1.5]], dtype=D)  # row 0 would land at x0 = 1.5
    ascent = GuardedAscent(Optimizer("sgd", lr=1.0), x, max_step=10.0, project=_no_projection)
    trial = ascent.step(
        x,
        force,
        _rows(_half_plane),
        halve=lambda bad: bad,
        hopeless=_never_hopeless,
        exhausted=lambda trial: "exhausted",
    )
    assert ascent.halvings == 1
    torch.testing.assert_close(trial.state, torch.tensor([[0.75, 0.0], [0.0, 1.5]], dtype=D))
    # Without a row mask every row's step is halved.
    ascent = GuardedAscent(Optimizer("sgd", lr=1.0), x, max_step=10.0, project=_no_projection)
    trial = ascent.step(
        x,
        force,
        _rows(_half_plane),
        halve=None,
        hopeless=_never_hopeless,
        exhausted=lambda trial: "exhausted",
    )
    torch.testing.assert_close(trial.state, torch.tensor([[0.75, 0.0], [0.0, 0.75]], dtype=D))


def test_the_step_stops_with_the_callers_message():
    x = torch.zeros(1, 2, dtype=D)
    force = torch.tensor([[1000.0, 0.0]], dtype=D)
    ascent = GuardedAscent(
        Optimizer("sgd", lr=1.0, max_halvings=3), x, max_step=1e6, project=_no_projection
    )
    with pytest.raises(NumericalError, match="gave up after 3"):
        ascent.step(x, force, _rows(_half_plane), halve=None, hopeless=_never_hopeless,
                    exhausted=lambda trial: "gave up after 3")  # fmt: skip
    assert ascent.halvings == 3
    with pytest.raises(NumericalError, match="hopeless at 0"):
        ascent.step(x, force, _rows(_half_plane), halve=None,
                    hopeless=lambda trial, h: f"hopeless at {h}",
                    exhausted=lambda trial: "never")  # fmt: skip


def test_optimizer_record_refuses_bad_settings():
    with pytest.raises(ConfigError, match="kind"):
        Optimizer("lbfgs")
    with pytest.raises(ConfigError, match="lr"):
        Optimizer(lr=0.0)
    with pytest.raises(ConfigError, match="max_step"):
        Optimizer(max_step=-1.0)
    with pytest.raises(ConfigError, match="max_halvings"):
        Optimizer(max_halvings=1.5)
