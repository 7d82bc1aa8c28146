"""The shared gradient-step loop (elbolab.optimize.descend)."""

import pytest
import torch

from elbolab.errors import ConfigError
from elbolab.optimize import descend


def _quadratic():
    """A parameter at 3 and an SGD optimizer on (w - 1)^2."""
    w = torch.nn.Parameter(torch.tensor(3.0, dtype=torch.float64))
    return w, torch.optim.SGD([w], lr=0.25)


def test_steps_match_a_hand_written_loop_and_evaluations_fall_on_the_grid():
    w, opt = _quadratic()
    seen, calls = [], []

    def loss(step):
        calls.append(step)
        return (w - 1.0) ** 2

    taken = descend(loss, opt, 7, evaluate=lambda s: seen.append((s, w.item())), every=3)
    assert taken == 7 and calls == list(range(1, 8))
    # w <- w - 0.25 * 2 (w - 1) halves the distance to 1 at every step.
    assert [s for s, _ in seen] == [3, 6, 7]  # every 3 steps, and after the last
    assert [v for _, v in seen] == [1 + 2 * 0.5**3, 1 + 2 * 0.5**6, 1 + 2 * 0.5**7]


def test_a_true_evaluation_stops_and_schedulers_step_after_the_optimizer():
    w, opt = _quadratic()
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    taken = descend(
        lambda s: (w - 1.0) ** 2, opt, 100, schedulers=[sched], evaluate=lambda s: s == 2
    )
    assert taken == 2
    # Step 1 at lr 0.25 halves the distance (2 -> 1); step 2 at lr 0.125: 1 -> 0.75.
    assert w.item() == pytest.approx(1.75)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0625)


def test_several_optimizers_share_one_summed_loss():
    a, opt_a = _quadratic()
    b = torch.nn.Parameter(torch.tensor(-1.0, dtype=torch.float64))
    opt_b = torch.optim.SGD([b], lr=0.25)
    descend(lambda s: (a - 1.0) ** 2 + (b + 3.0) ** 2, [opt_a, opt_b], 1)
    assert a.item() == pytest.approx(2.0) and b.item() == pytest.approx(-2.0)


def test_bad_step_counts_are_config_errors():
    w, opt = _quadratic()
    for kwargs in ({"steps": 0}, {"steps": 2.5}, {"steps": 3, "every": 0}):
        with pytest.raises(ConfigError, match="steps|every"):
            descend(lambda s: (w - 1.0) ** 2, opt, **kwargs)
