"""Helpers of the ``lda`` study."""

from types import SimpleNamespace

import numpy as np

from elbolab.studies.lda import restart_histories


def test_restarts_that_stop_early_keep_their_final_value():
    # Restarts converge at different iterations: their histories differ in length.
    model = SimpleNamespace(
        n_iter_=4,
        restarts_=[
            SimpleNamespace(history=np.array([1.0, 2.0, 3.0, 4.0])),
            SimpleNamespace(history=np.array([1.5, 2.5])),
        ],
    )
    h = restart_histories(model)
    assert h.shape == (4, 2)
    assert h[:, 0].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert h[:, 1].tolist() == [1.5, 2.5, 2.5, 2.5]
