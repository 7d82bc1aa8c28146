"""Study ``lda``: CAVI restarts on a corpus (AP by default) for a few topic counts.

For each K it fits ``restarts`` random initializations (batched) on the training
documents and reports

- the ELBO (nats, every normalizer) after each iteration, for every restart,
- the spread of the optima the restarts end in,
- the top words of every topic of the best restart, with their coherence in the
  training documents (UMass of Mimno et al. 2011 and NPMI, :func:`topic_coherence`),
- held-out document-completion perplexity: theta is inferred from half of each test
  document's tokens and the other half is scored under the posterior-mean topics
  (a predictive score, not the bound),
- the ELBO surgery of the best restart's document-topic posteriors q(theta_d) =
  Dir(gamma_d) against the Dir(alpha) prior (Hoffman & Johnson 2016): their average KL
  split into the document-index mutual information (<= log D) and the marginal KL of
  the aggregate posterior (1/D) sum_d q(theta_d), in nats per training document; it
  answers the question Hoffman & Johnson raise, whether a classical model's aggregate
  posterior matches its prior better than a VAE's,
- the same best restart's bound computed by scikit-learn's LDA code (when installed):
  the check that the ELBO reported here is the quantity scikit-learn reports.


The package, one file per job: ``config`` (settings and presets), ``inputs`` (the
corpus, a saved model to start from, the splits), ``pipeline`` (run: the fits and their
measures), ``measures`` (what is measured of a fitted model), ``metrics`` (results into
metrics.json), ``claims`` and ``render``. The restarts themselves are fitted by
:mod:`elbolab.studies.lda_runs`, which the ``landscape`` study shares.
"""

from .claims import claims
from .config import PRESETS, Config
from .inputs import corpus_has_vocab, prepare
from .pipeline import run
from .render import render

NAME = "lda"
DESCRIPTION = (
    "LDA by batch CAVI: ELBO curves and optima across restarts, top words, held-out perplexity"
)

__all__ = [
    "NAME",
    "DESCRIPTION",
    "Config",
    "PRESETS",
    "prepare",
    "run",
    "claims",
    "render",
    "corpus_has_vocab",
]
