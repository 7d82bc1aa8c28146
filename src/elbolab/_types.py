"""Type aliases used in the public signatures.

Everything here exists for type checkers only: the library's modules import these names
under ``typing.TYPE_CHECKING`` (each has ``from __future__ import annotations``), so
nothing here runs, and nothing is imported, when elbolab is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import TypeAlias

    import numpy as np
    import numpy.typing as npt
    import scipy.sparse as sp
    import torch

    from elbolab.data import Corpus

    # A torch tensor, a numpy array or anything numpy turns into one (nested sequences).
    ArrayOrTensor: TypeAlias = torch.Tensor | npt.ArrayLike
    # Documents x words counts: a Corpus or a scipy sparse matrix.
    Counts: TypeAlias = Corpus | sp.spmatrix | sp.sparray
    # Randomness of numpy code: a seed or a Generator.
    Seed: TypeAlias = int | np.random.Generator
    # A torch device or its name ("cpu", "cuda:0").
    Device: TypeAlias = str | torch.device
