"""The results of a run collected into metrics.json: the data's sizes and, per K, the
fitted model's numbers."""

from __future__ import annotations

import numpy as np

from ...models import LDA
from ..lda_runs import top_words
from .config import Config
from .measures import largest_drop

# A marginal KL of at least this many nats per document counts as "of the order of
# nats", the size the ``surgery`` study measures for VAEs on MNIST (latent sizes 10-20).
NATS = 1.0


def data_metrics(inputs: dict) -> dict:
    """Sizes of the corpus and of its splits (0 test documents without a split)."""
    corpus, train = inputs["corpus"], inputs["train"]
    observed, heldout = inputs["observed"], inputs["heldout"]
    return {
        "source": inputs["source"],
        "n_docs": corpus.n_docs,
        "n_words": corpus.n_words,
        "n_tokens": corpus.n_tokens,
        "n_train_docs": train.n_docs,
        "n_train_tokens": train.n_tokens,
        "n_test_docs": 0 if observed is None else observed.n_docs,
        "n_heldout_tokens": 0 if heldout is None else heldout.n_tokens,
    }


def fit_metrics(
    cfg: Config,
    model: LDA,
    history: np.ndarray,
    inputs: dict,
    *,
    model_file: str,
    fit_seconds: float,
    measured: dict,
) -> dict:
    """metrics.json's record of one K: the merged restarts' ELBOs and priors, the best
    restart's top words, and what :func:`~.measures.measure_fit` measured of it."""
    finals = np.array([r.elbo for r in model.restarts_])
    result = {
        "elbo_best": model.elbo_,
        "elbo_per_token_best": model.elbo_ / inputs["train"].n_tokens,
        "elbo_restarts": finals.tolist(),
        "elbo_spread": float(finals.max() - finals.min()),
        "best_restart": model.best_,
        "model": model_file,
        "n_iter": model.n_iter_,
        "alpha": model.alpha_,
        "eta": model.eta_,
        # Summed over restarts: the wall time of a serial fit.
        "fit_seconds": fit_seconds,
        "top_words": top_words(model.components_, inputs["corpus"].vocab, cfg.top_words),
        "coherence": measured["coherence"],
        "elbo_largest_drop": largest_drop(history),
    }
    for key in ("sklearn_elbo_best", "surgery", "surgery_best_prior", "completion"):
        if key in measured:
            result[key] = measured[key]
    return result
