"""Loading a corpus and fitting LDA by batch CAVI with restarts: shared by the ``lda`` and
``landscape`` studies, so that both split the corpus and fit the same way.

A fit of K topics is ``restarts`` independent units (one per random initialization),
each checkpointed in the run directory and resumed from there; restart r draws its
topics from ``default_rng([seed, r])``, so its result does not depend on where it ran.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from functools import partial

import numpy as np

from ..data import Corpus, load_ap, read_corpus
from ..models import LDA
from ..progress import progress
from .runner import cached_map

# Checkpoint a running fit at most this often: lambda for R restarts is R*K*V floats.
_CHECKPOINT_SECONDS = 20.0

AP_SOURCE = "AP (Blei et al. 2003, lda-c sample data)"


@dataclass(frozen=True)
class CaviSettings:
    """How every restart of a K-topic fit runs.

    restarts : random initializations, each an independent unit of work.
    max_iter, tol : CAVI stopping rule (relative ELBO gain per iteration).
    alpha, eta : symmetric Dirichlet priors; None means 1/K.
    seed : restart r starts from ``default_rng([seed, r])``.
    """

    restarts: int
    max_iter: int
    tol: float
    alpha: float | None
    eta: float | None
    seed: int


def load_corpus(
    data_root: str | os.PathLike | None = None,
    corpus: str = "",
    vocab: str = "",
    n_docs: int | None = None,
) -> tuple[Corpus, str]:
    """The corpus file ``corpus`` (with ``vocab``, see :func:`read_corpus`), or the AP
    corpus under ``data_root`` when ``corpus`` is empty, cut to its first ``n_docs``
    documents (None: all); and a line naming its source."""
    if corpus:
        loaded, source = read_corpus(corpus, vocab or None), corpus
    else:
        loaded, source = load_ap(data_root), AP_SOURCE
    if n_docs is not None:
        loaded = loaded.subset(np.arange(min(n_docs, loaded.n_docs)))
    return loaded, source


def split_corpus(corpus: Corpus, test_fraction: float, observed_fraction: float, seed: int) -> dict:
    """Training and test documents, and the test documents' tokens split for document
    completion: ``train``, ``observed`` (the share ``observed_fraction`` of each test
    document's tokens, to infer theta) and ``heldout`` (the rest, scored)."""
    train, test = corpus.train_test_split(test_fraction, seed=seed)
    observed, heldout = test.completion_split(observed_fraction, seed=seed)
    return {"train": train, "observed": observed, "heldout": heldout}


def fit_restart(
    settings: CaviSettings,
    k: int,
    r: int,
    train: Corpus,
    rundir,
    key: str,
    init: LDA | None = None,
) -> LDA:
    """Restart r of a K-topic fit (topics drawn from ``default_rng([seed, r])``, or
    ``init``'s topics and, where settings leave them None, its alpha and eta), its running
    state checkpointed under ``key`` every ~20 s and resumed from there."""
    model = LDA(
        n_topics=k,
        alpha=settings.alpha if settings.alpha is not None or init is None else init.alpha_,
        eta=settings.eta if settings.eta is not None or init is None else init.eta_,
        max_iter=settings.max_iter,
        tol=settings.tol,
        n_restarts=1,
        seed=settings.seed,
    )
    state = rundir.load_checkpoint(key)
    if state is None and init is not None:
        state = model.initial_state(train, lam=init.components_[None])
    elif state is None:
        state = model.initial_state(train, restarts=[r])
    bar = progress(total=settings.max_iter, desc=f"LDA K={k} restart {r}", unit="iter")
    bar.update(len(state.history))
    last_save = time.monotonic()

    def on_iteration(iteration, bound, st):
        nonlocal last_save
        bar.update(1)
        bar.set_postfix(elbo_per_token=f"{bound.max() / train.n_tokens:.4f}")
        if time.monotonic() - last_save > _CHECKPOINT_SECONDS:
            rundir.save_checkpoint(key, st)
            last_save = time.monotonic()

    try:
        model.fit(train, callback=on_iteration, state=state)
    finally:
        bar.close()
    return model


def restart_units(
    settings: CaviSettings, k: int, train: Corpus, rundir, key: str, init: LDA | None = None
) -> dict:
    """The restarts of a K-topic fit as independent units for
    :func:`elbolab.studies.runner.cached_map` (checkpoint key -> function); join their
    results with :meth:`LDA.merged`."""
    return {
        f"{key}_r{r}": partial(
            fit_restart, settings, k, r, train, rundir, f"{key}_r{r}_state", init
        )
        for r in range(settings.restarts)
    }


def fit_restarts(settings: CaviSettings, k: int, train: Corpus, rundir, key: str) -> LDA:
    """Every restart of a K-topic fit, run on the study's dispatcher, as one model."""
    fits = cached_map(rundir, restart_units(settings, k, train, rundir, key), desc=f"LDA K={k}")
    return LDA.merged(list(fits.values()))


def restart_histories(model: LDA) -> np.ndarray:
    """ELBO per iteration (n_iter_, R) of every restart; a restart that converged early
    keeps its final value for the iterations the others still ran."""
    return np.stack(
        [
            np.pad(r.history, (0, model.n_iter_ - len(r.history)), mode="edge")
            for r in model.restarts_
        ],
        axis=1,
    )


def top_words(components: np.ndarray, vocab: list[str], n: int) -> list[list[str]]:
    """The n most probable words of every topic (rows of lambda), most probable first."""
    order = np.argsort(-components, axis=1)[:, :n]
    return [[vocab[i] for i in row] for row in order]
