"""Generic landscape tools for any function we maximize (an ELBO): flat parameter vectors,
label-switching alignment, paths between maxima (linear, NEB, AutoNEB, Bezier) and 2-D
planes through the landscape. NEB, AutoNEB and Bezier share one guarded ascent step
(:mod:`~elbolab.landscape.ascent`), set with an :class:`Optimizer` record.

The path and plane tools take any ``f((P, n) tensor) -> (P,) tensor`` that acts row by
row and is differentiable by autograd; structured parameters become vectors with
:class:`Flattener`.
"""

from .align import align, apply_permutation, distance_matrix, invert_permutation, permute_params
from .ascent import Optimizer
from .bezier import bernstein, bezier, bezier_points
from .elastic_band import Band, Cycles, autoneb, neb
from .flat import Flattener
from .lda_objective import LDAObjective
from .paths import PathResult, barrier, dense_points, dense_values, linear_path, path_length
from .plane import (
    Plane,
    farthest_from_line,
    plane_grid,
    plane_through,
    project,
    random_gaussian_directions,
    random_sign_directions,
)
from .polish import Baseline, Polished, polish, restart_baseline

__all__ = [
    "Band",
    "Baseline",
    "Cycles",
    "LDAObjective",
    "Flattener",
    "Optimizer",
    "PathResult",
    "Plane",
    "Polished",
    "align",
    "apply_permutation",
    "autoneb",
    "barrier",
    "bernstein",
    "bezier",
    "bezier_points",
    "dense_points",
    "dense_values",
    "distance_matrix",
    "farthest_from_line",
    "invert_permutation",
    "linear_path",
    "neb",
    "path_length",
    "permute_params",
    "plane_grid",
    "plane_through",
    "polish",
    "project",
    "random_gaussian_directions",
    "random_sign_directions",
    "restart_baseline",
]
