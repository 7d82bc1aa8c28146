"""Rows of an encoding: select_rows and concatenate give the posteriors of some data
points, or of consecutive batches, as one diagonal Gaussian without encoding again."""

import pytest
import torch
from torch.distributions import Independent, Normal

from elbolab.distributions import DiagonalNormal, concatenate, select_rows
from elbolab.errors import ConfigError


def _q(n, seed):
    g = torch.Generator().manual_seed(seed)
    return DiagonalNormal(torch.randn(n, 3, generator=g), torch.rand(n, 3, generator=g) + 0.1)


def test_concatenate_then_select_gives_the_rows_back():
    a, b = _q(4, 0), _q(2, 1)
    both = concatenate([a, b])
    assert both.batch_shape == (6,) and both.event_shape == (3,)
    back = select_rows(both, torch.tensor([5, 0]))
    assert torch.equal(back.loc, torch.stack([b.loc[1], a.loc[0]]))
    assert torch.equal(back.scale, torch.stack([b.scale[1], a.scale[0]]))
    part = select_rows(both, slice(4, 6))
    z = torch.randn(5, 2, 3)
    assert torch.equal(part.log_prob(z), b.log_prob(z))


def test_plain_independent_normals_are_accepted_and_others_refused():
    q = Independent(Normal(torch.zeros(3, 2), torch.ones(3, 2)), 1)
    assert isinstance(select_rows(q, slice(0, 1)), DiagonalNormal)
    with pytest.raises(ConfigError, match="select_rows needs a diagonal Gaussian"):
        select_rows(Normal(torch.zeros(3), torch.ones(3)), slice(0, 1))
    with pytest.raises(ConfigError, match="at least one"):
        concatenate([])
