"""Study ``landscape``: are two CAVI maxima of LDA joined by a path without an ELBO barrier?

After Li & Wei ("Analysis of ELBO loss landscape: no barrier in between local maxima")
and Zhang & Blei ("Unveiling mode-connectivity of the ELBO landscape"), on the whole AP
corpus and with every Dirichlet normalizer in the ELBO:

1. fit ``restarts`` random initializations of LDA by batch CAVI to convergence;
2. pick the best maximum and the best other one that is *distinct* after label
   alignment (mean matched Hellinger distance of the topics above ``distinct_min``);
   align its topics (Hungarian matching) and score the straight line before and after;
3. maximum-ELBO paths between the aligned maxima: NEB in both modes of
   :class:`~elbolab.landscape.LDAObjective` (``profile``: lambda only, local parameters
   re-optimized; ``full``: lambda, gamma and phi together as in the paper), AutoNEB and a
   Bezier curve (profile mode);
4. the ELBO on three planes (random Gaussian, random +-1, and the plane through both
   maxima and the NEB path's farthest pivot) with the path and the line drawn in;
5. the top words of every topic along the path, document-completion scores of
   training and test documents at every pivot, and the mean coherence (UMass and NPMI,
   :func:`~elbolab.diagnostics.topic_coherence`, in the training documents) of the
   topics at every pivot of the NEB path and of the straight line;
6. the paper's sweeps (learning rate, pivots, spring constant, K) as figures;
7. maxima found from paths: CAVI run to convergence from the highest point of every
   optimized path, the maximum it reaches identified by alignment as one of the endpoints
   or a new one, on ``polish_pairs`` pairs of restarts, each against the same number of
   CAVI iterations spent on fresh random restarts (:mod:`elbolab.landscape.polish`).

Barriers are ``max(0, min(ELBO(a), ELBO(b)) - min over the path)`` in nats (total over
the training documents), measured on a dense resampling of each path. All path
optimizers cap each pivot's step and halve it when a trial point is not finite, so no
setting of the learning rate can produce NaN.

The package, one file per job: ``config`` (settings and presets), ``pipeline`` (prepare
and run: the steps in order), ``maxima`` (the fits and the pair of maxima), ``paths``,
``planes``, ``reading`` (topics, completion and coherence along the path),
``maxima_from_paths`` (the polish), ``sweeps``, ``metrics`` (results into
metrics.json and arrays.npz), ``claims`` and ``render``.
"""

from .claims import claims
from .config import PRESETS, Config
from .pipeline import prepare, run
from .render import render

NAME = "landscape"
DESCRIPTION = (
    "LDA on AP: NEB, AutoNEB and Bezier paths between CAVI maxima, barriers, planes, sweeps"
)

__all__ = ["NAME", "DESCRIPTION", "Config", "PRESETS", "prepare", "run", "claims", "render"]
