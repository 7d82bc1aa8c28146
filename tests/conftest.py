"""Fixtures shared by the whole test suite."""

import os
from pathlib import Path

import pytest
import torch

from elbolab.data.fetch import DATASETS


def real_data_root(*names: str) -> str:
    """The dataset mirror for tests on real data.

    Unset ``ELBOLAB_DATA``: the test skips (a clone without the mirror still runs every
    test on synthetic data). Set ``ELBOLAB_DATA`` (as the README's test command does):
    the data must be there, and a missing dataset fails the test instead of skipping it.
    """
    root = os.environ.get("ELBOLAB_DATA")
    if not root:
        pytest.skip("ELBOLAB_DATA is not set; real-data tests need the dataset mirror")
    for name in names or ("ap",):
        for file in DATASETS[name].files:
            if not (Path(root) / file.path).is_file():
                pytest.fail(f"ELBOLAB_DATA={root} is set but {file.path} is not under it")
    return root


@pytest.fixture(scope="session")
def real_data():
    """:func:`real_data_root` as a fixture: ``root = real_data("mnist")``."""
    return real_data_root


@pytest.fixture(scope="module")
def one_torch_thread():
    """Run a module's tiny tensor ops on one thread: faster, and leaves the other core free."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
