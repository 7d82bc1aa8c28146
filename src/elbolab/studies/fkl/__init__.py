"""Study ``fkl``: the expected forward KL against the ELBO and the IWBO.

After McNamara, Loper & Regier ("Globally Convergent Variational Inference", NeurIPS
2024), three experiments, each fitted with objectives from
:mod:`elbolab.objectives.forward_kl` on the same variational families:

1. **Width.** A conjugate Gaussian model (:class:`~elbolab.models.simulators.ConjugateGaussian`)
   whose posterior is known: the negative log-likelihood of the true latent under q,
   E_{p(z,x)}[-log q(z; f(x))], against the exact posterior's value (the floor; the gap
   is E_x KL(p(z|x) || q)), for MLPs of several widths (NTK parameterization) and their
   linearizations, several seeds each. The networks are centred (their output at
   initialization subtracted, :class:`~elbolab.models.amortized.Centered`), so every run
   starts at q = N(0, I) and the widths differ only in how they train: with the random
   initial function, one width could start hundreds of nats worse than another and its
   gap after a fixed number of steps said more about that start than about the width.
   A network and its linearization train side by side on one data stream, and stop
   together when both have converged by one rule for every width (:func:`converged` on
   the gap measured on validation pairs), or at ``width_steps``. Reported: the final
   test gaps, E_x KL(q_network || q_linearized) (how far the network left the kernel
   regime, in nats) and the NTK drift, as mean and spread over seeds.
2. **Amortized clustering.** The shifted mixture
   (:class:`~elbolab.models.simulators.ShiftedMixture`, offsets -20..20, true shift
   100, 1000 observations). R replicates, each its own observed data set and network
   seed, all trained together as one ensemble, fitted by the forward KL (on simulated
   data sets) and by the ELBO (on the replicate's data set), in the mean-only and
   natural parameterizations: how often the posterior mode of the centres is in
   increasing order, and the mode of the shift across replicates. The natural
   parameters are measured about the data's mean with a reference precision of 1 unit
   (:func:`~elbolab.models.amortized.natural_about`): plain natural parameters had to
   reach eta_1 = mean * precision of order 1e4 and more, and training left q about 25
   units wide, the shift's mode beyond the 5-unit tolerance in most replicates.
3. **Rotated MNIST.** N known MNIST digits rotated by one shared angle (true 260
   degrees) with Gaussian pixel noise; the exact posterior over the angle on a grid;
   the IWBO fitted from 12 starting angles (batched) against the amortized forward-KL
   fit: the angle estimate across steps from every start, and forward and reverse KL to
   the exact posterior.

The encoders of experiments 2 and 3 read permutation-invariant summaries (order
statistics of the observations) or, for the digits whose order is part of the model,
the whole set; these are simpler than the paper's set transformer and CNN.

Every unit trains on ``device`` (``"auto"``: CUDA when available), resolved inside the
unit (on a cluster, each worker finds its own GPU). Networks are initialised on the CPU
from their seeds and moved there; the data sets shared by several units (the test pairs
of experiment 1, the observed replicates of experiment 2) are drawn on the CPU and moved
once; every other draw comes from a generator on the device. On the CPU the numbers are
those of earlier versions; a GPU draws other random numbers, so its results differ by
Monte Carlo noise. Units return CPU numpy arrays and floats, so a run's checkpoints load
on any machine.

Layout: :mod:`.config` (settings and presets); one module per experiment:
:mod:`.width`, :mod:`.clustering`, :mod:`.rotated`; :mod:`.pipeline` (the data and
the run's units), :mod:`.metrics` (metrics), :mod:`.claims` (the claims), :mod:`.render`
(the report).
"""

from __future__ import annotations

from .claims import claims
from .config import PRESETS, Config
from .pipeline import prepare, run
from .render import render
from .width import converged

NAME = "fkl"
DESCRIPTION = "Expected forward KL vs ELBO/IWBO: width, amortized clustering, rotated MNIST"

__all__ = [
    "NAME",
    "DESCRIPTION",
    "Config",
    "PRESETS",
    "prepare",
    "run",
    "claims",
    "render",
    "converged",
]
